"""Topic classification: the rules backend, the registry and the ensemble."""

from __future__ import annotations

import pytest

from newsmon.errors import ConfigError
from newsmon.models import Article, Topic
from newsmon.nlp.topics import (
    EnsembleBackend,
    RulesBackend,
    TopicBackend,
    backend_names,
    get_backend,
    register_backend,
)


def _article(title: str, text: str = "") -> Article:
    return Article(url=f"u:{title}", canonical_url=f"u:{title}", title=title, text=text)


ARTICLES = [
    _article(
        "SK하이닉스, HBM3E 양산…엔비디아에 공급", "SK하이닉스가 5세대 고대역폭메모리 반도체 양산을 시작했다."
    ),
    _article(
        "美国宣布对中国商品加征关税", "美国贸易代表办公室宣布对中国商品加征25%关税，中方表示将采取反制措施。"
    ),
    _article(
        "Moonshot AI raises $1bn at a $10bn valuation",
        "The Chinese chatbot maker's funding round was led by Alibaba.",
    ),
    _article("오늘의 날씨: 전국 맑음", "전국이 대체로 맑겠다."),
]


def test_rules_backend_is_multi_label_and_explains_itself() -> None:
    topics = get_backend("rules").classify(ARTICLES)
    labels = [[t.label for t in ts] for ts in topics]
    assert labels[0][0] == "semiconductors"
    assert "trade_policy" in labels[1]
    assert {"funding_business", "ai_models"} <= set(labels[2])
    assert labels[3] == []
    for ts in topics:
        assert ts == sorted(ts, key=lambda t: -t.score)
        for t in ts:
            assert 0.5 <= t.score <= 1 and t.evidence
    semis = topics[0][0]
    assert {"HBM3E", "반도체"} <= set(semis.evidence)


def test_scores_cover_every_topic_of_the_taxonomy() -> None:
    backend = RulesBackend()
    assert backend.labels == [
        "export_controls",
        "trade_policy",
        "ai_models",
        "semiconductors",
        "compute_infrastructure",
        "funding_business",
    ]


def test_the_taxonomy_is_extensible_without_code() -> None:
    taxonomy = {
        "defaults": {"scale": 4.0, "threshold": 0.5},
        "topics": {"quantum": {"phrases": {"양자컴퓨터": 3, "量子计算": 3, "quantum computer": 3}}},
    }
    backend = RulesBackend(taxonomy=taxonomy)
    [[topic]] = backend.classify([_article("IBM unveils a 1,000-qubit quantum computer")])
    assert topic.label == "quantum" and topic.evidence == ["quantum computer"]


class _Fixed:
    name = "fixed"

    def classify(self, articles: list[Article]) -> list[list[Topic]]:
        return [[Topic(label="ai_models", score=1.0, evidence=["model:fixed"])] for _ in articles]


def test_registry_and_ensemble() -> None:
    register_backend("fixed", _Fixed)
    assert {"rules", "transformers", "ensemble", "fixed"} <= set(backend_names())
    assert isinstance(get_backend("fixed"), TopicBackend)
    ensemble = get_backend("ensemble", members="rules,fixed", weights="3,1")
    assert isinstance(ensemble, EnsembleBackend)
    [chips, weather] = ensemble.classify([ARTICLES[0], ARTICLES[3]])
    # weighted mean: rules' strong semiconductors survives 3:1; 'fixed' alone (1.0 * 1/4) does not
    assert chips[0].label == "semiconductors" and "HBM3E" in chips[0].evidence
    assert weather == []
    [[only]] = get_backend("ensemble", members="fixed").classify([ARTICLES[3]])
    assert only == Topic(label="ai_models", score=1.0, evidence=["model:fixed"])


def test_unknown_or_unavailable_backends_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown topic backend"):
        get_backend("nope")
    register_backend("broken", "nlp.no_such_module:Backend")
    with pytest.raises(ConfigError, match="not available"):
        get_backend("broken")
    with pytest.raises(ConfigError, match="weights"):
        get_backend("ensemble", members="rules,fixed", weights="1")
