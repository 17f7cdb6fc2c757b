"""Extraction benchmark on the real pages in ../shared/data (see its PROVENANCE.md).

For each data set: body F1 (bag of characters for CJK, of lower-cased word tokens for
English), title accuracy and publish-date accuracy, for newsmon's ``extract_article`` and
for plain ``trafilatura.extract`` with default options. Nothing from the data is copied
into the repository; this script reads it in place.

    python -m bench.extraction [--data ../shared/data] [--sets gne_zh,fundus_ko] [--json out.json]
"""

from __future__ import annotations

import argparse
import gzip
import html as html_lib
import json
import re
import statistics
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, tzinfo
from pathlib import Path

import trafilatura
from lxml import html as lxml_html

from newsmon.crawlers.extract import extract_article
from newsmon.crawlers.extraction.dates import LANG_TZ, parse_date
from newsmon.crawlers.registry import Source
from newsmon.scripts import is_cjk_lang
from newsmon.settings import REPO_ROOT

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"


@dataclass
class Page:
    dataset: str
    lang: str
    path: Path
    url: str
    body: str | None = None  # expected body text
    # Where only snippets of the body are known (trafilatura's and Postlight's test data): text
    # that must be in the body, and boilerplate that must not.
    with_snippets: tuple[str, ...] = ()
    without_snippets: tuple[str, ...] = ()
    title: str | None = None
    date: str | None = None  # expected publish date, YYYY-MM-DD in the outlet's time zone
    article: bool = True  # False: a list/index page that must be rejected

    @property
    def key(self) -> str:
        return "/".join(self.path.parts[-2:])

    @property
    def scored_body(self) -> bool:
        return self.body is not None or bool(self.with_snippets)

    def read(self) -> bytes:
        data = self.path.read_bytes()
        return gzip.decompress(data) if self.path.suffix == ".gz" else data


@dataclass
class Output:
    text: str
    title: str
    date: str | None
    is_article: bool = True


@dataclass
class Score:
    pages: int = 0
    body_f1: float | None = None
    title_acc: float | None = None
    date_acc: float | None = None
    rejected: float | None = None  # share of list pages recognised as no article
    seconds: float = 0.0
    per_page: dict[str, float] = field(default_factory=dict)  # body F1 by file, to find regressions


# ----------------------------------------------------------------------------- data sets


def _fundus(root: Path, folder: str, dataset: str, lang: str) -> Iterator[Page]:
    """fundus_kr_cn: <Publisher>.json holds versions V1, V2 ... in the date order of the pages."""
    base = root / "fundus_kr_cn"
    for meta_file in sorted(base.glob(f"{folder}/**/meta.info")):
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        by_publisher: dict[str, list[str]] = {}
        for name in sorted(meta):
            by_publisher.setdefault(name.split("_")[0], []).append(name)
        for publisher, names in by_publisher.items():
            truth = json.loads((meta_file.parent / f"{publisher}.json").read_text(encoding="utf-8"))
            for version, name in enumerate(names, start=1):
                gt = truth[f"V{version}"]
                sections = gt["body"].get("sections", [])
                parts = gt["body"].get("summary", []) + [
                    line for s in sections for line in s.get("headline", []) + s.get("paragraphs", [])
                ]
                yield Page(
                    dataset,
                    lang,
                    meta_file.parent / name,
                    meta[name]["url"],
                    body="\n".join(parts),
                    title=gt.get("title"),
                    date=_local_date(gt.get("publishing_date"), lang),
                )


def _gne(root: Path) -> Iterator[Page]:
    """gne_zh: result.txt is GNE's own 2019 output (weak truth); two pages changed since are left out."""
    base = root / "gne_zh"
    changed = {"tests/readhub/readhub.html", "tests/163/5.html"}
    text = (base / "result.txt").read_text(encoding="utf-8")
    for match in re.finditer(r">{5,}(.+?)>{5,}\s*(\{.*?\})\s*<{5,}", text, re.S):
        rel, record = match[1].strip(), json.loads(match[2])
        if rel in changed or not (base / rel).exists():
            continue
        yield Page(
            "gne_zh",
            "zh",
            base / rel,
            f"https://{rel.split('/')[1]}.example/{rel}",
            body=record["content"],
            title=record["title"],
            date=_local_date(record["publish_time"], "zh"),
        )


def _gne_lists(root: Path) -> Iterator[Page]:
    for file in sorted((root / "gne_zh" / "test_list_page").glob("*/*.html")):
        yield Page("gne_lists", "zh", file, f"https://{file.parent.name}.example/index.html", article=False)


def _newspaper4k(root: Path) -> Iterator[Page]:
    base = root / "newspaper4k_cjk"
    urls = {"chinese_article": "http://news.sohu.com/20050601/n225789219.shtml"}
    for name in ("chinese_article", "chinese_article_001", "chinese_article_002"):
        meta_file = base / "metadata" / f"{name}.json"
        meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.exists() else {}
        yield Page(
            "newspaper4k_zh",
            "zh",
            base / "html" / f"{name}.html",
            meta.get("url") or urls[name],
            body=(base / "txt" / f"{name}.txt").read_text(encoding="utf-8"),
            title=meta.get("title"),
            date=(meta.get("publish_date") or "")[:10] or None,
        )


def _readability(root: Path) -> Iterator[Page]:
    """Readability's expected DOM is the body truth; its title metadata is the raw <title>, so unused."""
    base = root / "readability_testpages_cjk"
    for name in ("qq", "gmw", "youth", "pixnet"):
        expected = lxml_html.fromstring((base / name / "expected.html").read_text(encoding="utf-8"))
        body = "\n".join(t.strip() for t in expected.itertext() if t.strip())
        yield Page(
            "readability_zh",
            "zh",
            base / name / "source.html",
            f"https://{name}.example/article.html",
            body=body,
        )


def _goose3(root: Path) -> Iterator[Page]:
    """The Korean page's expected text is whole; the Chinese one's is a prefix cut mid-sentence,
    so its complete paragraphs are snippets the body must contain."""
    base = root / "goose3_cjk"
    truth = json.loads((base / "test_donga_korean.json").read_text(encoding="utf-8"))
    yield Page(
        "goose3_ko",
        "ko",
        base / "test_donga_korean.html",
        truth["url"],
        body=truth["expected"]["cleaned_text"],
    )
    truth = json.loads((base / "test_bbc_chinese.json").read_text(encoding="utf-8"))
    paragraphs = [p for p in truth["expected"]["cleaned_text"].split("\n\n") if p.strip()]
    yield Page(
        "goose3_zh",
        "zh",
        base / "test_bbc_chinese.html",
        truth["url"],
        with_snippets=tuple(paragraphs[:-1]),
    )


def _aeb(root: Path) -> Iterator[Page]:
    base = root / "aeb_en"
    truth = json.loads((base / "ground-truth.json").read_text(encoding="utf-8"))
    for key, record in sorted(truth.items()):
        yield Page(
            "aeb_en", "en", base / "html" / f"{key}.html.gz", record["url"], body=record["articleBody"]
        )


def _trafilatura_eval(root: Path) -> Iterator[Page]:
    base = root / "trafilatura_eval_zh"
    truth = json.loads((base / "evaldata.json").read_text(encoding="utf-8"))
    for url, record in truth.items():
        file = base / "eval" / record["file"]
        if file.exists() and not file.name.startswith("nhk"):  # the NHK page is Japanese
            yield Page(
                "trafilatura_zh",
                "zh",
                file,
                url,
                title=record["title"].strip(),
                date=record["date"],
                with_snippets=tuple(record["with"]),
                without_snippets=tuple(record["without"]),
            )


def _htmldate(root: Path) -> Iterator[Page]:
    base = root / "htmldate_eval_cjk"
    for name in ("eval_default.json", "eval_mediacloud_2020.json"):
        for url, record in json.loads((base / name).read_text(encoding="utf-8")).items():
            for sub in ("eval", "test_set"):
                file = base / sub / record["file"]
                if file.exists():
                    host = url.split("/")[2]
                    lang = "ko" if host.endswith((".kr", "naver.com")) else "zh"
                    yield Page(f"htmldate_{lang}", lang, file, url, date=record["date"])


def _postlight(root: Path) -> Iterator[Page]:
    """Truth quoted in PROVENANCE.md from the Postlight parser's JS tests."""
    base = root / "postlight_fixtures_zh_ko" / "fixtures"
    yield Page(
        "postlight",
        "zh",
        base / "www.qdaily.com.html",
        "http://www.qdaily.com/articles/38282.html",
        title="这个约会软件，想用你和对方的相似好恶来帮你找对象",
        date=_local_date("2017-03-01T06:27:02.000Z", "zh"),
        with_snippets=("无法忍受乡村音乐？", "对某某明星迷之厌恶？", "讨厌特朗普？不爱自拍？"),
    )
    yield Page(
        "postlight",
        "ko",
        base / "m.blog.naver.com" / "1675688085042.html",
        "https://m.blog.naver.com/jjy0501/222999197655",
        title="우유 섭취가 농업 초기 시대 인류의 몸집을 키웠다?",
        date=_local_date("2023-02-05T02:40:00.000Z", "ko"),
        with_snippets=(
            "(Credit: Pixabay/CC0 Public Domain)",
            "(Scatterplots with Lowess lines illustrating broad patterns of (A)",
        ),
    )


LOADERS: dict[str, Callable[[Path], Iterator[Page]]] = {
    "gne_zh": _gne,
    "gne_lists": _gne_lists,
    "fundus_ko": lambda root: _fundus(root, "kr*", "fundus_ko", "ko"),
    "fundus_zh": lambda root: _fundus(root, "cn", "fundus_zh", "zh"),
    "newspaper4k_zh": _newspaper4k,
    "readability_zh": _readability,
    "goose3_ko": _goose3,
    "trafilatura_zh": _trafilatura_eval,
    "htmldate": _htmldate,
    "postlight": _postlight,
    "aeb_en": _aeb,
}


def load_pages(root: Path, sets: list[str] | None = None) -> dict[str, list[Page]]:
    pages: dict[str, list[Page]] = {}
    for name, loader in LOADERS.items():
        if sets is None or name in sets:
            for page in loader(root):
                pages.setdefault(page.dataset, []).append(page)
    return pages


# ----------------------------------------------------------------------------- metrics


def _local_date(value: str | None, lang: str) -> str | None:
    when = parse_date(value or "", _tz(lang))
    return when.astimezone(_tz(lang)).date().isoformat() if when else None


def _tz(lang: str) -> tzinfo:
    return LANG_TZ.get(lang, UTC)


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", html_lib.unescape(text))


def units(text: str, lang: str) -> Counter[str]:
    """Characters (CJK) or lower-cased word tokens (other languages), ignoring whitespace."""
    text = _norm(text)
    if is_cjk_lang(lang):
        return Counter(c for c in text if not c.isspace())
    return Counter(re.findall(r"\w+", text.lower()))


def f1(predicted: str, expected: str, lang: str) -> float:
    pred, gold = units(predicted, lang), units(expected, lang)
    overlap = sum((pred & gold).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(pred.values()), overlap / sum(gold.values())
    return 2 * precision * recall / (precision + recall)


def _squashed(text: str) -> str:
    """NFKC, without whitespace or format characters (zero-width spaces), for snippet search."""
    return "".join(c for c in _norm(text) if not c.isspace() and unicodedata.category(c) != "Cf")


def snippet_f1(predicted: str, page: Page) -> float:
    """trafilatura's own evaluation: a wanted snippet found is a true positive, one missing a
    false negative, an unwanted one found a false positive."""
    text = _squashed(predicted)
    found = sum(_squashed(s) in text for s in page.with_snippets)
    junk = sum(_squashed(s) in text for s in page.without_snippets)
    if not found:
        return 0.0
    precision, recall = found / (found + junk), found / len(page.with_snippets)
    return 2 * precision * recall / (precision + recall)


def body_score(predicted: str, page: Page) -> float:
    """Body F1 over characters or words, or over snippets where only those are known."""
    return f1(predicted, page.body, page.lang) if page.body is not None else snippet_f1(predicted, page)


def same_title(predicted: str, expected: str) -> bool:
    squash = re.compile(r"\s+")
    return squash.sub(" ", _norm(predicted)).strip() == squash.sub(" ", _norm(expected)).strip()


# ----------------------------------------------------------------------------- extractors


def run_newsmon(page: Page) -> Output:
    source = Source(name="bench", lang=page.lang, feeds=[page.url])  # type: ignore[arg-type]
    result = extract_article(page.read(), page.url, source)
    article = result.article
    if article is None:
        return Output("", "", None, is_article=False)
    day = article.published.astimezone(_tz(page.lang)).date().isoformat() if article.published else None
    return Output(article.text, article.title, day)


def run_trafilatura(page: Page) -> Output:
    data = page.read()
    text = trafilatura.extract(data, url=page.url) or ""
    meta = trafilatura.extract_metadata(trafilatura.load_html(data), default_url=page.url)
    return Output(text, (meta.title or "") if meta else "", (meta.date or None) if meta else None)


EXTRACTORS: dict[str, Callable[[Page], Output]] = {"newsmon": run_newsmon, "trafilatura": run_trafilatura}


def score(pages: list[Page], extractor: Callable[[Page], Output]) -> Score:
    started = time.perf_counter()
    body, title, date, rejected = [], [], [], []
    per_page: dict[str, float] = {}
    for page in pages:
        out = extractor(page)
        if page.scored_body:
            per_page[page.key] = value = body_score(out.text, page)
            body.append(value)
        if page.title is not None:
            title.append(same_title(out.title, page.title))
        if page.date is not None:
            date.append(out.date == page.date)
        if not page.article:
            rejected.append(not out.is_article)
    mean = lambda xs: statistics.fmean(xs) if xs else None  # noqa: E731
    return Score(
        len(pages),
        mean(body),
        mean(title),
        mean(date),
        mean(rejected),
        time.perf_counter() - started,
        per_page,
    )


def run_benchmark(
    root: Path = DEFAULT_DATA, sets: list[str] | None = None, extractors: list[str] | None = None
) -> dict[str, dict[str, Score]]:
    """{data set: {extractor: Score}}, plus pooled rows "ko (all)" / "zh (all)" over the pages
    with a whole expected body (snippet scores are not pooled with character F1)."""
    pages = load_pages(root, sets)
    results: dict[str, dict[str, Score]] = {}
    for name, set_pages in pages.items():
        results[name] = {ex: score(set_pages, EXTRACTORS[ex]) for ex in extractors or list(EXTRACTORS)}
    for lang in ("ko", "zh"):
        for ex in extractors or list(EXTRACTORS):
            pooled = [
                results[name][ex].per_page[page.key]
                for name, set_pages in pages.items()
                for page in set_pages
                if page.lang == lang and page.body is not None
            ]
            if pooled:
                results.setdefault(f"{lang} (all)", {})[ex] = Score(len(pooled), statistics.fmean(pooled))
    return results


def _fmt(value: float | None) -> str:
    return "    - " if value is None else f"{value:6.3f}"


METRICS = (
    ("body F1", "body_f1"),
    ("title acc", "title_acc"),
    ("date acc", "date_acc"),
    ("lists rej", "rejected"),
)


def print_table(results: dict[str, dict[str, Score]], out: Callable[[str], None] = print) -> None:
    """One row per data set: each metric for newsmon / trafilatura, and the body-F1 ratio."""
    out(f"{'data set':<16}{'n':>4}" + "".join(f"  {label:^13}" for label, _ in METRICS) + "  F1 ratio  lost")
    out(f"{'':<20}" + "  newsm  trafi" * len(METRICS))
    for name, per in results.items():
        ours, base = per.get("newsmon", Score()), per.get("trafilatura", Score())
        cells = "".join(f"  {_fmt(getattr(ours, attr))} {_fmt(getattr(base, attr))}" for _, attr in METRICS)
        ratio = ours.body_f1 / base.body_f1 if ours.body_f1 and base.body_f1 else None
        out(f"{name:<16}{max(ours.pages, base.pages):>4}{cells}  {_fmt(ratio)}  {lost_pages(ours, base):>4}")


def lost_pages(ours: Score, base: Score) -> int:
    """Pages where newsmon's body F1 is under 0.5 while trafilatura's is at least 0.5."""
    return sum(1 for page, value in ours.per_page.items() if value < 0.5 <= base.per_page.get(page, 0.0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sets", help=f"comma-separated subset of {','.join(LOADERS)}")
    parser.add_argument("--json", type=Path, help="also write the scores here")
    parser.add_argument("--pages", action="store_true", help="print per-page body F1 for newsmon")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"no benchmark data at {args.data} (see PROVENANCE.md of the shared data)", file=sys.stderr)
        return 2
    results = run_benchmark(args.data, args.sets.split(",") if args.sets else None)
    print_table(results)
    if args.pages:
        for name, per in results.items():
            for page, value in per.get("newsmon", Score()).per_page.items():
                base = per["trafilatura"].per_page.get(page)
                print(f"{name:<16} {page:<45} {value:.3f}  (trafilatura {_fmt(base)})")
    if args.json:
        args.json.write_text(
            json.dumps(
                {k: {e: asdict(s) for e, s in v.items()} for k, v in results.items()}, indent=1, default=str
            ),
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
