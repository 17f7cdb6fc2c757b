"""The analysis pipeline end to end on small synthetic articles."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsmon.models import Article, Topic
from newsmon.nlp.cluster import StoryClusters
from newsmon.nlp.pipeline import Analyzer, analyze_article, analyze_articles, analyzer_version


def _article(n: int, title: str, text: str, lang: str | None = None) -> Article:
    return Article(
        url=f"https://example.test/{n}",
        canonical_url=f"https://example.test/{n}",
        title=title,
        text=text,
        lang=lang,
    )


KO = _article(
    1,
    "美 상무부, 딥시크·화웨이 우려거래자 목록 추가…엔비디아 H20 수출통제 강화",
    "미국 상무부 산업안보국(BIS)은 15일 중국 인공지능 기업 딥시크와 화웨이 계열사 20곳을 우려거래자 목록에 "
    "올렸다고 밝혔다. 엔비디아의 H20 칩을 중국에 수출하려면 앞으로 허가를 받아야 한다.",
)
ZH = _article(
    2,
    "商务部：对镓、锗相关物项实施出口管制",
    "商务部、海关总署发布公告，决定对镓、锗相关物项实施出口管制，自8月1日起正式实施。未经许可，不得出口。",
)
EN = _article(
    3,
    "DeepSeek releases a new reasoning model",
    "Chinese AI start-up DeepSeek released a large language model that rivals OpenAI's best, trained on "
    "Nvidia H800 GPUs in its own data center.",
)
SHORT = _article(4, "华为", "", lang="zh")


def test_analyze_articles_fills_the_analysis_fields_in_order() -> None:
    done: list[int] = []
    out = list(analyze_articles([KO, ZH, EN, SHORT], progress=done.append))
    assert [a.url for a in out] == [KO.url, ZH.url, EN.url, SHORT.url]
    assert sum(done) == 4
    assert [a.lang for a in out] == ["ko", "zh", "en", "zh"]
    ko, zh, en, short = out

    assert {"우려거래자 목록", "딥시크", "H20", "엔비디아"} <= set(ko.tokens)
    assert {"org:deepseek", "org:huawei", "org:nvidia", "chip:h20", "agency:us_bis"} <= set(ko.entities)
    assert ko.keywords[:2] == ["Entity List", "export controls"]
    assert ko.topics[0].label == "export_controls" and ko.topics[0].evidence
    assert ko.alert.export_controls and ko.alert.evidence
    assert ko.relevance is not None and ko.relevance >= ko.alert.score

    assert {"镓", "锗", "出口管制", "海关总署"} <= set(zh.tokens)
    assert zh.alert.export_controls  # retaliation: export controls on gallium and germanium
    assert {"gallium", "germanium", "export controls"} <= set(zh.keywords)

    assert "ai_models" in {t.label for t in en.topics}
    assert not en.alert.export_controls
    assert "model:deepseek_r1" not in en.entities and "org:deepseek" in en.entities

    assert short.tokens == ["华为"] and short.entities == ["org:huawei"]
    for a in out:
        assert a.analyzer == analyzer_version() and a.analyzer.startswith("newsmon-nlp/")
        assert a.cluster_id
    assert len({a.cluster_id for a in out}) == 4


def test_analyze_article_matches_the_batch_path_and_keeps_input_fields() -> None:
    single = analyze_article(KO)
    assert single.tokens == next(analyze_articles([KO])).tokens
    assert single.title == KO.title and single.url == KO.url and single.text == KO.text


def test_japanese_and_empty_texts_do_not_break_a_batch() -> None:
    ja = _article(5, "日本政府は半導体製造装置の輸出規制を強化した", "経済産業省が発表した。")
    empty = _article(6, "", "")
    out = list(analyze_articles([ja, empty]))
    assert out[0].lang == "ja" and out[0].tokens
    assert out[1].tokens == [] and out[1].topics == [] and not out[1].alert.export_controls


def test_an_analyzer_with_a_cluster_store_groups_copies() -> None:
    analyzer = Analyzer(clusters=StoryClusters())
    copy = _article(7, "[속보] " + KO.title, KO.text + " (끝)")
    first, second = analyzer.analyze_batch([KO, copy])
    assert second.cluster_id == first.cluster_id == KO.id


class _WithRelevance:
    name = "with-relevance"

    def classify(self, articles: list[Article]) -> list[list[Topic]]:
        return [[Topic(label="ai_models", score=0.9, evidence=["model:x"])] for _ in articles]

    def relevance(self, articles: list[Article]) -> list[float]:
        return [0.123 for _ in articles]


def test_a_backend_with_its_own_relevance_model_sets_relevance() -> None:
    [out] = Analyzer(topic_backend=_WithRelevance()).analyze_batch([EN])
    assert out.topics == [Topic(label="ai_models", score=0.9, evidence=["model:x"])]
    # Never below what the article touches among watched topics.
    assert out.relevance == 0.9


def test_the_model_relevance_wins_when_higher_than_any_watched_topic() -> None:
    class _Model:
        def relevance(self, articles: list[Article]) -> list[float]:
            return [0.77] * len(articles)

    plain = Article(url="u", canonical_url="u", title="프로야구 개막전 매진", text="관중이 몰렸다.")
    [out] = Analyzer(relevance_model=_Model()).analyze_batch([plain])
    assert out.topics == [] and out.relevance == 0.77
    [none] = Analyzer(relevance_model=None).analyze_batch([plain])
    assert none.relevance is not None and none.relevance < 0.5


def test_settings_pick_the_relevance_model(tmp_path: Path) -> None:
    from newsmon.errors import ConfigError
    from newsmon.nlp.pipeline import settings_analyzer
    from newsmon.nlp.transformers_backend import DEFAULT_MODEL_DIR
    from newsmon.settings import load_settings

    analyzer = settings_analyzer(load_settings(data_dir=tmp_path))
    # Unset: the signal heads' relevance head, no separate classifier (and no torch).
    assert analyzer.relevance_model is None and analyzer.signal is not None
    assert analyzer.signal.relevance_head is not None
    bert = settings_analyzer(load_settings(data_dir=tmp_path, relevance_model=DEFAULT_MODEL_DIR))
    assert bert.relevance_model is not None  # the shipped BERT, when named
    with pytest.raises(ConfigError, match="NEWSMON_RELEVANCE_MODEL"):
        settings_analyzer(load_settings(data_dir=tmp_path, relevance_model=tmp_path / "nothing"))


def test_settings_pick_the_topic_backend_and_model(tmp_path: Path) -> None:
    from newsmon.errors import ConfigError
    from newsmon.nlp.pipeline import settings_topic_backend
    from newsmon.nlp.topics import EnsembleBackend, RulesBackend
    from newsmon.nlp.transformers_backend import TOPIC_MODEL_DIR
    from newsmon.settings import load_settings

    assert settings_topic_backend(load_settings(data_dir=tmp_path)) == "signal"  # the default
    ensemble = settings_topic_backend(load_settings(data_dir=tmp_path, topic_backend="ensemble"))
    assert isinstance(ensemble, EnsembleBackend)  # with its tuned weights
    assert set(ensemble.label_weights) == set(RulesBackend().labels)
    assert isinstance(
        settings_topic_backend(load_settings(data_dir=tmp_path, topic_backend="rules")), RulesBackend
    )
    chosen = settings_topic_backend(
        load_settings(data_dir=tmp_path, topic_backend="transformers", topic_model=TOPIC_MODEL_DIR)
    )
    assert chosen.labels == sorted(RulesBackend().labels)
    with pytest.raises(ConfigError, match="NEWSMON_TOPIC_MODEL"):
        settings_topic_backend(load_settings(data_dir=tmp_path, topic_model=tmp_path / "nothing"))
