"""Topic backends measured on the labelled topic set, and the tuned rules+model ensemble."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from newsmon.errors import ConfigError
from newsmon.models import Article, Topic
from newsmon.nlp.topics import EnsembleBackend, get_backend, register_backend
from newsmon.nlp.training.topic_eval import THRESHOLD_GRID, label_scores, tune_ensemble

LABELS = ["export_controls", "trade_policy"]


def _article(title: str) -> Article:
    return Article(url=f"u:{title}", canonical_url=f"u:{title}", title=title)


class _Scores:
    """A member with fixed per-label scores for every article."""

    name = "fixed-scores"

    def __init__(self, scores: dict[str, float]) -> None:
        self.fixed = scores

    def scores(self, articles: list[Article]) -> list[dict[str, Topic]]:
        return [
            {lab: Topic(label=lab, score=s, evidence=[f"{self.name}:{lab}"]) for lab, s in self.fixed.items()}
            for _ in articles
        ]

    def classify(self, articles: list[Article]) -> list[list[Topic]]:
        return [[t for t in row.values() if t.score >= 0.5] for row in self.scores(articles)]


def test_label_scores_per_label_and_micro() -> None:
    gold = [frozenset({"export_controls"}), frozenset(), frozenset({"trade_policy", "export_controls"})]
    pred = [["export_controls"], ["trade_policy"], ["export_controls"]]
    s = label_scores(gold, pred, LABELS)
    assert (s["export_controls"].tp, s["export_controls"].fp, s["export_controls"].fn) == (2, 0, 0)
    assert (s["trade_policy"].tp, s["trade_policy"].fp, s["trade_policy"].fn) == (0, 1, 1)
    assert (s["micro"].tp, s["micro"].fp, s["micro"].fn) == (2, 1, 1)
    assert s["export_controls"].f1 == 1.0 and s["trade_policy"].f1 == 0.0


def test_tuning_is_never_worse_than_either_member_on_its_rows() -> None:
    # rules catch items 0-2 (and a false alarm on 5); the model catches 1-3 weakly.
    gold = [frozenset({"export_controls"}) if i < 4 else frozenset() for i in range(8)]
    rules = [{"export_controls": s} for s in (0.9, 0.8, 0.7, 0.1, 0.0, 0.6, 0.0, 0.0)]
    model = [{"export_controls": s} for s in (0.2, 0.6, 0.6, 0.45, 0.1, 0.1, 0.2, 0.0)]
    tuned = tune_ensemble(rules, model, gold, ["export_controls"], lambda label: 0.5)
    choice = tuned.labels["export_controls"]
    assert choice["threshold"] in [*THRESHOLD_GRID, 0.5] and sum(choice["weights"]) == pytest.approx(1)
    alone = {
        "rules": label_scores(
            gold, [["export_controls"] if r["export_controls"] >= 0.5 else [] for r in rules], LABELS
        ),
        "model": label_scores(
            gold, [["export_controls"] if m["export_controls"] >= 0.5 else [] for m in model], LABELS
        ),
    }
    assert choice["f1"] >= max(a["export_controls"].f1 for a in alone.values())
    assert choice["f1"] == 1.0  # 0.9/0.2 .. 0.1/0.45 vs 0.6/0.1: a mix separates them


def test_ensemble_applies_per_label_weights_and_thresholds() -> None:
    rules = _Scores({"export_controls": 0.9, "trade_policy": 0.3})
    model = _Scores({"export_controls": 0.2, "trade_policy": 0.6})
    ensemble = EnsembleBackend(
        [(rules, 1.0), (model, 1.0)],
        label_weights={"export_controls": [1.0, 0.0], "trade_policy": [0.5, 0.5]},
        label_thresholds={"trade_policy": 0.44},
    )
    [topics] = ensemble.classify([_article("x")])
    by_label = {t.label: t for t in topics}
    assert by_label["export_controls"].score == 0.9
    # a member with weight 0 lends no evidence
    assert by_label["export_controls"].evidence == ["fixed-scores:export_controls"]
    assert by_label["trade_policy"].score == pytest.approx(0.45)
    with pytest.raises(ConfigError, match="weights"):
        EnsembleBackend([(rules, 1.0)], label_weights={"trade_policy": [0.5, 0.5]})


def test_tuned_weights_file_is_read_and_checked(tmp_path: Path) -> None:
    register_backend("scores_a", lambda: _Scores({"export_controls": 0.9}))
    register_backend("scores_b", lambda: _Scores({"export_controls": 0.1}))
    tuned = tmp_path / "ensemble.json"
    tuned.write_text(
        json.dumps(
            {
                "members": ["scores_a", "scores_b"],
                "labels": {"export_controls": {"weights": [0.0, 1.0], "threshold": 0.05}},
            }
        )
    )
    ensemble = get_backend("ensemble", members="scores_a,scores_b", tuned=str(tuned))
    [[topic]] = ensemble.classify([_article("x")])
    assert topic.score == pytest.approx(0.1)
    with pytest.raises(ConfigError, match="tuned for members"):
        get_backend("ensemble", members="scores_b,scores_a", tuned=str(tuned))
    with pytest.raises(ConfigError, match="cannot read"):
        get_backend("ensemble", members="scores_a,scores_b", tuned=str(tmp_path / "missing.json"))


# --------------------------------------------------------------------------- on real data


@pytest.mark.shared_data
def test_the_labelled_topic_set_resolves_and_covers_every_topic(shared_data: Path) -> None:
    from newsmon.nlp.topics import RulesBackend
    from newsmon.nlp.training.devset import load_topic_devset

    items = load_topic_devset(shared_data)
    assert len(items) >= 600 and len({i.key for i in items}) == len(items)
    labels = set(RulesBackend().labels)
    assert set().union(*(i.labels for i in items)) == labels
    held = [i for i in items if i.holdout]
    for label in labels:
        assert sum(label in i.labels for i in held) >= 10, label


@pytest.mark.shared_data
def test_heldout_figures_match_the_model_card_and_the_ensemble_wins_on_export_controls(
    shared_data: Path,
) -> None:
    pytest.importorskip("torch")
    from newsmon.nlp.training.topic_eval import heldout_figures
    from newsmon.nlp.transformers_backend import TOPIC_MODEL_DIR

    rows = heldout_figures(shared_data, TOPIC_MODEL_DIR)
    for row in rows:
        print(row)
    f1 = {(r["backend"], r["label"]): r["f1"] for r in rows}
    assert f1[("ensemble", "export_controls")] >= max(
        f1[("rules", "export_controls")], f1[("transformers", "export_controls")]
    )
    # The figures in the README and the model card are the ones this computes.
    recorded = json.loads((TOPIC_MODEL_DIR / "topic_eval.json").read_text(encoding="utf-8"))["heldout"]
    assert rows == recorded


@pytest.mark.shared_data
def test_the_training_set_is_disjoint_from_the_dev_set(shared_data: Path) -> None:
    from newsmon.nlp.training.devset import TOPIC_TRAINSET, load_topic_devset

    dev = load_topic_devset(shared_data)
    train = load_topic_devset(shared_data, TOPIC_TRAINSET)
    assert len(train) >= 900
    assert not {i.key for i in dev} & {i.key for i in train}


@pytest.mark.shared_data
def test_the_whole_recipe_with_a_tiny_model(shared_data: Path, tmp_path: Path) -> None:
    """Data, out-of-fold training, ensemble tuning and held-out scoring, end to end; no
    held-out text reaches training."""
    pytest.importorskip("torch")
    from newsmon.nlp.training.data import text_key
    from newsmon.nlp.training.devset import load_topic_devset
    from newsmon.nlp.training.topic_eval import devset_article, text_of, train_topic_model

    data, out = tmp_path / "topics.jsonl", tmp_path / "model"
    lines: list[str] = []
    report = train_topic_model(
        shared_data,
        data,
        out,
        say=lines.append,
        epochs=1,
        hidden_size=32,
        num_layers=1,
        num_heads=2,
        vocab_size=2000,
        threads=1,
    )
    rows = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines()]
    held = {text_key(text_of(devset_article(i))) for i in load_topic_devset(shared_data) if i.holdout}
    assert not held & {text_key(r["text"]) for r in rows}
    gold = [r for r in rows if r["source"] == "gold"]
    assert len(gold) == report.data.gold_rows and all(r["ref"] for r in gold)
    tuned = json.loads((out / "ensemble.json").read_text(encoding="utf-8"))
    assert tuned["members"] == ["rules", "transformers"] and len(tuned["labels"]) == 6
    for choice in tuned["labels"].values():
        assert choice["f1"] >= max(choice["members_f1"].values())
    assert {r["backend"] for r in report.heldout} == {"rules", "transformers", "ensemble"}
    assert any(line.startswith("fold 2/2") for line in lines)
