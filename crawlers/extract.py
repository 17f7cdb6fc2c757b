"""Article extraction: bytes of one HTML page -> an ``Article`` or a reason to skip it.

Pure functions (no network, no state) so the crawler, ``newsmon extract`` and the
benchmarks all share one code path.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import charset_normalizer
import htmldate
import trafilatura
from lxml import etree
from lxml import html as lxml_html
from lxml.cssselect import CSSSelector
from trafilatura.settings import use_config
from w3lib.encoding import html_body_declared_encoding, http_content_type_encoding, read_bom

from crawlers.registry import ExtractRules, Source
from crawlers.urls import NON_ARTICLE_PATH, canonicalize
from newsmon.models import Article, utcnow
from newsmon.scripts import CJK, is_cjk_lang, lang_by_script

KST = timezone(timedelta(hours=9), "KST")
CST = timezone(timedelta(hours=8), "CST")
LANG_TZ: dict[str, tzinfo] = {"ko": KST, "zh": CST}
EXTRACTOR = f"newsmon/trafilatura-{trafilatura.__version__}"

# Skip reasons (also the keys of CrawlStats.skipped).
SKIP_BINARY = "binary"
SKIP_EMPTY = "empty"
SKIP_ERROR_PAGE = "error_page"
SKIP_LIST_PAGE = "list_page"
SKIP_TOO_SHORT = "too_short"
SKIP_NO_TITLE = "no_title"

# Fewer body characters than this (CJK characters count 3: one carries about a word's worth).
MIN_BODY_WEIGHT = 250
# A paragraph this long (about 80 CJK characters or 40 English words) is story text, not a teaser.
_PARAGRAPH_WEIGHT = 240
ARTICLE_TYPES = {
    "newsarticle",
    "article",
    "reportagenewsarticle",
    "analysisnewsarticle",
    "blogposting",
    "techarticle",
    "opinionnewsarticle",
    "backgroundnewsarticle",
    "report",
    "liveblogposting",
}
_ERROR_TITLE = re.compile(
    r"\b(?:404|not found)\b|페이지를 찾을 수 없|존재하지 않는|삭제된 기사|"
    r"页面不存在|页面未找到|找不到页面|您访问的页面|文章不存在|已被删除",
    re.I,
)
_TITLE_SEPARATORS = (" | ", " - ", " – ", " — ", " :: ", "_", "｜", "ㅣ", "|", " : ", " > ", " « ", " » ")
_BINARY_MAGIC = {
    b"%PDF": "pdf",
    b"\x89PNG": "png",
    b"GIF8": "gif",
    b"\xff\xd8\xff": "jpeg",
    b"PK\x03\x04": "zip",
    b"\x1f\x8b": "gzip",
    b"RIFF": "riff",
    b"\x00\x00\x01\x00": "ico",
    b"OggS": "ogg",
}
# Legacy encodings worth trying when a page's declared charset is absent or wrong.
_CJK_CANDIDATES = ("utf_8", "cp949", "gb18030", "big5hkscs", "cp932", "euc_jp")
_LANG_DEFAULT_ENCODING = {"ko": "cp949", "zh": "gb18030"}


@dataclass(frozen=True)
class ExtractResult:
    """An article, or why the page is not one (``skip`` is a short reason key)."""

    article: Article | None = None
    skip: str | None = None
    detail: str = ""
    encoding: str = ""

    @property
    def is_article(self) -> bool:
        return self.article is not None


# ----------------------------------------------------------------------------- decoding


def sniff_binary(data: bytes) -> str | None:
    """The kind of a non-text payload (``"pdf"``, ``"png"`` ...), or None for text."""
    for magic, kind in _BINARY_MAGIC.items():
        if data.startswith(magic):
            return kind
    head = data[:2048]
    # HTML never holds NUL bytes except in UTF-16/32, which start with a BOM.
    if b"\x00" in head and read_bom(data)[0] is None:
        return "binary"
    return None


def decode_html(data: bytes, content_type: str | None = None, lang: str | None = None) -> tuple[str, str]:
    """Decode page bytes; returns (text, encoding).

    Order: BOM; valid UTF-8 (nearly never valid by accident for CJK legacy bytes); the
    declared CJK charset if the bytes decode under it; else detection among CJK
    encodings, because Korean and Chinese sites often declare the wrong charset (or none,
    or the server's latin-1 default).
    """
    bom_enc, bom = read_bom(data)
    if bom_enc and bom:
        return data[len(bom) :].decode(bom_enc, errors="replace"), bom_enc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    declared = [
        enc for enc in (http_content_type_encoding(content_type), html_body_declared_encoding(data)) if enc
    ]
    for enc in declared:
        if enc in ("cp1252", "utf-8", "ascii"):
            continue  # Western defaults are no evidence for a page with high bytes
        try:
            text = data.decode(enc)
        except (UnicodeDecodeError, LookupError):
            continue
        # GB18030 decodes nearly any bytes: a Korean page mislabelled GB2312 reads as Chinese.
        if not (lang in ("ko", "zh") and lang_by_script(text) not in (lang, "en")):
            return text, enc
    # Mostly-UTF-8 pages with a few broken sequences (CMS truncation) are still UTF-8.
    text = data.decode("utf-8", errors="replace")
    if text.count("\ufffd") * 50 < sum(1 for c in text if ord(c) > 127):
        return text, "utf-8"
    best = charset_normalizer.from_bytes(data, cp_isolation=list(_CJK_CANDIDATES)).best()
    if best is not None:
        return str(best), best.encoding
    fallback = _LANG_DEFAULT_ENCODING.get(lang or "", "utf-8")
    return data.decode(fallback, errors="replace"), fallback


# ----------------------------------------------------------------------------- dates

_DATE_RE = re.compile(
    r"(?P<y>(?:19|20)\d{2})\s*[-./년年]\s*(?P<m>\d{1,2})\s*[-./월月]\s*(?P<d>\d{1,2})\s*[일日]?"
    r"(?:\s*\(?[월화수목금토일一二三四五六日]?\)?\s*T?\s*(?P<ampm>오전|오후|上午|下午|AM|PM|am|pm)?\s*"
    r"(?P<H>\d{1,2})\s*[:시時时点]\s*(?P<M>\d{1,2})(?:\s*[:분分]\s*(?P<S>\d{1,2}))?)?"
    r"(?:\.\d+)?\s*(?P<tz>Z|[+-]\d{2}:?\d{2}|UTC|GMT|KST|CST)?"
)
_TZ_NAMES: dict[str, tzinfo] = {"Z": UTC, "UTC": UTC, "GMT": UTC, "KST": KST, "CST": CST}


def parse_date(value: str, default_tz: tzinfo = UTC) -> datetime | None:
    """A timezone-aware datetime from ISO 8601, RFC 2822 or CJK-style date text.

    A date without a zone is taken as local time of the outlet (``default_tz``).
    """
    value = value.strip()
    if not value:
        return None
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            parsed = _parse_cjk_date(value, default_tz)
    if parsed is None or not 1990 <= parsed.year <= 2100:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=default_tz)


def _parse_cjk_date(value: str, default_tz: tzinfo) -> datetime | None:
    m = _DATE_RE.search(value)
    if not m:
        return None
    hour = int(m["H"] or 0)
    if m["ampm"] in ("오후", "下午", "PM", "pm") and hour < 12:
        hour += 12
    elif m["ampm"] in ("오전", "上午", "AM", "am") and hour == 12:
        hour = 0
    tz: tzinfo = default_tz
    if m["tz"]:
        if m["tz"] in _TZ_NAMES:
            tz = _TZ_NAMES[m["tz"]]
        else:
            sign = 1 if m["tz"][0] == "+" else -1
            digits = m["tz"][1:].replace(":", "")
            tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        return datetime(
            int(m["y"]), int(m["m"]), int(m["d"]), hour, int(m["M"] or 0), int(m["S"] or 0), tzinfo=tz
        )
    except ValueError:
        return None


# ----------------------------------------------------------------------------- language


def text_weight(text: str) -> int:
    """Amount of text: CJK characters count 3, other non-space characters 1 (a 6-letter word ~ 2 CJK)."""
    cjk = len(CJK.findall(text))
    return cjk * 2 + len("".join(text.split()))


# ----------------------------------------------------------------------------- HTML helpers


def _select(tree: Any, selector: str) -> list[Any]:
    """CSS selector, or XPath when it starts with ``/`` or ``(``."""
    if selector.startswith(("/", "(")):
        result = tree.xpath(selector)
        return result if isinstance(result, list) else [result]
    return CSSSelector(selector)(tree)


def _clean_ws(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u3000", " ")).strip()


_BLOCK_TAGS = {
    "p",
    "div",
    "br",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "tr",
    "table",
    "section",
    "article",
    "figcaption",
    "pre",
    "ul",
    "ol",
    "dd",
    "dt",
}


def block_text(element: Any) -> str:
    """Text of an element with one line per paragraph (block elements and <br> break lines)."""
    parts: list[str] = []

    def walk(el: Any) -> None:
        if not isinstance(el.tag, str):  # comments, processing instructions
            if el.tail:
                parts.append(el.tail)
            return
        tag = el.tag.lower()
        if tag in ("script", "style", "noscript", "template"):
            if el.tail:
                parts.append(el.tail)
            return
        block = tag in _BLOCK_TAGS
        if block:
            parts.append("\n")
        if el.text:
            parts.append(el.text)
        for child in el:
            walk(child)
        if block:
            parts.append("\n")
        if el.tail:
            parts.append(el.tail)

    walk(element)
    lines = (_clean_ws(line) for line in "".join(parts).split("\n"))
    return "\n".join(line for line in lines if line)


def _meta(tree: Any) -> dict[str, str]:
    """First value of each <meta name|property|itemprop> (lower-cased key)."""
    found: dict[str, str] = {}
    for el in tree.iter("meta"):
        key = el.get("property") or el.get("name") or el.get("itemprop") or el.get("http-equiv")
        value = el.get("content")
        if key and value and value.strip():
            found.setdefault(key.strip().lower(), value.strip())
    return found


def _json_ld_nodes(tree: Any) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []

    def collect(obj: Any) -> None:
        if isinstance(obj, list):
            for item in obj:
                collect(item)
        elif isinstance(obj, dict):
            if "@graph" in obj:
                collect(obj["@graph"])
            nodes.append(obj)

    for script in tree.xpath('//script[@type="application/ld+json"]'):
        raw = (script.text or "").strip().removeprefix("<!--").removesuffix("-->")
        try:
            collect(json.loads(raw, strict=False))
        except ValueError:
            continue  # broken JSON-LD is common; the other metadata sources remain
    return nodes


def _ld_type(node: dict[str, Any]) -> set[str]:
    kind = node.get("@type", [])
    kinds = kind if isinstance(kind, list) else [kind]
    return {str(k).lower() for k in kinds}


def _ld_article(nodes: list[dict[str, Any]]) -> dict[str, Any] | None:
    for node in nodes:
        if _ld_type(node) & ARTICLE_TYPES:
            return node
    return None


def _ld_names(value: Any) -> list[str]:
    if isinstance(value, list):
        return [name for item in value for name in _ld_names(item)]
    if isinstance(value, dict):
        return _ld_names(value.get("name"))
    if isinstance(value, str) and value.strip():
        return [value.strip()]
    return []


# ----------------------------------------------------------------------------- fields

_BYLINE_NOISE = re.compile(
    r"^(?:by|작성자|글|기자|작성|作者|编辑|责任编辑|记者|来源)\s*[:：]?\s*|\s*(?:기자|특파원|선임기자|"
    r"논설위원|객원기자|记者|编辑)$|\s*[\w.+-]+@[\w.-]+$",
    re.I,
)


def clean_authors(raw: list[str]) -> list[str]:
    """Split bylines, drop titles such as "기자"/"记者" and e-mail addresses, de-duplicate."""
    names: list[str] = []
    for item in raw:
        for part in re.split(r"\s*[,;/|、，]\s*|\s+and\s+", item):
            name = part.strip()
            for _ in range(3):
                name = _BYLINE_NOISE.sub("", name).strip()
            if name and len(name) <= 40 and not name.startswith("http") and name not in names:
                names.append(name)
    return names


# "标题-新华网": a hyphen without spaces only separates a site name that looks like one.
_CJK_SITE_SUFFIX = re.compile(r"[-—]\s?[\u4e00-\u9fff\w]{1,8}(?:网|报|社|新闻|日报|频道|在线|头条)$")


def clean_title(title: str, site_names: list[str]) -> str:
    """Drop a trailing (or leading) site name: "제목 - 사이트", "标题_新浪科技_新浪网", "标题-新华网"."""
    title = _CJK_SITE_SUFFIX.sub("", _clean_ws(title))
    for _ in range(3):
        for sep in _TITLE_SEPARATORS:
            head, found, tail = title.rpartition(sep)
            if (
                found
                and head.strip()
                and (tail.strip() in site_names or (len(tail) <= 16 and len(head) > 2 * len(tail)))
            ):
                title = head.strip()
                break
            lead, found, rest = title.partition(sep)
            if found and lead.strip() in site_names and rest.strip():
                title = rest.strip()
                break
        else:
            return title
    return title


def _first_text(tree: Any, selector: str) -> str:
    for el in _select(tree, selector):
        text = el if isinstance(el, str) else block_text(el)
        if text.strip():
            return text.strip()
    return ""


def _title(
    tree: Any,
    meta: dict[str, str],
    ld: dict[str, Any] | None,
    rules: ExtractRules | None,
    site_names: list[str],
) -> str:
    if rules and rules.title and (text := _first_text(tree, rules.title)):
        return _clean_ws(text)
    if ld and isinstance(ld.get("headline"), str) and ld["headline"].strip():
        return _clean_ws(ld["headline"])
    decorated = [
        _clean_ws(t)
        for t in (meta.get("og:title"), meta.get("twitter:title"), _first_text(tree, "//title"))
        if t
    ]
    # An <h1> making up most of the page title is the headline without the site's decoration
    # (a short one is the site logo).
    for h1 in tree.iter("h1"):
        text = _clean_ws(h1.text_content())
        if len(text) >= 4 and any(text in t and len(text) * 2 >= len(t) for t in decorated):
            return text
    return clean_title(decorated[0], site_names) if decorated else ""


_META_DATE_KEYS = (
    "article:published_time",
    "og:article:published_time",
    "og:published_time",
    "article:published",
    "datepublished",
    "pubdate",
    "publishdate",
    "publish-date",
    "publish_date",
    "publication_date",
    "dc.date.issued",
    "dc.date",
    "dcterms.created",
    "date",
    "sailthru.date",
    "parsely-pub-date",
    "og:regdate",
    "og:release_date",
    "article:created",
    "nv:news:date",
    "dable:published_time",
    "ptime",
    "weibo: article:create_at",
)


def _date_candidates(
    tree: Any,
    meta: dict[str, str],
    nodes: list[dict[str, Any]],
    ld: dict[str, Any] | None,
    rules: ExtractRules | None,
) -> list[str]:
    found: list[str] = []
    # The article node first, then any node (Baidu's "cambrian" JSON-LD has an untyped pubDate).
    for node in ([ld] if ld else []) + nodes:
        found += [
            str(node[k]) for k in ("datePublished", "dateCreated", "pubDate", "uploadDate") if node.get(k)
        ]
    found += [meta[k] for k in _META_DATE_KEYS if k in meta]
    found += [el.get("datetime") or el.text_content() for el in tree.xpath('//*[@itemprop="datePublished"]')]
    if rules and rules.date:
        for el in _select(tree, rules.date):
            found.append(
                el if isinstance(el, str) else (el.get("datetime") or el.get("content") or el.text_content())
            )
    return found


def _dateline_after_headline(tree: Any) -> list[str]:
    """The date printed just below the <h1>: "2019-09-05 11:10 来源：…", "입력 2025.03.04 14:20"."""
    found = []
    for h1 in tree.iter("h1"):
        following = "".join(h1.xpath("following::text()[position() <= 40]"))[:400]
        if match := _DATE_RE.search(following):
            found.append(match[0])
    return found


_DATEISH = re.compile(r"date|time|pub|info|source|meta|byline|writer|author|article-?head", re.I)


def _scan_dates(tree: Any) -> list[str]:
    """Texts of elements that look like a dateline (<time>, class/id with date, time, info ...)."""
    found = [el.get("datetime") or el.text_content() for el in tree.iter("time")]
    for el in tree.xpath("//body//*[@class or @id]"):
        if _DATEISH.search(f"{el.get('class', '')} {el.get('id', '')}") and len(el) < 12:
            text = el.text_content()
            if len(text) < 300 and _DATE_RE.search(text):
                found.append(text)
    return found


def _published(
    tree: Any,
    meta: dict[str, str],
    nodes: list[dict[str, Any]],
    ld: dict[str, Any] | None,
    rules: ExtractRules | None,
    tz: tzinfo,
    fetched: datetime,
) -> datetime | None:
    """JSON-LD, meta tags, the site rule, the dateline below the headline, htmldate, a dateline scan.

    Never after the fetch time: such a date is a wrong zone or a scheduled-post artefact.
    """
    for raw in _date_candidates(tree, meta, nodes, ld, rules) + _dateline_after_headline(tree):
        when = parse_date(raw, tz)
        if when and when <= fetched:
            return when
    # htmldate's markup rules only: its "extensive" text search calls dateparser, which
    # compiles regexes for hundreds of locales (tens of seconds on some CJK pages).
    try:
        day = htmldate.find_date(
            tree,
            extensive_search=False,
            original_date=True,
            max_date=fetched.astimezone(tz).strftime("%Y-%m-%d"),
        )
    except (ValueError, TypeError):
        day = None
    for raw in ([day] if day else []) + _scan_dates(tree):
        when = parse_date(raw, tz)
        if when and when <= fetched:
            return when
    return None


def _authors(
    tree: Any, meta: dict[str, str], ld: dict[str, Any] | None, rules: ExtractRules | None
) -> list[str]:
    raw: list[str] = []
    if rules and rules.author:
        raw = [el if isinstance(el, str) else el.text_content() for el in _select(tree, rules.author)]
    if not raw and ld:
        raw = _ld_names(ld.get("author"))
    if not raw:
        raw = [
            meta[k]
            for k in (
                "author",
                "article:author",
                "dable:author",
                "byl",
                "sailthru.author",
                "parsely-author",
                "dc.creator",
            )
            if k in meta and not meta[k].startswith("http")
        ]
    return clean_authors(raw)


def _canonical_url(tree: Any, url: str, meta: dict[str, str], homepage: str | None) -> str:
    """rel=canonical (or og:url) when it is a plausible article URL on the same site, else the URL."""
    base = tree.xpath("//base/@href")
    page_base = urljoin(url, base[0]) if base else url
    candidates = tree.xpath('//link[@rel="canonical"]/@href') + ([meta["og:url"]] if "og:url" in meta else [])
    here = urlsplit(url)
    for href in candidates:
        target = urlsplit(urljoin(page_base, href.strip()))
        if target.scheme not in ("http", "https") or not target.hostname:
            continue
        # Canonicals pointing at the home page are a common CMS bug, not the article's URL.
        if target.path in ("", "/") and here.path not in ("", "/"):
            continue
        if _site_key(target.hostname) != _site_key(here.hostname or ""):
            continue
        return canonicalize(target.geturl(), homepage)
    return canonicalize(url, homepage)


def _site_key(host: str) -> str:
    """Registrable-domain approximation for same-site checks (last two labels, three for co.kr/com.cn)."""
    labels = host.lower().split(".")
    keep = 3 if len(labels) >= 3 and labels[-2] in ("co", "com", "or", "ne", "net", "org", "go", "ac") else 2
    return ".".join(labels[-keep:])


# The page is parsed once; metadata, dates, body and fallback share the tree. Comments and
# processing instructions go at parse time, as trafilatura's own loader drops them (a comment
# left in the tree can carry old markup into its body).
_PARSER = lxml_html.HTMLParser(collect_ids=False, remove_comments=True, remove_pis=True)
# trafilatura calls a body under 250 characters short and then runs its fallbacks (readability,
# then jusText, whose stop-word test cannot read Chinese or Korean). 250 CJK characters are a
# long brief: for CJK pages the mark is 100 (a CJK character carries ~2.5 Latin ones). Over every
# shared page set this left body F1 equal or higher and made extraction ~45% faster.
_CJK_TRAFILATURA = use_config()
_CJK_TRAFILATURA.set("DEFAULT", "MIN_EXTRACTED_SIZE", "100")
_TRAFILATURA = use_config()
# A precision-mode body this heavy is the story: the default-mode run that would only guard
# against a precision body cut to a comment box is skipped (one trafilatura run, not two).
PRECISE_ENOUGH = 4 * MIN_BODY_WEIGHT


def _trafilatura(tree: Any, url: str, cjk: bool, *, precision: bool = False, recall: bool = False) -> str:
    """trafilatura on the page's one parsed tree (a copy: its cleaning prunes the tree it gets)."""
    return (
        trafilatura.extract(
            copy.deepcopy(tree),
            url=url,
            include_comments=False,
            deduplicate=False,
            favor_precision=precision,
            favor_recall=recall,
            config=_CJK_TRAFILATURA if cjk else _TRAFILATURA,
        )
        or ""
    )


def _recall_fallback(tree: Any, url: str, text: str, cjk: bool) -> str | None:
    """trafilatura's recall-mode body when ours is short and that one is at least twice as long."""
    recalled = _trafilatura(tree, url, cjk, recall=True)
    return recalled if text_weight(recalled) >= 2 * max(text_weight(text), 1) else None


def _body(
    tree: Any,
    html_text: str,
    url: str,
    rules: ExtractRules | None,
    ld: dict[str, Any] | None,
    title: str,
    headlines: set[str],
    cjk: bool,
) -> tuple[str, str, bool]:
    """(text, extractor name, looks like a list page).

    The site rule if it matches, else trafilatura, else text embedded in JSON-LD or a Next.js payload.
    """
    if rules and rules.body:
        for el in _select(tree, rules.body):
            if isinstance(el, str):
                continue
            for sel in rules.drop:
                for junk in _select(el, sel):
                    junk.drop_tree()
            text = block_text(el)
            if text:
                return text, "newsmon/site-rule", False
    if rules and rules.drop:
        for sel in rules.drop:
            for junk in _select(tree, sel):
                junk.drop_tree()
    # Precision mode drops the "related news" and promo blocks that news pages carry, but on
    # some layouts it keeps a comment box instead of the story: when its body is short, the
    # default run wins if it finds more than twice as much.
    raw = _trafilatura(tree, url, cjk, precision=True)
    lines = _clean_body(raw, title, headlines)
    if _lines_weight(lines) < PRECISE_ENOUGH:
        raw = _trafilatura(tree, url, cjk)
        default = _clean_body(raw, title, headlines)
        lines = lines if _lines_weight(lines) * 2 >= _lines_weight(default) else default
    listish = _looks_like_list(headlines, raw, max(map(text_weight, lines), default=0))
    text, name = "\n".join(lines), EXTRACTOR
    # Script-rendered pages may hold the text only in their JSON-LD or in a Next.js payload.
    for embedded, label in (
        (_ld_body(ld), "newsmon/json-ld"),
        (_next_flight_body(html_text), "newsmon/next-flight"),
    ):
        if embedded and text_weight(embedded) > 2 * text_weight(text):
            return embedded, label, False
    return text, name, listish


# Lines that end a story on CJK news sites; what follows is editor credits, copyright and promos.
_END_MARKER = re.compile(
    r"^(?:- )?[（(【\[<]?\s*(?:责任编辑|责编|编辑|編輯)\s*[:：]|网友评论仅供其表达个人看法"
    r"|무단\s?전재|재배포\s?금지|저작권자"
)


# The tail of a story body that is not story: bylines with an email, copyright and reprint
# notices, photo credits, "related articles" headers and the link lists after them.
_EMAIL = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
_KO_BYLINE = re.compile(r"([가-힣]{2,4})\s?(?:기자|특파원|객원기자|인턴기자)")
_ZH_BYLINE = re.compile(r"(?:记者|記者|作者|编辑|編輯)\s*[:：/]?\s*([\u4e00-\u9fff]{2,4})")
_TAIL_LINE = re.compile(
    rf"{_EMAIL}\s*[)）\]]?\s*$|무단\s?전재|재배포\s?금지|저작권자|版权所有|版權所有|未经授权|未經授權|禁止转载|禁止轉載"
    r"|all rights reserved|copyright\b|ⓒ|©|^\(?끝\)?$"
    r"|^[\[(（【]?\s*(?:사진|사진제공|写真|图片来源|圖片來源|图源|圖源|photo)\s*[=:：/]"
    r"|^[(（]?\s*(?:[가-힣]{2,4}\s?(?:기자|특파원)|(?:记者|記者)\s*[\u4e00-\u9fff]{2,4})\s*[)）]?$",
    re.IGNORECASE,
)
_RELATED = re.compile(
    r"^[\[【<]?\s*(?:관련\s?기사|相关阅读|相關閱讀|相关新闻|相關新聞|延伸阅读|延伸閱讀|推荐阅读|推薦閱讀"
    r"|related (?:articles|stories|news))\s*[\]】>:：]?\s*$",
    re.IGNORECASE,
)
_INLINE_BYLINE = re.compile(rf"\s*[(（\[]?\s*([가-힣]{{2,4}})\s?기자\s*(?:{_EMAIL})?\s*[)）\]]?\s*$")
MAX_TAIL_LINE = 160
_SENTENCE_END = re.compile(r"[.!?。！？](?:\s|$)")


def _is_tail_line(line: str) -> bool:
    """Empty, or a short notice line: its match is not preceded by a finished sentence (a
    paragraph that ends with a byline keeps its text; only the byline is cut from it)."""
    if not line:
        return True
    found = _TAIL_LINE.search(line) if len(line) <= MAX_TAIL_LINE else None
    bracketed = line[0] in "[【(（" and line[-1] in "]】)）"  # a notice set apart as a whole
    return bool(found) and (bracketed or not _SENTENCE_END.search(line[: found.start()]))


def strip_tail(text: str) -> tuple[str, list[str]]:
    """(the body without its non-story tail, the reporter names found in it).

    Only the end is touched: a "related articles" header in the second half cuts what follows,
    then trailing short lines that are bylines, emails, copyright or photo credits go, and a
    byline written at the end of the last paragraph is cut from it.
    """
    lines = text.split("\n")
    total, seen = _lines_weight(lines), 0
    for i, line in enumerate(lines):
        if i and seen * 2 >= total and _RELATED.match(line.strip()):
            lines = lines[:i]
            break
        seen += text_weight(line)
    names: list[str] = []
    while lines and _is_tail_line(lines[-1].strip()):
        tail = lines.pop().strip()
        names += _KO_BYLINE.findall(tail) + _ZH_BYLINE.findall(tail)
    if lines and (inline := _INLINE_BYLINE.search(lines[-1])) and inline.start() > 0:
        names.append(inline.group(1))
        lines[-1] = lines[-1][: inline.start()]
    return "\n".join(lines).strip(), list(dict.fromkeys(names))


def _lines_weight(lines: list[str]) -> int:
    return sum(text_weight(line) for line in lines)


def _clean_body(text: str, title: str, headlines: set[str]) -> list[str]:
    """Paragraph lines without headline links, the repeated title, and what follows an end marker."""
    lines = [line.strip() for line in text.split("\n") if line.strip() and not _is_link_line(line, headlines)]
    if lines and _clean_ws(lines[0]) == title:
        lines = lines[1:]  # the headline repeated as the first paragraph
    total, seen = _lines_weight(lines), 0
    for i, line in enumerate(lines):
        if i and seen * 4 >= total and _END_MARKER.search(line):
            return lines[:i]
        seen += text_weight(line)
    return lines


def _ld_body(ld: dict[str, Any] | None) -> str:
    body = ld.get("articleBody") if ld else None
    return "\n".join(_clean_ws(p) for p in body.split("\n") if p.strip()) if isinstance(body, str) else ""


_NEXT_PUSH = re.compile(r'self\.__next_f\.push\(\[1,"((?:[^"\\]|\\.)*)"\]\)')
_NEXT_TEXT_ROW = re.compile(rb"(?:^|\n)[0-9a-f]+:T([0-9a-f]+),")


def _next_flight_body(html_text: str) -> str:
    """Article HTML carried in a Next.js app-router payload (``self.__next_f.push``) as a text row."""
    pushes = _NEXT_PUSH.findall(html_text)
    if not pushes:
        return ""
    try:
        payload = "".join(json.loads(f'"{chunk}"') for chunk in pushes).encode("utf-8")
    except ValueError:
        return ""
    # Text rows are "<id>:T<hex byte length>,<text>"; the article is the row with most paragraphs.
    rows = [
        payload[m.end() : m.end() + int(m[1], 16)].decode("utf-8", "ignore")
        for m in _NEXT_TEXT_ROW.finditer(payload)
    ]
    best = max(rows, key=lambda row: row.count("<p"), default="")
    if best.count("<p") < 2:
        return ""
    return block_text(
        lxml_html.fragment_fromstring(re.sub(r"\$\$[A-Z_]+\$\$", "", best), create_parent="div")
    )


def _link_texts(tree: Any) -> set[str]:
    """Texts of content links long enough to be headlines (menus, headers and footers excluded)."""
    links = tree.xpath("//body//a[not(ancestor::nav or ancestor::header or ancestor::footer)]")
    return {t for a in links if text_weight(t := _clean_ws(a.text_content())) >= 24}


def _is_link_line(line: str, titles: set[str]) -> bool:
    line = line.strip().lstrip("-•·*> ").strip()
    return text_weight(line) >= 12 and any(
        line in t or (t in line and text_weight(t) * 2 > text_weight(line)) for t in titles
    )


def _looks_like_list(titles: set[str], raw: str, longest: int) -> bool:
    """An index, tag or section page: many headline links, and either no real paragraph at all or
    mostly headline links in the extracted text with only teaser-length paragraphs."""
    if len(titles) < 5:
        return False
    if longest < _PARAGRAPH_WEIGHT // 2:
        return True
    lines = [line for line in raw.split("\n") if line.strip()]
    linked = sum(text_weight(line) for line in lines if _is_link_line(line, titles))
    return linked * 2 >= text_weight(raw) and longest < _PARAGRAPH_WEIGHT


# ----------------------------------------------------------------------------- entry point


def extract_article(
    html: bytes | str,
    url: str,
    source: Source | None = None,
    fetched: datetime | None = None,
    *,
    content_type: str | None = None,
    announced: bool = False,
) -> ExtractResult:
    """Extract one article; never raises on bad input (returns a skip reason instead).

    ``announced``: a feed, a news sitemap or the source's article pattern says this URL is an
    article. Then no heuristic drops it (a lost article is the worst outcome for a monitor):
    the list-page and too-short gates only warn (``Article.warnings``). A page reached by
    following links must pass them.
    """
    fetched = fetched or utcnow()
    lang_hint = source.lang if source else None
    encoding = "str"
    if isinstance(html, bytes):
        if kind := sniff_binary(html):
            return ExtractResult(skip=SKIP_BINARY, detail=kind)
        html, encoding = decode_html(html, content_type, lang_hint)
    html = html.replace("\x00", "")
    if not html.strip():
        return ExtractResult(skip=SKIP_EMPTY, encoding=encoding)
    try:
        tree = lxml_html.document_fromstring(html, parser=_PARSER)
    except (etree.ParserError, ValueError):
        return ExtractResult(skip=SKIP_EMPTY, detail="unparsable HTML", encoding=encoding)
    # A per-site date rule may need the raw page; body rules mutate the tree, so take metadata first.
    rules = source.extract if source else None
    meta = _meta(tree)
    nodes = _json_ld_nodes(tree)
    ld = _ld_article(nodes)
    site_names = [n for n in (meta.get("og:site_name"), source.label if source else None) if n]
    title = _title(tree, meta, ld, rules, site_names)
    html_lang = (tree.get("lang") or meta.get("content-language") or "").split("-")[0].lower() or None
    tz = LANG_TZ.get(lang_hint or html_lang or "", UTC)
    published = _published(tree, meta, nodes, ld, rules, tz, fetched)
    authors = _authors(tree, meta, ld, rules)
    homepage = source.homepage if source else None
    canonical = _canonical_url(tree, url, meta, homepage)
    headlines = _link_texts(tree)
    cjk = is_cjk_lang(lang_hint or html_lang or lang_by_script(title))
    text, extractor, listish = _body(tree, html, url, rules, ld, title, headlines, cjk)
    lang = lang_by_script(title + "\n" + text) or html_lang or lang_hint
    if _ERROR_TITLE.search(title) and not ld:
        return ExtractResult(skip=SKIP_ERROR_PAGE, detail=title[:80], encoding=encoding)
    text, bylines = strip_tail(text)
    authors = authors or clean_authors(bylines)
    warnings: list[str] = []
    if text_weight(text) < MIN_BODY_WEIGHT and (fallback := _recall_fallback(tree, url, text, cjk)):
        text, extractor = strip_tail(fallback)[0], f"{EXTRACTOR} (recall)"
        warnings.append("fallback_body")
    is_typed_article = bool(ld) or meta.get("og:type", "").lower() == "article"
    if not is_typed_article and (NON_ARTICLE_PATH.search(urlsplit(url).path) or listish):
        if not announced:
            return ExtractResult(skip=SKIP_LIST_PAGE, encoding=encoding)
        warnings.append("list_like")
    if not text or text_weight(text) < MIN_BODY_WEIGHT:
        if not announced:
            return ExtractResult(
                skip=SKIP_TOO_SHORT, detail=f"{text_weight(text)} < {MIN_BODY_WEIGHT}", encoding=encoding
            )
        warnings.append("short_body" if text else "no_body")
        text = text or _clean_ws(meta.get("og:description") or meta.get("description") or "")
    if not title:
        return ExtractResult(skip=SKIP_NO_TITLE, encoding=encoding)
    article = Article(
        url=url,
        canonical_url=canonical,
        source=source.name if source else "",
        site=urlsplit(canonical).hostname or "",
        title=title,
        text=text,
        published=published,
        authors=authors,
        lang=lang,
        fetched=fetched,
        extractor=extractor,
        warnings=warnings,
    )
    return ExtractResult(article=article, encoding=encoding)
