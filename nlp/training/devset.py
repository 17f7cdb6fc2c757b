"""Evaluation sets built from the third-party texts in ../shared/data at run time.

The repository holds only references and labels (nlp/data/alert_devset.tsv: source, ref,
hash, label, note; nlp/data/topic_devset.tsv: source, ref, hash, labels, note); the texts
are read from the shared folder, never copied. A hash per row proves the text found is the
text that was labelled.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from itertools import combinations
from pathlib import Path

from newsmon.nlp.lexicon import DATA_DIR

SHARED_ENV = "NEWSMON_SHARED_DATA"
ALERT_DEVSET = DATA_DIR / "alert_devset.tsv"
TOPIC_DEVSET = DATA_DIR / "topic_devset.tsv"
TOPIC_TRAINSET = DATA_DIR / "topic_trainset.tsv"  # same format, for training only


def shared_data_dir() -> Path:
    """../shared/data beside the repository, or $NEWSMON_SHARED_DATA."""
    env = os.environ.get(SHARED_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"


def text_hash(title: str, text: str) -> str:
    return hashlib.sha1(f"{title}\n{text}".encode()).hexdigest()[:10]


@dataclass(frozen=True)
class SharedText:
    title: str
    text: str
    lang: str


# --- one resolver per source: ref -> text


@cache
def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _ynat(shared: Path, ref: str) -> SharedText:
    # ref = physical line number (1-based, header = line 1) of the KLUE YNAT train TSV.
    line = _lines(shared / "klue_ynat_ko" / "ynat_train.tsv")[int(ref) - 1]
    _label, title = next(csv.reader([line], delimiter="\t"))
    return SharedText(title, "", "ko")


def _thucnews(shared: Path, ref: str) -> SharedText:
    title, _label = _lines(shared / "thucnews_titles_zh" / "dev.txt")[int(ref) - 1].rsplit("\t", 1)
    return SharedText(title, "", "zh")


def _tnews(shared: Path, ref: str) -> SharedText:
    # ref = file:id, e.g. train_few_all.json:4314
    name, _, row_id = ref.partition(":")
    for line in _lines(shared / "tnews_fewclue_zh" / name):
        row = json.loads(line)
        if str(row["id"]) == row_id:
            return SharedText(row["sentence"], "", "zh")
    raise KeyError(ref)


@cache
def _aeb_truth(shared: Path) -> dict[str, dict[str, str]]:
    return json.loads((shared / "aeb_en" / "ground-truth.json").read_text(encoding="utf-8"))


def _aeb(shared: Path, ref: str) -> SharedText:
    return SharedText("", _aeb_truth(shared)[ref]["articleBody"], "en")


def _fundus(shared: Path, ref: str) -> SharedText:
    # ref = path/to/Publisher.json#V1: the ground-truth title and body paragraphs.
    path, _, version = ref.partition("#")
    article = json.loads((shared / "fundus_kr_cn" / path).read_text(encoding="utf-8"))[version]
    paragraphs = [p for s in article["body"]["sections"] for p in s["paragraphs"]]
    lang = {"kr": "ko", "cn": "zh", "jp": "ja"}.get(path.split("/")[0].split("_")[0], "")
    return SharedText(article["title"], "\n".join(paragraphs), lang)


def _sci_news(shared: Path, ref: str) -> SharedText:
    doc = json.loads((shared / "sci_news_sum_kr50" / "data" / f"{ref}.json").read_text(encoding="utf-8"))
    return SharedText(doc["title"], " ".join(doc["sentences"]), "ko")


def _newspaper4k(shared: Path, ref: str) -> SharedText:
    base = shared / "newspaper4k_cjk"
    meta = base / "metadata" / f"{ref}.json"
    title = json.loads(meta.read_text(encoding="utf-8")).get("title", "") if meta.is_file() else ""
    lang = "ko" if ref.startswith("korean") else "ja" if ref.startswith("japanese") else "zh"
    return SharedText(title, (base / "txt" / f"{ref}.txt").read_text(encoding="utf-8"), lang)


def _goose3(shared: Path, ref: str) -> SharedText:
    doc = json.loads((shared / "goose3_cjk" / f"{ref}.json").read_text(encoding="utf-8"))
    lang = "ko" if "korean" in ref else "zh"
    return SharedText("", doc["expected"]["cleaned_text"], lang)


RESOLVERS: dict[str, Callable[[Path, str], SharedText]] = {
    "ynat": _ynat,
    "thucnews": _thucnews,
    "tnews": _tnews,
    "aeb": _aeb,
    "fundus": _fundus,
    "sci_news": _sci_news,
    "newspaper4k": _newspaper4k,
    "goose3": _goose3,
}


def resolve(shared: Path, source: str, ref: str) -> SharedText:
    return RESOLVERS[source](shared, ref)


def long_texts(shared: Path) -> Iterable[tuple[str, SharedText]]:
    """Every full article body in the shared data with its (source, ref) key: the material
    for the clustering test set and the throughput benchmark."""
    for path in sorted((shared / "sci_news_sum_kr50" / "data").glob("*.json")):
        yield f"sci_news:{path.stem}", _sci_news(shared, path.stem)
    for path in sorted((shared / "fundus_kr_cn").glob("**/*.json")):
        rel = path.relative_to(shared / "fundus_kr_cn").as_posix()
        for version in json.loads(path.read_text(encoding="utf-8")):
            yield f"fundus:{rel}#{version}", _fundus(shared, f"{rel}#{version}")
    for path in sorted((shared / "newspaper4k_cjk" / "txt").glob("*.txt")):
        yield f"newspaper4k:{path.stem}", _newspaper4k(shared, path.stem)
    for path in sorted((shared / "goose3_cjk").glob("*.json")):
        yield f"goose3:{path.stem}", _goose3(shared, path.stem)
    for ref in sorted(_aeb_truth(shared)):
        yield f"aeb:{ref}", _aeb(shared, ref)


# --- the labelled dev sets: alert decision (alert_devset.tsv) and topics (topic_devset.tsv)


def is_holdout(key: str) -> bool:
    """Half the rows of a dev set, chosen by hash of ``source:ref``: never looked at (alert)
    or trained on (topics) while tuning, only scored."""
    return int(hashlib.sha1(key.encode()).hexdigest(), 16) % 2 == 1


def _labelled_rows(shared: Path, path: Path) -> Iterable[tuple[dict[str, str], SharedText]]:
    """Each row of a references-only TSV with its text, checked against the row's hash."""
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader((line for line in fh if not line.startswith("#")), delimiter="\t"):
            doc = resolve(shared, row["source"], row["ref"])
            if text_hash(doc.title, doc.text) != row["hash"]:
                raise ValueError(
                    f"{row['source']}:{row['ref']}: the shared text changed since it was labelled"
                )
            yield row, doc


@dataclass(frozen=True)
class _Ref:
    source: str
    ref: str

    @property
    def key(self) -> str:
        return f"{self.source}:{self.ref}"

    @property
    def holdout(self) -> bool:
        return is_holdout(self.key)


@dataclass(frozen=True)
class DevItem(_Ref):
    label: bool
    note: str
    doc: SharedText


def load_alert_devset(shared: Path, path: Path = ALERT_DEVSET) -> list[DevItem]:
    return [
        DevItem(row["source"], row["ref"], row["label"] == "1", row["note"], doc)
        for row, doc in _labelled_rows(shared, path)
    ]


@dataclass(frozen=True)
class TopicItem(_Ref):
    labels: frozenset[str]
    note: str
    doc: SharedText


def load_topic_devset(shared: Path, path: Path = TOPIC_DEVSET) -> list[TopicItem]:
    """The multi-label topic set; ``labels`` is ``-`` in the file for none."""
    return [
        TopicItem(
            row["source"],
            row["ref"],
            frozenset(lab for lab in row["labels"].split(",") if lab and lab != "-"),
            row["note"],
            doc,
        )
        for row, doc in _labelled_rows(shared, path)
    ]


@dataclass
class BinaryScores:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, gold: bool, pred: bool, what: str) -> None:
        if gold and pred:
            self.tp += 1
        elif pred:
            self.fp += 1
            self.errors.append(f"FP {what}")
        elif gold:
            self.fn += 1
            self.errors.append(f"FN {what}")
        else:
            self.tn += 1

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def summary(self) -> str:
        return (
            f"P={self.precision:.3f} R={self.recall:.3f} F1={self.f1:.3f} "
            f"(tp={self.tp} fp={self.fp} fn={self.fn} tn={self.tn})"
        )


# --- the story-clustering test set: real bodies, republished with edits and truncations


@dataclass(frozen=True)
class ClusterDoc:
    doc_id: str
    title: str
    text: str
    story: str  # the original it derives from: the true cluster


_SENTENCE_END = re.compile(r"(?<=[.!?。！？다])\s+")


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text) if s.strip()]


def cluster_testset(shared: Path, seed: int = 7, min_chars: int = 400) -> list[ClusterDoc]:
    """Each real article of at least `min_chars` plus three copies as other outlets would
    run them: a wire copy with the outlet's dateline and footer, a lightly edited copy (a
    sentence dropped, words changed, a new headline), and a truncated copy (the first
    40-70% of sentences). Articles on the same topic (all of sci_news_sum is IT/science
    news) are different stories and must stay apart."""
    rng = random.Random(seed)
    docs: list[ClusterDoc] = []
    for key, doc in long_texts(shared):
        sentences = _sentences(doc.text)
        if len(doc.text) < min_chars or len(sentences) < 4:
            continue
        docs.append(ClusterDoc(key, doc.title, doc.text, key))
        dateline = {"ko": "(서울=뉴스통신) 김기자 = ", "zh": "本报讯 记者 ", "en": "(Wire) - "}.get(
            doc.lang, ""
        )
        footer = {
            "ko": " ⓒ 무단전재 및 재배포 금지",
            "zh": " （责任编辑：王）",
            "en": " Reporting by staff.",
        }.get(doc.lang, "")
        docs.append(ClusterDoc(f"{key}/wire", doc.title, dateline + doc.text + footer, key))
        edited = list(sentences)
        del edited[rng.randrange(1, len(edited) - 1)]
        words = " ".join(edited).split(" ")
        for _ in range(max(1, len(words) // 40)):  # ~2.5% of the words changed
            words[rng.randrange(len(words))] = rng.choice(
                ["또한", "한편", "此外", "同时", "also", "meanwhile"]
            )
        docs.append(ClusterDoc(f"{key}/edited", f"[종합] {doc.title}", " ".join(words), key))
        keep = max(2, round(len(sentences) * rng.uniform(0.4, 0.7)))
        docs.append(ClusterDoc(f"{key}/truncated", doc.title, " ".join(sentences[:keep]), key))
    rng.shuffle(docs)  # copies arrive in any order, originals not always first
    return docs


def pair_scores(predicted: Mapping[str, str], truth: Mapping[str, str]) -> tuple[float, float]:
    """Pair precision and recall: over all document pairs, 'same cluster' vs 'same story'."""

    def pairs(assignment: Mapping[str, str]) -> set[tuple[str, str]]:
        groups: dict[str, list[str]] = {}
        for doc_id, label in assignment.items():
            groups.setdefault(label, []).append(doc_id)
        return {(a, b) for members in groups.values() for a, b in combinations(sorted(members), 2)}

    pred, gold = pairs(predicted), pairs(truth)
    hit = len(pred & gold)
    return (hit / len(pred) if pred else 1.0), (hit / len(gold) if gold else 1.0)
