"""Event stories: reports of one action join in any language, other actions stay apart, the index
stays bounded, ids survive restarts; and the evaluation on the signal corpus runs end to end."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from helpers.event_reports import ENTITY_LISTING, LATER_ACTION

from newsmon.errors import NewsmonError
from newsmon.models import Article
from newsmon.nlp.cluster import StoryClusters
from newsmon.nlp.pipeline import Analyzer
from newsmon.nlp.statefile import save_state
from newsmon.nlp.stories import (
    FEATURES,
    PARTS,
    STORY_DIMENSIONS,
    EventStories,
    Report,
    StoryModel,
    pair_features,
)

# A hand-set model: the headline and lead cosines to a story's centroid must reach 1.2 (of 2),
# within 7 days.
TOY = StoryModel(
    weights=np.array([1.0 if name in ("title", "lead") else 0.0 for name in FEATURES]),
    bias=0.0,
    threshold=1.2,
    window_days=7.0,
)


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(STORY_DIMENSIONS).astype(np.float32)
    for start, end in PARTS:
        v[start:end] /= np.linalg.norm(v[start:end])
    return v


def report(
    doc: str, day: float, vector: np.ndarray, lang: str = "ko", entities: tuple[str, ...] = ()
) -> Report:
    return Report(doc, lang, day, vector, frozenset(entities), frozenset(), frozenset())


def test_similar_reports_join_within_the_window_and_others_start_their_own() -> None:
    stories = EventStories(model=TOY)
    event, other = unit(1), unit(2)
    assert stories.assign(report("a", 0.0, event)) == "a"
    assert stories.assign(report("b", 1.0, event, lang="zh")) == "a"
    assert stories.assign(report("c", 1.5, other)) == "c"
    assert stories.assign(report("d", 30.0, event)) == "d"  # the same words a month later: a new action
    assert stories.assign(report("b", 99.0, other)) == "a"  # a known article keeps its story


def test_a_wire_copy_joins_its_originals_story_whatever_its_score() -> None:
    stories = EventStories(model=TOY)
    stories.assign(report("a", 0.0, unit(1)))
    assert stories.assign(report("b", 0.5, unit(3)), copy_of="a") == "a"
    assert stories.assign(report("c", 0.5, unit(4)), copy_of="unknown") == "c"


def test_the_active_index_is_bounded_by_the_window_and_its_cap() -> None:
    stories = EventStories(model=TOY, max_active=50)
    for day in range(100):
        stories.assign(report(f"d{day}", float(day), unit(day), entities=(f"org:{day}", "agency:us_bis")))
    # Window 7 days: stories older than two windows behind the newest report are dropped, with
    # their rows and entity postings.
    assert len(stories) == 15
    assert len(stories._postings) == 16 and len(stories._postings["e:agency:us_bis"]) == 15
    assert stories.story_of("d0") == "d0"  # the article -> story map outlives the active index
    capped = EventStories(model=TOY, max_active=5)
    for n in range(50):
        capped.assign(report(f"s{n}", 0.0, unit(100 + n)))
    assert len(capped) == 5
    # Rows of dropped stories are reused: the matrix does not grow with the stream.
    assert len(capped._matrix) <= 64


def test_story_ids_survive_a_restart(tmp_path: Path) -> None:
    event = unit(1)
    with EventStories(tmp_path, model=TOY) as stories:
        stories.assign(report("a", 0.0, event, entities=("org:nvidia",)))
        stories.assign(report("b", 0.2, unit(2), lang="en"))
    reloaded = EventStories(tmp_path, model=TOY)
    assert len(reloaded) == 2
    assert reloaded.assign(report("c", 0.5, event, lang="zh")) == "a"
    assert reloaded.assign(report("b", 0.0, event)) == "b"
    reloaded.save()
    again = EventStories(tmp_path, model=TOY)
    assert again.scores(report("x", 0.6, event))["a"] == pytest.approx(
        reloaded.scores(report("x", 0.6, event))["a"], abs=1e-5
    )


def test_a_state_file_from_before_the_event_embedding_keeps_its_stories(tmp_path: Path) -> None:
    """Version 1 held headline and lead only: its stories load with a zero event part, keep their
    ids, and a report still joins them on the other features."""
    with EventStories(tmp_path, model=TOY) as stories:
        stories.assign(report("a", 0.0, unit(1)))
    state = dict(np.load(tmp_path / "stories.npz"))
    save_state(tmp_path / "stories.npz", 1, meta=state["meta"], matrix=state["matrix"][:, : PARTS[2][0]])
    old = EventStories(tmp_path, model=TOY)
    assert old.story_of("a") == "a"
    assert old._matrix[old._stories["a"].rows["ko"], PARTS[2][0] :].max() == 0.0
    assert old.assign(report("b", 1.0, unit(1))) == "a"


def test_a_broken_state_file_is_refused_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "stories.npz").write_bytes(b"not a zip")
    with pytest.raises(NewsmonError, match=r"stories\.npz is unreadable"):
        EventStories(tmp_path, model=TOY)


def test_a_story_is_scored_by_the_cosine_to_its_centroid_and_the_log_days_from_its_mean() -> None:
    """Varied coverage does not dilute a story: its embedding features are cosines to the
    normalised member sum (not the mean of the members' cosines), kept exactly from running
    sums as members join, and its day gap is from the members' mean day, on a log scale."""
    weights = np.array([1.0 if name in ("title", "days") else 0.0 for name in FEATURES])
    stories = EventStories(model=StoryModel(weights, bias=0.0, threshold=99.0, window_days=7.0))
    members = [report("a", 0.0, unit(1)), report("b", 2.0, unit(2)), report("c", 4.0, unit(3), lang="zh")]
    for member in members:
        stories.assign(member, copy_of="a")  # a wire copy joins whatever the score
    x = report("x", 5.0, unit(4))
    start, end = PARTS[0]
    centroid = sum(m.embedding[start:end] for m in members)
    expected = float(x.embedding[start:end] @ centroid / np.linalg.norm(centroid)) + np.log1p(5.0 - 2.0)
    assert stories.scores(x)["a"] == pytest.approx(expected, abs=1e-5)


def test_pair_features_are_the_story_features_of_a_one_report_story() -> None:
    shipped = StoryModel.load()
    a = Report(
        "a", "ko", 0.0, unit(1), frozenset({"org:nvidia", "agency:us_bis"}), frozenset({"140"}), frozenset()
    )
    b = Report("b", "zh", 2.0, unit(5), frozenset({"org:nvidia"}), frozenset({"140", "24"}), frozenset())
    stories = EventStories(model=shipped)
    stories.assign(a)
    expected = float(pair_features(b, a) @ shipped.weights + shipped.bias)
    assert stories.scores(b)["a"] == pytest.approx(expected, abs=1e-4)


def articles(rows: list[tuple[str, str, str, str, str]]) -> list[Article]:
    return [
        Article(
            url=f"https://{outlet}.example/{n}",
            canonical_url=f"https://{outlet}.example/{n}",
            source=outlet,
            title=title,
            text=text,
            lang=lang,
            published=datetime.fromisoformat(when),
        )
        for n, (outlet, lang, when, title, text) in enumerate(rows)
    ]


def test_five_reports_in_three_languages_are_one_story_and_a_later_action_another(tmp_path: Path) -> None:
    analyzer = Analyzer(
        topic_backend="rules", relevance_model=None, clusters=StoryClusters(), stories=EventStories(tmp_path)
    )
    reports = list(analyzer.analyze(articles([*ENTITY_LISTING, LATER_ACTION])))
    listing, later = reports[:-1], reports[-1]
    assert {a.lang for a in listing} == {"ko", "zh", "en"}
    assert len({a.cluster_id for a in listing}) == 5  # not copies of each other
    assert len({a.story_id for a in listing}) == 1
    assert later.story_id not in {a.story_id for a in listing}
    # Saved at the end of the run: a re-analysis elsewhere gets the same stories.
    again = Analyzer(topic_backend="rules", relevance_model=None, stories=EventStories(tmp_path))
    assert [a.story_id for a in again.analyze_batch(articles([*ENTITY_LISTING, LATER_ACTION]))] == [
        a.story_id for a in reports
    ]


def test_pair_scores_count_same_story_decisions() -> None:
    from newsmon.nlp.training.stories import pair_scores

    events = {"a": "e1", "b": "e1", "c": "e1", "d": "e2"}
    langs = {"a": "ko", "b": "zh", "c": "ko", "d": "ko"}
    found = pair_scores(events, langs, {"a": "s1", "b": "s1", "c": "s2", "d": "s2"})
    # same-event pairs ab ac bc (ab and bc cross-language); predicted pairs ab, cd.
    assert (found.precision, found.recall, found.cross_recall) == (0.5, 1 / 3, 0.5)
    assert (found.pairs, found.cross_pairs) == (3, 2)
    # Only the pairs ``keep`` accepts: here those without c (ab same-event and found, none wrong).
    kept = pair_scores(
        events, langs, {"a": "s1", "b": "s1", "c": "s2", "d": "s2"}, keep=lambda x, y: "c" not in (x, y)
    )
    assert (kept.precision, kept.recall, kept.pairs) == (1.0, 1.0, 1)


def test_the_evaluation_clusters_the_held_out_events_of_a_corpus(tmp_path: Path) -> None:
    """Two of the corpus's files: the shipped model keeps its precision there, finds cross-language
    pairs, and an alert story mails once where its reports would each have mailed."""
    from newsmon.nlp.training.signal import CORPUS_DIR
    from newsmon.nlp.training.stories import evaluate

    for name in ("us_listings.jsonl", "china_controls.jsonl"):
        (tmp_path / name).write_bytes((CORPUS_DIR / name).read_bytes())
    report = evaluate(StoryModel.load(), tmp_path)
    pairs, emails = report["pairs"], report["alert_emails"]
    near, alerts = report["pairs_within_window"], report["alert_pairs"]
    assert report["corpus"]["stories_found"] < report["corpus"]["eval_items"]
    # The subsets hold fewer same-event pairs; the window's are the ones the model can reach.
    assert alerts["pairs"] < pairs["pairs"] and near["pairs"] < pairs["pairs"]
    assert near["recall"] >= pairs["recall"]
    assert pairs["precision"] >= 0.9 and pairs["cross_recall"] > 0.2
    assert emails["emails_per_story"] < emails["emails_per_article"] == emails["alert_reports"]
    assert emails["story_emails_from_labelled_alerts"] == emails["emails_per_story"]
    # With the shipped heads deciding, most story emails still start from a labelled alert.
    flagged = report["flagged_alert_emails"]
    assert flagged["emails_per_story"] < flagged["emails_per_article"]
    assert (
        flagged["emails_per_story"] / 2
        < flagged["story_emails_from_labelled_alerts"]
        <= flagged["emails_per_story"]
    )


def test_training_tunes_the_event_encoder_and_fits_a_model_the_evaluation_runs(tmp_path: Path) -> None:
    """stories-train on a small corpus (three files): the event encoder is tuned three times (each
    fold's, then all), the pair model is fitted on the folds' embeddings, and the evaluation
    runs with what it wrote."""
    from typer.testing import CliRunner

    from newsmon.cli import app
    from newsmon.nlp.training.signal import CORPUS_DIR

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("en_round6.jsonl", "ko_round6.jsonl", "zh_round6.jsonl"):
        (corpus / name).write_bytes((CORPUS_DIR / name).read_bytes())
    out, encoder = tmp_path / "stories.json", tmp_path / "event_encoder.npz"
    common = ["--corpus", str(corpus), "--event-encoder", str(encoder)]
    trained = CliRunner().invoke(app, ["signal", "stories-train", *common, "--out", str(out)])
    assert trained.exit_code == 0, trained.output
    assert "training folds precision" in trained.output
    model = StoryModel.load(out)
    assert set(model.meta["features"]) >= {"event", "event_cross"}
    assert model.weights[FEATURES.index("event")] != 0.0
    scored = CliRunner().invoke(app, ["signal", "stories", *common, "--model", str(out)])
    assert scored.exit_code == 0, scored.output
    assert "| all |" in scored.output


def test_a_corpus_without_both_kinds_of_pair_is_refused_with_one_line() -> None:
    """The pair model needs same-event and different-event pairs within the window; a corpus
    that lacks one kind gets a one-line error naming it, not scikit-learn's."""
    from newsmon.nlp.training.stories import fit_pairs

    one_event = [report("a", 0.0, unit(1)), report("b", 1.0, unit(2)), report("c", 2.0, unit(3))]
    with pytest.raises(NewsmonError, match="no different-event pair within 7 days"):
        fit_pairs(one_event, {"a": "e1", "b": "e1", "c": "e1"}, 7.0)
    with pytest.raises(NewsmonError, match="no same-event pair within 7 days"):
        fit_pairs(one_event, {"a": "e1", "b": "e2", "c": "e3"}, 7.0)


def test_window_and_threshold_must_hold_on_every_training_fold() -> None:
    """A candidate whose pooled precision passes on one lucky fold loses to one that holds the
    precision goal on both folds, even at a lower pooled recall."""
    from newsmon.nlp.training.stories import MIN_PRECISION, choose

    def row(window: float, threshold: float, folds: list[tuple[float, float]]) -> dict[str, object]:
        return {
            "window_days": window,
            "threshold": threshold,
            "folds": [{"precision": p, "recall": r} for p, r in folds],
        }

    lucky = row(14.0, 3.75, [(0.99, 0.75), (MIN_PRECISION - 0.02, 0.55)])
    steady = row(7.0, 2.5, [(0.96, 0.62), (0.955, 0.60)])
    weaker = row(7.0, 3.0, [(0.97, 0.58), (0.96, 0.57)])
    assert choose([lucky, steady, weaker]) is steady
    # Nothing reaches the goal on every fold: the most precise on its worst fold.
    assert choose([lucky, row(7.0, 4.0, [(0.94, 0.3), (0.94, 0.3)])])["threshold"] == 4.0
