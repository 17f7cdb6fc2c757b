"""Training data for the transformers classifiers: labelled JSONL, and the tech-relevance set built
from the labelled headlines in ../shared/data (read in place, never copied)."""

from __future__ import annotations

import csv
import hashlib
import json
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch/transformers take seconds to import: only when training.
    pass


SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TECH, OTHER = "tech", "other"


class TrainError(ValueError):
    """Bad training input (empty file, missing labels, ...): reported as one line."""


@dataclass
class LabelledData:
    texts: list[str]
    labels: list[list[str]]  # one label per row unless multi_label
    label_names: list[str]
    multi_label: bool
    extra: list[dict[str, Any]]  # the rest of each row (lang, source, ...)
    weights: list[float]


def read_jsonl(path: Path, label_names: Sequence[str] | None = None) -> LabelledData:
    """Read labelled JSONL; ``label_names`` fixes the label order (else sorted, as found)."""
    texts: list[str] = []
    labels: list[list[str]] = []
    extra: list[dict[str, Any]] = []
    weights: list[float] = []
    multi: bool | None = None
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TrainError(f"{path}:{lineno}: not JSON: {exc}") from None
            text = row.pop("text", None)
            if not isinstance(text, str) or not text.strip():
                raise TrainError(f"{path}:{lineno}: needs a non-empty string 'text'")
            if "labels" in row:
                row_multi, value = True, row.pop("labels")
                if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
                    raise TrainError(f"{path}:{lineno}: 'labels' must be a list of labels")
                row_labels = [str(v) for v in value]
            elif "label" in row:
                row_multi, row_labels = False, [str(row.pop("label"))]
            else:
                raise TrainError(f"{path}:{lineno}: needs 'label' or 'labels'")
            if multi is None:
                multi = row_multi
            elif multi != row_multi:
                raise TrainError(f"{path}:{lineno}: mixes 'label' and 'labels' rows")
            texts.append(text.strip())
            labels.append(row_labels)
            weight = row.pop("weight", 1.0)
            if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
                raise TrainError(f"{path}:{lineno}: 'weight' must be a positive number")
            weights.append(float(weight))
            extra.append(row)
    if not texts:
        raise TrainError(f"{path}: no labelled rows")
    found = sorted({lab for row in labels for lab in row})
    if label_names is None:
        names = found
    else:
        names = list(label_names)
        unknown = set(found) - set(names)
        if unknown:
            raise TrainError(f"{path}: labels {sorted(unknown)} are not among the model's {names}")
    if not multi and len(names) < 2:
        raise TrainError(f"{path}: a single-label classifier needs at least two labels, found {names}")
    return LabelledData(texts, labels, names, bool(multi), extra, weights)


def _split_hash(text: str) -> int:
    """0..99 from the text itself: the same headline always lands in the same split."""
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:8], 16) % 100


def text_key(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split()).lower()


@dataclass
class RelevanceDataStats:
    train: dict[str, dict[str, int]]  # source -> {"tech": n, "other": n}
    heldout: dict[str, dict[str, int]]
    train_path: str
    heldout_path: str
    dropped_overlap: int = 0


# The shared sets' classes that are tech news (the relevance label), and those the topic taxonomy
# has nothing to say about (no AI, chips, compute, funding, trade or export controls).
TECH_CATEGORIES = frozenset({"IT과학", "science", "news_tech"})
GENERAL_CATEGORIES = frozenset(
    {
        *("사회", "생활문화", "스포츠"),
        *("realty", "education", "society", "sports", "entertainment"),
        *("news_story", "news_culture", "news_entertainment", "news_sports", "news_house"),
        *("news_edu", "news_travel", "news_agriculture"),
    }
)


def labelled_headlines(shared_dir: Path) -> Iterator[tuple[str, str, str, str, str]]:
    """(split, source, lang, class, text) for every labelled headline we use."""
    # KLUE YNAT: only the official train split is in ../shared (its dev is kept aside
    # there), so a fixed hash-based 10% of it is our held-out set.
    ynat = shared_dir / "klue_ynat_ko" / "ynat_train.tsv"
    with ynat.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")  # pandas to_csv: a few fields are quoted
        header = next(reader)
        if header[:2] != ["label", "text"]:
            raise TrainError(f"{ynat}: unexpected header {header}")
        for row in reader:
            if len(row) < 2 or not row[1].strip():
                continue
            text = row[1].strip()
            split = "heldout" if _split_hash(text) < 10 else "train"
            yield split, "klue_ynat", "ko", row[0], text

    # THUCNews titles: train.txt/test.txt are not in ../shared, so 20% of dev.txt is held out.
    thuc = shared_dir / "thucnews_titles_zh"
    classes = (thuc / "class.txt").read_text(encoding="utf-8").split()
    with (thuc / "dev.txt").open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            text, _, idx = line.rstrip("\n").rpartition("\t")
            text = text.strip()
            split = "heldout" if _split_hash(text) < 20 else "train"
            yield split, "thucnews", "zh", classes[int(idx)], text

    # TNEWS (FewCLUE): its own split — train_few_all for training, dev_few_all held out.
    tnews = shared_dir / "tnews_fewclue_zh"
    for name, split in (("train_few_all.json", "train"), ("dev_few_all.json", "heldout")):
        with (tnews / name).open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    row = json.loads(line)
                    yield split, "tnews", "zh", row["label_desc"], row["sentence"].strip()

    # Naver IT/science news (50 articles, all positive): an out-of-domain recall check only.
    for path in sorted((shared_dir / "sci_news_sum_kr50" / "data").glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        yield "heldout", "sci_news_kr50", "ko", "IT과학", doc["title"].strip()


def relevance_rows(shared_dir: Path) -> Iterator[tuple[str, str, str, str, str]]:
    """(split, source, lang, label, text): ``labelled_headlines`` as tech news or not."""
    for split, source, lang, category, text in labelled_headlines(shared_dir):
        yield split, source, lang, TECH if category in TECH_CATEGORIES else OTHER, text


def build_relevance_dataset(
    shared_dir: Path,
    out_jsonl: Path,
    *,
    heldout_jsonl: Path | None = None,
    lang_weights: dict[str, float] | None = None,
) -> RelevanceDataStats:
    """Write the tech-relevance training JSONL (and its held-out twin) from ../shared/data.

    Labels: ``tech`` = KLUE YNAT IT과학 / THUCNews science (科技) / TNEWS news_tech;
    ``other`` = every other class of the same set. Held-out rows never reach training:
    any training row whose normalised text also occurs held out is dropped.
    ``lang_weights`` (default ``{"zh": 4.0}``) sets the loss ``weight`` of training rows by
    language: ../shared has ~4.5x more Korean than Chinese headlines.
    """
    weights = {"zh": 4.0} if lang_weights is None else lang_weights
    shared_dir = Path(shared_dir)
    out_jsonl = Path(out_jsonl)
    heldout_jsonl = Path(heldout_jsonl) if heldout_jsonl else default_heldout_path(out_jsonl)
    rows = list(relevance_rows(shared_dir))
    held_keys = {text_key(r[4]) for r in rows if r[0] == "heldout"}
    seen: set[str] = set()
    stats: dict[str, dict[str, dict[str, int]]] = {"train": {}, "heldout": {}}
    dropped = 0
    out_jsonl.parent.mkdir(parents=True, exist_ok=True)
    heldout_jsonl.parent.mkdir(parents=True, exist_ok=True)
    with out_jsonl.open("w", encoding="utf-8") as ftrain, heldout_jsonl.open("w", encoding="utf-8") as fheld:
        for split, source, lang, label, text in rows:
            key = text_key(text)
            if split == "train":
                if key in held_keys or key in seen:  # no leak into held-out, no duplicates
                    dropped += 1
                    continue
                seen.add(key)
            rec: dict[str, Any] = {"text": text, "label": label, "lang": lang, "source": source}
            if split == "train" and weights.get(lang, 1.0) != 1.0:
                rec["weight"] = weights[lang]
            (ftrain if split == "train" else fheld).write(json.dumps(rec, ensure_ascii=False) + "\n")
            counts = stats[split].setdefault(source, {TECH: 0, OTHER: 0})
            counts[label] += 1
    return RelevanceDataStats(stats["train"], stats["heldout"], str(out_jsonl), str(heldout_jsonl), dropped)


def default_heldout_path(train_jsonl: Path) -> Path:
    return train_jsonl.with_name(train_jsonl.stem + ".heldout.jsonl")
