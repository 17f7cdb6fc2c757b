"""Fit and evaluate the event-story model (nlp.stories) on the signal corpus's ``event`` ids.

Everything is fitted and chosen on the training split (``SignalItem.holdout`` false): the event
encoder (nlp/training/event_encoder.py) on the training events; the pair model on every pair of
training reports within the window, the window and the threshold by clustering each half of the
training events (split by event) with a model fitted on the other half. The pair model sees
each report's event embedding from an encoder tuned on the other half's events only, as it will
see new reports' embeddings in production; the shipped encoder is then tuned on all of them.
The evaluation split is only clustered and scored: pairwise precision and recall of the
same-story decisions, overall and over pairs in different languages, the reports arriving in date
order as they would in production.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import combinations
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from newsmon.errors import NewsmonError
from newsmon.nlp.encoder import (
    EVENT_DIMENSIONS,
    EVENT_MODEL_FILE,
    encode_events,
    event_model,
    load_event_tensors,
)
from newsmon.nlp.entities import entities_of, keywords_of
from newsmon.nlp.pipeline import Analyzer, event_inputs
from newsmon.nlp.signal import SignalModel
from newsmon.nlp.stories import (
    FEATURES,
    MODEL_FILE,
    EventStories,
    Report,
    StoryModel,
    pair_features,
    report_of,
)
from newsmon.nlp.training.signal import (
    CORPUS_DIR,
    Features,
    Progress,
    SignalItem,
    corpus_fingerprint,
    featurize,
    load_corpus,
)
from newsmon.nlp.training.signal_eval import flagged

WINDOWS = (7.0, 14.0)  # days tried
THRESHOLDS = tuple(np.round(np.arange(-1.0, 4.01, 0.25), 2))  # story logits tried
MIN_PRECISION = 0.95  # the goal: the lowest threshold that keeps it on every training fold
REGULARISATION = 1.0
FOLDS = 2


def arrival_order(reports: Iterable[Report]) -> list[Report]:
    return sorted(reports, key=lambda r: (r.day, r.doc_id))


def assign_all(stories: EventStories, reports: Sequence[Report]) -> dict[str, str]:
    """Each report's story, the reports arriving in date order (evaluation, replays)."""
    return {r.doc_id: stories.assign(r) for r in arrival_order(reports)}


def reports(items: Sequence[SignalItem], features: Features, events: np.ndarray) -> list[Report]:
    """Each item as the analyzer would see it (language, tokens, embeddings, entities), from its
    ``featurize`` output (one preparation and encoder pass serves the stories and the heads) and
    its ``events`` embedding."""
    out: list[Report] = []
    for prepared in features.batches:
        for article, doc, title in zip(prepared.articles, prepared.docs, prepared.titles, strict=True):
            assert article.published is not None
            item = items[len(out)]
            out.append(
                report_of(
                    item.id,
                    article.lang,
                    article.published,
                    np.hstack([features.embeddings[len(out)], events[len(out)]]),
                    entities_of(doc),
                    keywords_of(doc),
                    title,
                    article.text,
                )
            )
    return out


@dataclass(frozen=True)
class PairScores:
    precision: float
    recall: float
    cross_recall: float  # over same-event pairs in two languages
    pairs: int  # same-event pairs
    cross_pairs: int

    def row(self) -> dict[str, float]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in vars(self).items()}


def pair_scores(
    events: dict[str, str],
    langs: dict[str, str],
    stories: dict[str, str],
    keep: Callable[[str, str], bool] | None = None,
) -> PairScores:
    """Pairwise same-story precision and recall of ``stories`` against ``events`` (both by id);
    ``keep``: only over the pairs it accepts."""
    tp = fp = fn = cross = cross_found = 0
    for a, b in combinations(sorted(events), 2):
        if keep is not None and not keep(a, b):
            continue
        same, predicted = events[a] == events[b], stories[a] == stories[b]
        tp += same and predicted
        fp += predicted and not same
        fn += same and not predicted
        if same and langs[a] != langs[b]:
            cross += 1
            cross_found += predicted
    return PairScores(
        precision=tp / (tp + fp) if tp + fp else 1.0,
        recall=tp / (tp + fn) if tp + fn else 1.0,
        cross_recall=cross_found / cross if cross else 1.0,
        pairs=tp + fn,
        cross_pairs=cross,
    )


def fit_pairs(reports: Sequence[Report], events: dict[str, str], window: float) -> tuple[np.ndarray, float]:
    """Logistic weights over FEATURES from every (later, earlier) pair within ``window`` days."""
    from sklearn.linear_model import LogisticRegression

    ordered = arrival_order(reports)
    rows, same = [], []
    for i, later in enumerate(ordered):
        for earlier in ordered[:i]:
            if later.day - earlier.day <= window:
                rows.append(pair_features(later, earlier))
                same.append(events[later.doc_id] == events[earlier.doc_id])
    if len(set(same)) < 2:  # else scikit-learn's own error, which names no corpus fact
        kind = "different-event" if any(same) else "same-event"
        raise NewsmonError(
            f"the training reports hold no {kind} pair within {window:g} days: "
            "the story model needs both kinds (add reports)"
        )
    head = LogisticRegression(C=REGULARISATION, max_iter=3000, class_weight="balanced")
    head.fit(np.array(rows), np.array(same))
    return head.coef_[0], float(head.intercept_[0])


def _fold(event: str) -> int:
    return int(hashlib.sha1(f"fold:{event}".encode()).hexdigest()[:8], 16) % FOLDS


def inputs_of(features: Features) -> list[str]:
    """What the event encoder reads, per featurized item."""
    return [text for prepared in features.batches for text in event_inputs(prepared)]


def event_embeddings(
    items: Sequence[SignalItem], inputs: Sequence[str], progress: Progress | None = None
) -> tuple[np.ndarray, dict[str, bytes]]:
    """Each item's event embedding from an encoder tuned on the other fold's events only (what
    the pair model is fitted on), and the encoder tuned on all of them (what ships)."""
    from newsmon.nlp.training.event_encoder import tune  # torch: training only

    say = progress or (lambda _line: None)
    out = np.zeros((len(items), EVENT_DIMENSIONS), dtype=np.float32)
    for k in range(FOLDS):
        held = [i for i, item in enumerate(items) if _fold(item.event) == k]
        train = [i for i, item in enumerate(items) if _fold(item.event) != k]
        say(f"event encoder for fold {k + 1}/{FOLDS + 1}: tuned on {len(train)} reports")
        tensors = tune([inputs[i] for i in train], [items[i].event for i in train], say)
        out[held] = encode_events([inputs[i] for i in held], event_model(tensors))
    say(f"event encoder {FOLDS + 1}/{FOLDS + 1}: tuned on all {len(items)} reports")
    return out, tune(inputs, [item.event for item in items], say)


def cluster(reports: Sequence[Report], model: StoryModel) -> dict[str, str]:
    return assign_all(EventStories(model=model), reports)


def _worst(scores: Sequence[dict[str, Any]], key: str) -> float:
    return min(score[key] for score in scores)


def choose(tried: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The (window, threshold) row whose precision reaches MIN_PRECISION on every fold, with the
    best recall on its worst fold (ties: the lower threshold); else the row most precise on its
    worst fold."""
    precise = [t for t in tried if _worst(t["folds"], "precision") >= MIN_PRECISION]
    if precise:
        return max(precise, key=lambda t: (_worst(t["folds"], "recall"), -t["threshold"]))
    return max(tried, key=lambda t: _worst(t["folds"], "precision"))


def fit(
    items: Sequence[SignalItem], reports: Sequence[Report], progress: Progress | None = None
) -> StoryModel:
    """The model for the training ``items``: window and threshold from event-split folds, then
    the pair weights refitted on all of them. The choice must hold on each fold, not only pooled
    (``choose``): a pooled choice can rest on one fold's luck (README, event stories)."""
    say = progress or (lambda _line: None)
    events = {item.id: item.event for item in items}
    langs = {item.id: item.lang for item in items}
    fold_events = [{d: e for d, e in events.items() if _fold(e) == k} for k in range(FOLDS)]
    tried: list[dict[str, Any]] = []
    for window in WINDOWS:
        found: dict[float, dict[str, str]] = defaultdict(dict)
        for k in range(FOLDS):
            train = [r for r in reports if _fold(events[r.doc_id]) != k]
            weights, bias = fit_pairs(train, events, window)
            held = [r for r in reports if _fold(events[r.doc_id]) == k]
            for threshold in THRESHOLDS:
                model = StoryModel(weights, bias, float(threshold), window)
                # Fold-tagged ids: reports of different folds never share a story.
                found[float(threshold)] |= {d: f"{k}:{s}" for d, s in cluster(held, model).items()}
        for threshold, stories in found.items():
            folds = [pair_scores(fold, langs, stories).row() for fold in fold_events]
            pooled = pair_scores(events, langs, stories).row()
            tried.append({"window_days": window, "threshold": threshold, **pooled, "folds": folds})
        say(f"window {window:g} days: {len(THRESHOLDS)} thresholds scored")
    chosen = choose(tried)
    weights, bias = fit_pairs(reports, events, chosen["window_days"])
    meta = {
        "features": list(FEATURES),
        "chosen_on_training_folds": chosen,
        "tried_on_training_folds": tried,
        "corpus": {
            "fingerprint": corpus_fingerprint(),
            "training_items": len(items),
            "training_events": len(set(events.values())),
        },
    }
    return StoryModel(weights, bias, chosen["threshold"], chosen["window_days"], meta)


def alert_emails(
    items: Sequence[SignalItem], stories: dict[str, str], flagged: set[str] | None = None
) -> dict[str, Any]:
    """Immediate alert emails when ``items``' alert reports arrive by date: one per alert report
    (every report its own story, as before: the corpus holds no wire copies) against one per
    event story; in all, and on an average and the busiest day with alerts. The alert reports
    are the labelled ones, or with ``flagged`` the ids a model flagged; then the count of story
    emails whose first report is a labelled alert says how many of them an analyst needed."""
    alerts = sorted(
        (item for item in items if (item.id in flagged if flagged is not None else item.alert)),
        key=lambda item: (item.date, item.id),
    )
    per_article: dict[str, int] = defaultdict(int)
    per_story: dict[str, int] = defaultdict(int)
    mailed: set[str] = set()
    needed = 0
    for item in alerts:
        per_article[item.date] += 1
        if stories[item.id] not in mailed:
            mailed.add(stories[item.id])
            per_story[item.date] += 1
            needed += item.alert
    days = max(1, len(per_article))
    return {
        "alert_reports": len(alerts),
        "alert_days": len(per_article),
        "emails_per_article": len(alerts),
        "emails_per_story": len(mailed),
        "mean_day_per_article": round(len(alerts) / days, 2),
        "mean_day_per_story": round(len(mailed) / days, 2),
        "max_day_per_article": max(per_article.values(), default=0),
        "max_day_per_story": max(per_story.values(), default=0),
        "story_emails_from_labelled_alerts": needed,
    }


def evaluate(
    model: StoryModel,
    corpus: Path = CORPUS_DIR,
    progress: Progress | None = None,
    event_encoder: Path = EVENT_MODEL_FILE,
) -> dict[str, Any]:
    """Cluster the evaluation split in date order with ``model`` and score it."""
    items = [item for item in load_corpus(corpus) if item.holdout]
    analyzer = Analyzer(topic_backend="rules", relevance_model=None, signal=None, stories=None)
    feats = featurize(items, analyzer, progress)
    events = encode_events(inputs_of(feats), event_model(load_event_tensors(event_encoder)))
    stories = cluster(reports(items, feats, events), model)
    # What analysts would get: the shipped alert heads decide which reports alert.
    signal = SignalModel()
    flags = flagged(signal, signal.probabilities(feats.embeddings, feats.cues, feats.texts), feats.langs)
    events = {item.id: item.event for item in items}
    langs = {item.id: item.lang for item in items}
    days = {item.id: date.fromisoformat(item.date).toordinal() for item in items}
    alerts = {item.id for item in items if item.alert}
    return {
        "corpus": {
            "fingerprint": corpus_fingerprint(corpus),
            "eval_items": len(items),
            "eval_events": len(set(events.values())),
            "stories_found": len(set(stories.values())),
        },
        "model": {"threshold": model.threshold, "window_days": model.window_days},
        "pairs": pair_scores(events, langs, stories).row(),
        # Where recall is lost: pairs the window can reach, and pairs of two alert reports (the
        # ones a split costs a second email).
        "pairs_within_window": pair_scores(
            events, langs, stories, keep=lambda a, b: abs(days[a] - days[b]) <= model.window_days
        ).row(),
        "alert_pairs": pair_scores(
            events, langs, stories, keep=lambda a, b: a in alerts and b in alerts
        ).row(),
        "alert_emails": alert_emails(items, stories),
        "flagged_alert_emails": alert_emails(
            items, stories, {item.id for item, flag in zip(items, flags, strict=True) if flag}
        ),
    }


# ------------------------------------------------------------------------------ command line


def _say(line: str) -> None:
    typer.echo(line, err=True)


def stories_train_command(
    corpus: Annotated[Path, typer.Option(help="Folder of the corpus's JSONL files.")] = CORPUS_DIR,
    out: Annotated[Path, typer.Option(help="Where to write the story model.")] = MODEL_FILE,
    event_encoder: Annotated[
        Path, typer.Option(help="Where to write the tuned event encoder's tensors.")
    ] = EVENT_MODEL_FILE,
) -> None:
    """Fit the event-story model on the training split (event encoder, window, threshold, pair
    weights); about 35 minutes on 2 cores."""
    from newsmon.nlp.training.event_encoder import save_tensors  # torch: training only

    items = [item for item in load_corpus(corpus) if not item.holdout]
    analyzer = Analyzer(topic_backend="rules", relevance_model=None, signal=None, stories=None)
    feats = featurize(items, analyzer, _say)
    events, tensors = event_embeddings(items, inputs_of(feats), _say)
    model = fit(items, reports(items, feats, events), _say)
    save_tensors(tensors, event_encoder)
    model.save(out)
    chosen = model.meta["chosen_on_training_folds"]
    typer.echo(
        f"window {model.window_days:g} days, threshold {model.threshold:g}: training folds precision "
        f"{chosen['precision']:.3f}, recall {chosen['recall']:.3f}, cross-language recall "
        f"{chosen['cross_recall']:.3f} (worst fold: precision {_worst(chosen['folds'], 'precision'):.3f}, "
        f"recall {_worst(chosen['folds'], 'recall'):.3f}); wrote {out}"
    )


def stories_eval_command(
    corpus: Annotated[Path, typer.Option(help="Folder of the corpus's JSONL files.")] = CORPUS_DIR,
    model: Annotated[Path, typer.Option(help="The story model.")] = MODEL_FILE,
    event_encoder: Annotated[
        Path, typer.Option(help="The tuned event encoder's tensors.")
    ] = EVENT_MODEL_FILE,
) -> None:
    """Cluster the evaluation split by date and print same-story pair precision and recall."""
    report = evaluate(StoryModel.load(model), corpus, _say, event_encoder)
    c, p, e = report["corpus"], report["pairs"], report["alert_emails"]
    w, a, f = report["pairs_within_window"], report["alert_pairs"], report["flagged_alert_emails"]
    typer.echo(
        f"evaluation split: {c['eval_items']} items, {c['eval_events']} events"
        f" -> {c['stories_found']} stories "
        f"(window {report['model']['window_days']:g} days, threshold {report['model']['threshold']:g})\n"
        f"| pairs | precision | recall | same-event pairs |\n|---|---|---|---|\n"
        f"| all | {p['precision']:.3f} | {p['recall']:.3f} | {p['pairs']} |\n"
        f"| cross-language | | {p['cross_recall']:.3f} | {p['cross_pairs']} |\n"
        f"| within the window (dates at most {report['model']['window_days']:g} days apart) "
        f"| {w['precision']:.3f} | {w['recall']:.3f} | {w['pairs']} |\n"
        f"| both alert reports | {a['precision']:.3f} | {a['recall']:.3f} | {a['pairs']} |\n"
        f"| both alert reports, cross-language | | {a['cross_recall']:.3f} | {a['cross_pairs']} |\n"
        f"alert emails for the {e['alert_reports']} alert reports on {e['alert_days']} days, "
        "replayed by date: "
        f"one per article {e['emails_per_article']} (a day: mean {e['mean_day_per_article']}, "
        f"max {e['max_day_per_article']}), one per event story {e['emails_per_story']} "
        f"(mean {e['mean_day_per_story']}, max {e['max_day_per_story']})\n"
        f"the same replay with the shipped alert heads deciding: {f['alert_reports']} reports flagged, "
        f"{f['emails_per_story']} story emails (one per article {f['emails_per_article']}), "
        f"{f['story_emails_from_labelled_alerts']} of them first reports that are labelled alerts"
    )
