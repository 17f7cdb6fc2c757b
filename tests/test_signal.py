"""The signal corpus, its event-disjoint split, the shipped heads and their recorded evaluation."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from newsmon.models import Article
from newsmon.nlp.lang import to_simplified
from newsmon.nlp.pipeline import Analyzer
from newsmon.nlp.signal import MODEL_DIR, SignalModel
from newsmon.nlp.training.signal import (
    CORPUS_DIR,
    LANGS,
    corpus_fingerprint,
    load_corpus,
    recall_threshold,
    train,
)
from newsmon.nlp.training.signal_eval import evaluate

RECORDED = MODEL_DIR / "eval.json"


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer(topic_backend="rules", relevance_model=None, signal=None)


def test_corpus_is_large_varied_and_split_by_event() -> None:
    items = load_corpus()
    assert len(items) >= 1200 and sum(i.alert for i in items) >= 400
    langs = Counter(i.lang for i in items)
    assert all(langs[lang] >= 0.25 * len(items) for lang in LANGS), langs
    scripts = Counter(i.script for i in items if i.lang == "zh")
    assert scripts["hans"] > scripts["hant"] > 0.25 * langs["zh"], scripts
    assert len({i.url for i in items}) == len(items)  # one real article, one item
    assert all(i.url.startswith(("http://", "https://")) for i in items)
    # An alert reports an action: its event id is evt:, never one of the neg: stories (GUIDE.md).
    assert not [i.id for i in items if i.alert and not i.event.startswith("evt:")]
    held = {i.event for i in items if i.holdout}
    trained = {i.event for i in items if not i.holdout}
    assert held and trained and not held & trained
    # Both splits hold alerts and non-alerts in every language.
    for split in (True, False):
        for lang in LANGS:
            labels = {i.alert for i in items if i.holdout is split and i.lang == lang}
            assert labels == {True, False}, (split, lang)


def test_traditional_chinese_meets_the_same_cues_as_simplified(analyzer: Analyzer) -> None:
    traditional = "美國商務部將華為列入實體清單，禁止向其出口晶片"
    assert to_simplified(traditional) == "美国商务部将华为列入实体清单，禁止向其出口芯片"
    articles = [
        Article(
            url=f"https://x.example/{n}", canonical_url=f"https://x.example/{n}", title=t, text=t, lang="zh"
        )
        for n, t in enumerate([traditional, to_simplified(traditional)])
    ]
    hant, hans = analyzer.prepare(articles).docs
    assert hant.title == hans.title and "实体清单" in " ".join(hant.title)
    assert analyzer.alerts.decide(hant).evidence == analyzer.alerts.decide(hans).evidence


def test_a_second_annotators_labels_are_compared_per_language(tmp_path: Path) -> None:
    """The shipped second-annotator sample names training items only; agreement and kappa are
    computed from it, and a label file naming no corpus item is an error naming its line."""
    from newsmon.errors import NewsmonError
    from newsmon.nlp.training.signal import load_corpus
    from newsmon.nlp.training.signal_eval import SECOND_ANNOTATOR, annotator_agreement

    held = {item.id for item in load_corpus() if item.holdout}
    sample = [line.split("\t")[0] for line in SECOND_ANNOTATOR.read_text(encoding="utf-8").splitlines()[1:]]
    assert len(sample) == 240 and not held & set(sample)
    rows = annotator_agreement()
    assert [rows[lang]["items"] for lang in ("ko", "zh", "en", "all")] == [60, 120, 60, 240]
    for r in rows.values():
        disagreed = r["corpus_1_second_0"] + r["corpus_0_second_1"]
        assert r["agreement"] == round(1 - disagreed / r["items"], 3) and -1 <= r["kappa"] <= r["agreement"]
    bad = tmp_path / "labels.tsv"
    bad.write_text("id\talert\twhy\nno-such-item\t1\tx\n", encoding="utf-8")
    with pytest.raises(NewsmonError, match=r"labels\.tsv:2"):
        annotator_agreement(second=bad)


def test_recall_threshold_keeps_the_target_share_of_positives() -> None:
    import numpy as np

    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
    labels = np.array([0, 1, 0, 1, 1, 1, 1, 1, 1, 1])
    threshold = recall_threshold(scores, labels, 0.85)  # 7 of the 8 positives must stay
    kept = (scores >= threshold) & (labels == 1)
    assert kept.sum() == 7 and threshold == pytest.approx(0.4)


def test_false_alarms_are_counted_by_kind_and_restated_at_the_pooled_mix() -> None:
    import numpy as np

    from newsmon.nlp.training.signal import SignalItem
    from newsmon.nlp.training.signal_eval import false_alarms_by_kind

    def item(n: int, event: str, lang: str, alert: bool) -> SignalItem:
        return SignalItem(f"i{n}", event, lang, f"https://x.example/{n}", "t", "", alert, ())

    # ko: 2 alerts, 2 same-event negatives (1 flagged), 2 other (0 flagged);
    # zh: 2 alerts, 4 same-event negatives (2 flagged), 0 other.
    items = [
        item(0, "evt:a", "ko", True),
        item(1, "evt:a", "ko", True),
        item(2, "evt:a", "ko", False),
        item(3, "evt:a", "ko", False),
        item(4, "neg:b", "ko", False),
        item(5, "neg:c", "ko", False),
        item(6, "evt:d", "zh", True),
        item(7, "evt:d", "zh", True),
        *(item(8 + k, "evt:d", "zh", False) for k in range(4)),
    ]
    flags = np.array([1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0], dtype=bool)
    rows = false_alarms_by_kind(items, flags)
    assert (rows["ko"]["same_event_flagged"], rows["ko"]["same_event_negatives"]) == (1, 2)
    assert (rows["zh"]["same_event_flagged"], rows["zh"]["other_negatives"]) == (2, 0)
    # Pooled: 6 same-event and 2 other negatives for 4 alerts. Both languages flag half their
    # same-event negatives and no other ones, so at the pooled mix their precision is the same,
    # 1 / (1 + 1.5 * 0.5), although the raw precision differs (ko 2/3, zh 1/2).
    assert rows["ko"]["precision_at_pooled_mix"] == rows["zh"]["precision_at_pooled_mix"]
    assert rows["zh"]["precision_at_pooled_mix"] == pytest.approx(1 / 1.75, abs=1e-4)
    assert rows["all"]["alerts_flagged"] == 4


def test_shipped_heads_were_trained_on_this_corpus() -> None:
    meta = SignalModel().meta
    assert meta["corpus"]["fingerprint"] == corpus_fingerprint(), "corpus changed: run `newsmon signal train`"
    held = {i.url for i in load_corpus() if i.holdout}
    assert not held & {n["url"] for n in meta["neighbours"]}  # no evaluation item is shipped as evidence


def test_the_alert_also_reads_the_articles_words() -> None:
    """The shipped alert has a lexical member: with the embedding and cues held fixed, the
    words alone move the alert's probability (a reaction's framing lowers it); the topics'
    probabilities do not read them."""
    import numpy as np

    from newsmon.nlp.signal import lexical_text

    model = SignalModel()
    assert model.lexical is not None and model.meta["heads"]["alert_lexical_member"]["weight"] > 0
    embeddings = np.zeros((2, model.mean.shape[0] - len(model.cue_names)), dtype=np.float32)
    cues = np.zeros((2, len(model.cue_names)), dtype=np.float32)
    action = lexical_text(
        "美国商务部将12家中国企业列入实体清单", "美国商务部周二宣布，将12家中国企业列入实体清单。"
    )
    reaction = lexical_text(
        "商务部回应：坚决反对美方滥用出口管制", "商务部新闻发言人表示坚决反对，敦促美方纠正。"
    )
    probs = model.probabilities(embeddings, cues, [action, reaction])
    assert probs[0, 0] > probs[1, 0]
    assert probs[0, 1:] == pytest.approx(probs[1, 1:])


def test_recorded_evaluation_is_what_the_shipped_heads_score(analyzer: Analyzer) -> None:
    """The README's tables come from nlp/models/signal/eval.json; this recomputes them."""
    recorded = json.loads(RECORDED.read_text(encoding="utf-8"))["full"]
    fresh = evaluate(analyzer=analyzer, with_transformers=False)
    assert fresh["corpus"] == recorded["corpus"]
    for backend in ("signal", "rules", "keywords"):
        for scope in (*LANGS, "all"):
            got, want = fresh["results"][backend][scope], recorded["results"][backend][scope]
            for key in ("precision", "recall", "f1"):
                assert got["alert"][key] == pytest.approx(want["alert"][key], abs=0.01), (backend, scope, key)
            assert got["topic_macro_f1"] == pytest.approx(want["topic_macro_f1"], abs=0.01)
            assert got["export_controls_f1"] == pytest.approx(want["export_controls_f1"], abs=0.01)
    for scope, want in recorded["signal_false_alarms"].items():
        got = fresh["signal_false_alarms"][scope]
        assert got["precision_at_pooled_mix"] == pytest.approx(want["precision_at_pooled_mix"], abs=0.01)
        assert got["same_event_negatives"] == want["same_event_negatives"], scope


def test_analysis_explains_the_alert_with_cues_and_nearest_examples() -> None:
    analyzer = Analyzer(topic_backend="signal", relevance_model=None)
    article = Article(
        url="https://wire.example/bis",
        canonical_url="https://wire.example/bis",
        title="US adds 30 Chinese chip firms to the Entity List",
        text="The Commerce Department's Bureau of Industry and Security added 30 Chinese companies to "
        "the Entity List on Tuesday, requiring licences for all exports to them.",
    )
    [done] = analyzer.analyze_batch([article])
    assert done.alert.export_controls and 0 < done.alert.score <= 1
    assert any(e.startswith("nearest alert") for e in done.alert.evidence)
    assert any(not e.startswith("nearest") for e in done.alert.evidence)  # the matched cues
    assert "export_controls" in {t.label for t in done.topics}


def test_training_uses_the_training_split_only(tmp_path: Path, analyzer: Analyzer) -> None:
    """A small end-to-end run of the recipe on a sample of the corpus."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for path in sorted(CORPUS_DIR.glob("*.jsonl")):
        lines = path.read_text(encoding="utf-8").splitlines()
        (corpus / path.name).write_text("\n".join(lines[::6]) + "\n", encoding="utf-8")
    result = train(corpus, tmp_path / "heads", analyzer=analyzer, out_of_fold=tmp_path / "oof.jsonl")
    held = {i.url for i in load_corpus(corpus) if i.holdout}
    assert held and not held & {n["url"] for n in result.meta["neighbours"]}
    # The out-of-fold file: every training item twice (full, headline-only), no held-out one.
    rows = [json.loads(line) for line in (tmp_path / "oof.jsonl").read_text(encoding="utf-8").splitlines()]
    training = {i.id: i for i in load_corpus(corpus) if not i.holdout}
    corpus_rows = [r for r in rows if r["id"] in training]
    assert Counter(r["id"] for r in corpus_rows) == dict.fromkeys(training, 2)
    assert not {r["id"] for r in rows} & {i.id for i in load_corpus(corpus) if i.holdout}
    for r in corpus_rows:
        item = training[r["id"]]
        assert r["alert"] == item.alert and 0 <= r["alert_probability"] <= 1
        kind = "headline_alert_thresholds" if r["headline_only"] else "alert_thresholds"
        assert r["alert_threshold"] == result.meta[kind].get(r["lang"], result.meta[kind]["default"])
    assert set(result.meta["alert_thresholds"]) == {*LANGS, "default"}
    assert set(result.meta["headline_alert_thresholds"]) == {*LANGS, "default"}
    model = SignalModel(tmp_path / "heads")
    assert len(model.labels) == 7 and model.heads.duals.shape == (7, len(model.heads.support))
    # The runtime's kernel recomputes the SVM's margin (support vectors stored as float16).
    from newsmon.nlp.training.signal import featurize

    feats = featurize(load_corpus(corpus)[:20], analyzer)
    probs = model.probabilities(feats.embeddings, feats.cues, feats.texts)
    assert probs.shape == (20, 7) and ((probs >= 0) & (probs <= 1)).all()
    shutil.rmtree(tmp_path / "heads")


def test_relevance_comes_from_the_heads_without_torch() -> None:
    """The default analyzer scores relevance with the signal heads' relevance head; torch (for
    the older tech-relevance BERT) is never imported."""
    import subprocess
    import sys

    script = """
import sys
from newsmon.models import Article
from newsmon.nlp.pipeline import Analyzer
analyzer = Analyzer(topic_backend="signal")
tech, sport = analyzer.analyze_batch([
    Article(url="https://a.example/1", canonical_url="https://a.example/1",
            title="삼성전자, 차세대 HBM4 메모리 양산 돌입", text=""),
    Article(url="https://a.example/2", canonical_url="https://a.example/2",
            title="프로야구 두산, 연장 끝에 LG 꺾고 3연승", text=""),
])
print(tech.relevance, sport.relevance, "torch" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    tech, sport, torch_loaded = out.stdout.split()
    assert float(tech) > 0.5 > float(sport) and torch_loaded == "False"


def test_recorded_relevance_figures_hold_on_a_held_out_set() -> None:
    """The relevance head's held-out figures (signal.json, in the README) recomputed on TNEWS's
    held-out set, the smallest of them."""
    from newsmon.nlp.encoder import encode_titles
    from newsmon.nlp.training.data import TECH, relevance_rows
    from newsmon.nlp.training.devset import shared_data_dir
    from newsmon.nlp.training.signal import prf

    shared = shared_data_dir()
    if not (shared / "tnews_fewclue_zh").is_dir():
        pytest.skip(f"no TNEWS under {shared}")
    model = SignalModel()
    recorded = model.meta["relevance"]["heldout"]["tnews"]
    rows = [r for r in relevance_rows(shared) if r[0] == "heldout" and r[1] == "tnews"]
    scores = model.relevance(encode_titles([r[4] for r in rows]))
    assert scores is not None
    precision, recall, f1 = prf(scores >= 0.5, [r[3] == TECH for r in rows])
    assert (precision, recall, f1) == pytest.approx(
        (recorded["precision"], recorded["recall"], recorded["f1"]), abs=0.01
    )


def test_everyday_negatives_come_from_training_splits_only() -> None:
    """The everyday headlines added as negatives: training splits only, classes outside the
    taxonomy, no held-out or excluded word, unlabelled, bounded per set and the same every run."""
    from newsmon.nlp.training.data import GENERAL_CATEGORIES, labelled_headlines, text_key
    from newsmon.nlp.training.devset import shared_data_dir
    from newsmon.nlp.training.signal import GENERAL_EXCLUDED, GENERAL_PER_SOURCE, general_headlines

    shared = shared_data_dir()
    if not (shared / "klue_ynat_ko").is_dir():
        pytest.skip(f"no shared headline sets under {shared}")
    items = general_headlines(shared)
    rows = list(labelled_headlines(shared))
    held = {text_key(r[4]) for r in rows if r[0] == "heldout"}
    classes: dict[str, set[str]] = {}
    for split, _source, _lang, category, text in rows:
        if split == "train":
            classes.setdefault(text_key(text), set()).add(category)
    keys = [text_key(item.title) for item in items]
    assert len(set(keys)) == len(keys) and not held & set(keys)
    assert all(classes[k] <= GENERAL_CATEGORIES for k in keys)
    assert not any(word in k for k in keys for word in GENERAL_EXCLUDED)
    assert all(not item.alert and not item.topics and not item.text for item in items)
    assert max(Counter(item.url for item in items).values()) <= GENERAL_PER_SOURCE
    assert general_headlines(shared) == items


def test_recorded_alert_rate_on_everyday_headlines_holds() -> None:
    """The alert's flags on TNEWS's held-out headlines (eval.json, in the README) recomputed."""
    from newsmon.nlp.training.devset import shared_data_dir
    from newsmon.nlp.training.signal_eval import heldout_flag_rates

    shared = shared_data_dir()
    if not (shared / "tnews_fewclue_zh").is_dir():
        pytest.skip(f"no TNEWS under {shared}")
    recorded = json.loads(RECORDED.read_text(encoding="utf-8"))["shared_heldout_flagged"]["tnews"]
    fresh = heldout_flag_rates(shared, sources=("tnews",))["tnews"]
    assert fresh["headlines"] == recorded["headlines"]
    assert fresh["flagged"] == pytest.approx(recorded["flagged"], abs=1)


def test_a_headline_only_item_is_held_to_the_headline_threshold() -> None:
    """A bare headline scores lower than the same report with its text, so it has a threshold of
    its own (chosen on the headline-only training rows); the analyzer picks it by the text."""
    analyzer = Analyzer()
    assert analyzer.signal is not None
    title = "美商务部将12家中国企业列入实体清单"
    prepared = analyzer.prepare(
        [
            Article(url=url, canonical_url=url, title=title, text=text, lang="zh")
            for url, text in (
                ("https://a.example/1", "美国商务部周二宣布新增实体清单。"),
                ("https://a.example/2", ""),
            )
        ]
    )
    docs = prepared.docs
    full, bare = analyzer.signals(
        prepared, [analyzer.rules.score(d) for d in docs], [analyzer.alerts.decide(d) for d in docs]
    )
    assert full.alert_threshold == analyzer.signal.meta["alert_thresholds"]["zh"]
    assert bare.alert_threshold == analyzer.signal.meta["headline_alert_thresholds"]["zh"]
