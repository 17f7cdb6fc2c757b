"""Topic classification measured on the labelled topic set, and the topic model's data.

``nlp/data/topic_devset.tsv`` holds references into ../shared/data with hand labels (the
taxonomy's six topics, multi-label). Its rows split in two by hash (``TopicItem.holdout``):

* the **tuning half** trains the transformers topic model (with the hand-labelled training
  set ``topic_trainset.tsv`` and rules-labelled "silver" headlines, see
  ``build_topic_dataset``) and tunes the ensemble's per-label weights and thresholds
  (``tune_ensemble``, on out-of-fold model scores; saved as ``ensemble.json`` beside the model);
* the **held-out half** is only scored (``evaluate_backends``): those are the README figures.

The shipped model ``nlp/models/topics`` is reproduced with::

    newsmon train --topics-from-shared ../shared/data --data var/topics.jsonl \\
        --base-model nlp/models/tech_relevance --out nlp/models/topics --epochs 4 --threads 1
"""

from __future__ import annotations

import json
import random
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from newsmon.models import Article
from newsmon.nlp.topics import RulesBackend, TopicBackend, all_scores, classify, weighted_mean
from newsmon.nlp.training.data import relevance_rows, text_key
from newsmon.nlp.training.devset import TOPIC_TRAINSET, BinaryScores, TopicItem, load_topic_devset
from newsmon.nlp.transformers_backend import article_text

MEMBERS = ["rules", "transformers"]
# Grids searched per label on the tuning half: the transformers member's share of the
# weight, and the threshold. The members alone, (0, rules threshold) and (1, 0.5), are the
# fallbacks, so the tuned ensemble is never worse than either member on the tuning half.
WEIGHT_GRID = [i / 10 for i in range(11)]
THRESHOLD_GRID = [round(0.2 + i * 0.05, 2) for i in range(13)]  # 0.2 .. 0.8
MIN_GAIN = 0.02  # F1 a mix must add over the better member alone


def devset_article(item: TopicItem) -> Article:
    key = f"devset:{item.key}"
    return Article(url=key, canonical_url=key, title=item.doc.title, text=item.doc.text, lang=item.doc.lang)


def label_scores(
    gold: Sequence[frozenset[str]], predicted: Sequence[Iterable[str]], labels: Sequence[str]
) -> dict[str, BinaryScores]:
    """Per label and micro-averaged ("micro") counts of predicted vs gold label sets."""
    out = {label: BinaryScores() for label in [*labels, "micro"]}
    for i, (g, p) in enumerate(zip(gold, predicted, strict=True)):
        pred = set(p)
        for label in labels:
            for name in (label, "micro"):
                out[name].add(label in g, label in pred, f"{label} #{i}")
    return out


@dataclass
class EnsembleTuning:
    members: list[str]
    labels: dict[str, dict[str, Any]]  # label -> {"weights": [..], "threshold": t, "f1": tuning F1}
    tuned_on: str

    def to_json(self) -> str:
        return json.dumps(
            {"members": self.members, "tuned_on": self.tuned_on, "labels": self.labels}, indent=2
        )


def _mix_f1(pairs: Sequence[tuple[float, float]], truth: Sequence[bool], w: float, t: float) -> float:
    """F1 of 'rules share 1-w, model share w, kept at >= t' over (rules, model) score pairs."""
    counts = BinaryScores()
    for (r, m), g in zip(pairs, truth, strict=True):
        counts.add(g, weighted_mean([r, m], [1 - w, w]) >= t, "")
    return round(counts.f1, 6)


def tune_ensemble(
    rules: Sequence[Mapping[str, float]],
    model: Sequence[Mapping[str, float]],
    gold: Sequence[frozenset[str]],
    labels: Sequence[str],
    rules_threshold: Callable[[str], float],
) -> EnsembleTuning:
    """Per label, the (weights, threshold) with the best F1 of rules+model scores on these
    rows; ties go to the setting nearest an even mix at 0.5. A mix must beat the better
    member alone by ``MIN_GAIN``, else that member alone is kept: a small gain on a few
    hundred rows is mostly noise and does not carry over to new data."""
    tuned: dict[str, dict[str, Any]] = {}
    for label in labels:
        truth = [label in g for g in gold]
        pairs = [(r.get(label, 0.0), m.get(label, 0.0)) for r, m in zip(rules, model, strict=True)]

        f1 = partial(_mix_f1, pairs, truth)  # f1(w, t)

        alone = {"rules": (0.0, rules_threshold(label)), "transformers": (1.0, 0.5)}
        alone_f1 = {name: f1(*setting) for name, setting in alone.items()}
        best_member = max(alone_f1, key=lambda name: alone_f1[name])
        w, t = max(
            ((w, t) for w in WEIGHT_GRID for t in THRESHOLD_GRID),
            key=lambda wt: (f1(*wt), -(abs(wt[0] - 0.5) + abs(wt[1] - 0.5))),
        )
        choice = "mix"
        if f1(w, t) < alone_f1[best_member] + MIN_GAIN:
            (w, t), choice = alone[best_member], best_member
        tuned[label] = {
            "weights": [round(1 - w, 2), w],
            "threshold": t,
            "choice": choice,
            "f1": f1(w, t),
            "members_f1": alone_f1,
        }
    return EnsembleTuning(list(MEMBERS), tuned, f"topic_devset.tsv tuning half ({len(gold)} rows)")


def score_maps(backend: TopicBackend, articles: list[Article]) -> list[dict[str, float]]:
    return [{label: t.score for label, t in row.items()} for row in all_scores(backend, articles, None)]


@dataclass
class BackendFigures:
    name: str
    scores: dict[str, BinaryScores] = field(default_factory=dict)


def evaluate_backends(
    items: Sequence[TopicItem], backends: Mapping[str, TopicBackend], labels: Sequence[str]
) -> list[BackendFigures]:
    """Each backend's per-label precision/recall/F1 on ``items`` (use the held-out half)."""
    articles = [devset_article(i) for i in items]
    gold = [i.labels for i in items]
    return [
        BackendFigures(
            name, label_scores(gold, [[t.label for t in ts] for ts in classify(b, articles, None)], labels)
        )
        for name, b in backends.items()
    ]


def figures_table(figures: Sequence[BackendFigures], labels: Sequence[str]) -> list[dict[str, Any]]:
    """Rows for the README / model card: backend, label, n positives, P, R, F1."""
    rows = []
    for fig in figures:
        for label in [*labels, "micro"]:
            s = fig.scores[label]
            rows.append(
                {
                    "backend": fig.name,
                    "label": label,
                    "positives": s.tp + s.fn,
                    "precision": round(s.precision, 3),
                    "recall": round(s.recall, 3),
                    "f1": round(s.f1, 3),
                }
            )
    return rows


# --------------------------------------------------------------------------- training data


@dataclass
class TopicDataStats:
    gold_rows: int
    silver_rows: int
    silver_labels: dict[str, int]
    heldout_rows: int
    path: str


def build_topic_dataset(
    shared: Path,
    out_jsonl: Path,
    *,
    gold_weight: float = 5.0,
    negatives_per_positive: float = 1.0,
    seed: int = 13,
    rules: RulesBackend | None = None,
    progress: Callable[[str], None] | None = None,
) -> TopicDataStats:
    """Training JSONL for the topic model: the hand-labelled training set and the tuning half
    of the dev set (``gold``, loss weight ``gold_weight``) plus headlines from ../shared
    labelled by the rules backend (``silver``: every headline with a topic, and as many
    without). No text of the dev set's held-out half is in any training row."""
    say = progress or (lambda line: None)
    rules = rules or RulesBackend()
    items = load_topic_devset(shared)
    train_items = load_topic_devset(shared, TOPIC_TRAINSET)
    held_keys = _held_out_texts(items)
    gold = tuning_half(items) + [i for i in train_items if _text_key(i) not in held_keys]
    seen = {_text_key(i) for i in [*items, *train_items]}
    headlines: list[tuple[str, str]] = []  # (lang, text)
    for _split, _source, lang, _label, text in relevance_rows(shared):
        key = text_key(text)
        if key not in seen:
            seen.add(key)
            headlines.append((lang, text))
    say(f"labelling {len(headlines):,} headlines with the rules backend")
    arts = [
        Article(url=f"h:{n}", canonical_url=f"h:{n}", title=t, lang=lang)
        for n, (lang, t) in enumerate(headlines)
    ]
    predicted = [[t.label for t in ts] for ts in rules.classify(arts)]
    positives = [n for n, p in enumerate(predicted) if p]
    negatives = [n for n, p in enumerate(predicted) if not p]
    rng = random.Random(seed)
    negatives = rng.sample(negatives, min(len(negatives), round(len(positives) * negatives_per_positive)))
    counts: Counter[str] = Counter(lab for n in positives for lab in predicted[n])
    out_jsonl.parent.mkdir(parents=True, exist_ok=True)
    with out_jsonl.open("w", encoding="utf-8") as fh:
        for item in gold:
            row = {
                "text": text_of(devset_article(item)),
                "labels": sorted(item.labels),
                "weight": gold_weight,
                "ref": item.key,  # lets out_of_fold_scores leave a fold out
            }
            fh.write(json.dumps(row | {"lang": item.doc.lang, "source": "gold"}, ensure_ascii=False) + "\n")
        for n in sorted(positives + negatives):
            lang, text = headlines[n]
            row = {"text": text, "labels": predicted[n], "lang": lang, "source": "silver"}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return TopicDataStats(
        len(gold),
        len(positives) + len(negatives),
        dict(counts),
        sum(i.holdout for i in items),
        str(out_jsonl),
    )


def _text_key(item: TopicItem) -> str:
    return text_key(text_of(devset_article(item)))


def _held_out_texts(items: Sequence[TopicItem]) -> set[str]:
    return {_text_key(i) for i in items if i.holdout}


def tuning_half(items: Sequence[TopicItem]) -> list[TopicItem]:
    """The dev set's rows that train and tune. A headline can occur twice in a source (two
    refs, one text), so a row whose text is also held out is left out."""
    held = _held_out_texts(items)
    return [i for i in items if not i.holdout and _text_key(i) not in held]


def text_of(article: Article) -> str:
    """What the topic model reads of an article (as ``TransformersBackend`` sends it)."""
    return article_text(article, "title")


# --------------------------------------------------------------------------- the whole recipe


@dataclass
class TopicModelReport:
    data: TopicDataStats
    tuning: EnsembleTuning
    heldout: list[dict[str, Any]]  # figures_table rows

    def to_json(self) -> str:
        return json.dumps(
            {
                "data": asdict(self.data),
                "ensemble": json.loads(self.tuning.to_json()),
                "heldout": self.heldout,
            },
            ensure_ascii=False,
            indent=2,
        )


def _without_refs(data: Path, refs: set[str], out: Path) -> Path:
    """``data`` less the gold rows of ``refs``; every one of them must be found (a fold left
    in by mistake would make the out-of-fold scores in-sample ones)."""
    left_out: set[str] = set()
    with data.open(encoding="utf-8") as src, out.open("w", encoding="utf-8") as dst:
        for line in src:
            ref = json.loads(line).get("ref")
            if ref in refs:
                left_out.add(ref)
            else:
                dst.write(line)
    if left_out != refs:
        raise ValueError(f"{data}: {len(refs - left_out)} gold rows of the fold not found (no 'ref'?)")
    return out


def train_topic_model(
    shared: Path,
    data: Path,
    out: Path,
    *,
    folds: int = 2,
    say: Callable[[str], None] | None = None,
    **train_options: Any,
) -> TopicModelReport:
    """Build the data, train the topic model into ``out``, tune the rules+model ensemble on
    the tuning half with out-of-fold model scores (``folds`` extra trainings, each without one
    fold of the gold rows: scores of rows a model was trained on would flatter it), save
    ``ensemble.json`` and ``topic_eval.json`` there, and return the held-out figures."""
    from newsmon.nlp.training.classifier import train_classifier

    say = say or (lambda line: None)
    rules = RulesBackend()
    stats = build_topic_dataset(shared, data, rules=rules, progress=say)
    items = load_topic_devset(shared)
    tuning = tuning_half(items)
    labels = rules.labels
    out_of_fold = out_of_fold_scores(data, tuning, folds=folds, say=say, **train_options)
    say("training the final model on all the training rows")
    train_classifier(data, out, **train_options)
    rules_scores = score_maps(rules, [devset_article(i) for i in tuning])
    tuned = tune_ensemble(
        rules_scores,
        [out_of_fold[i.key] for i in tuning],
        [i.labels for i in tuning],
        labels,
        rules.threshold,
    )
    (out / "ensemble.json").write_text(tuned.to_json() + "\n", encoding="utf-8")
    gold = [i.labels for i in tuning]
    oof = [out_of_fold[i.key] for i in tuning]
    say(
        "out-of-fold model on the tuning half: "
        + ", ".join(
            f"{label} F1={s.f1:.3f}"
            for label, s in label_scores(
                gold, [[k for k, v in m.items() if v >= 0.5] for m in oof], labels
            ).items()
        )
    )
    say("scoring the held-out half")
    report = TopicModelReport(stats, tuned, heldout_figures(shared, out, rules=rules))
    (out / "topic_eval.json").write_text(report.to_json() + "\n", encoding="utf-8")
    return report


def out_of_fold_scores(
    data: Path,
    tuning: Sequence[TopicItem],
    *,
    folds: int = 2,
    say: Callable[[str], None] | None = None,
    **train_options: Any,
) -> dict[str, dict[str, float]]:
    """Model scores of each tuning-half item from a model trained without that item's fold."""
    from newsmon.nlp.training.classifier import train_classifier
    from newsmon.nlp.transformers_backend import TransformersBackend

    say = say or (lambda line: None)
    scores: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="newsmon-topics-") as tmp:
        for k in range(folds):
            fold = [i for n, i in enumerate(tuning) if n % folds == k]
            say(f"fold {k + 1}/{folds}: training without {len(fold)} gold rows")
            part = _without_refs(data, {i.key for i in fold}, Path(tmp) / f"fold{k}.jsonl")
            train_classifier(part, Path(tmp) / f"fold{k}", **train_options)
            found = score_maps(TransformersBackend(Path(tmp) / f"fold{k}"), [devset_article(i) for i in fold])
            scores |= {i.key: s for i, s in zip(fold, found, strict=True)}
    return scores


def heldout_figures(
    shared: Path, model_dir: Path, *, rules: RulesBackend | None = None
) -> list[dict[str, Any]]:
    """Per-backend figures on the held-out half: rules, the model in ``model_dir``, and the
    ensemble of the two with the weights tuned beside that model."""
    from newsmon.nlp.topics import get_backend

    rules = rules or RulesBackend()
    held = [i for i in load_topic_devset(shared) if i.holdout]
    backends: dict[str, TopicBackend] = {
        "rules": rules,
        "transformers": get_backend("transformers", model_dir_or_hub_id=model_dir),
        "ensemble": get_backend("ensemble", transformers={"model_dir_or_hub_id": model_dir}),
    }
    return figures_table(evaluate_backends(held, backends, rules.labels), rules.labels)
