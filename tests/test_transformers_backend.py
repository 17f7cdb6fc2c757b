"""The shipped tech-relevance model through TransformersBackend (CPU, offline)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from newsmon.errors import ConfigError
from newsmon.models import Article, Topic
from newsmon.nlp.transformers_backend import (
    DEFAULT_MODEL_DIR,
    TransformersBackend,
    ZeroShotBackend,
    article_text,
)

# Headlines of our own writing, not from any data set.
TECH = [
    "삼성전자, 차세대 인공지능 반도체 양산 시작",
    "네이버 클라우드, 초거대 AI 서비스 기업용으로 출시",
    "카카오, 새 메신저 보안 기능 업데이트 공개",
    "华为发布新一代手机芯片",
    "腾讯云推出人工智能大模型服务",
    "苹果公司发布新款iPhone手机",
    "微软发布Windows新版本",
]
NOT_TECH = [
    "손흥민, 리그 경기서 결승골로 팀 승리 이끌어",
    "국회 본회의, 내년도 예산안 의결",
    "주말 전국에 비 소식…기온 뚝 떨어져",
    "国足客场战平对手 积分榜排名不变",
    "央行宣布下调存款准备金率",
    "明星夫妇官宣离婚 网友热议",
    "北京楼市成交量环比下降",
]

# Held-out F1 the shipped model reached (nlp/models/tech_relevance/README.md: 0.7934, 0.6806,
# 0.1923), rounded down to 2 decimals: a retrained or edited model that scores lower fails.
# tnews has 78 positives, so one headline moves its F1 by ~0.015: it gets that much slack.
HELDOUT_F1_FLOOR = {"klue_ynat": 0.79, "thucnews": 0.68, "tnews": 0.17}
SCI_NEWS_RECALL_FLOOR = 0.60  # reached 0.62 (31/50); one headline of slack

MAX_MODEL_BYTES = 25 * 1024 * 1024


@pytest.fixture(scope="module")
def backend() -> TransformersBackend:
    return TransformersBackend(batch_size=16)


def _article(i: int, title: str = "", text: str = "") -> Article:
    return Article(
        url=f"https://news.test/{i}", canonical_url=f"https://news.test/{i}", title=title, text=text
    )


def test_shipped_model_is_small_and_complete() -> None:
    files = {p.name: p.stat().st_size for p in DEFAULT_MODEL_DIR.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "README.md",
    } <= set(files)
    assert sum(files.values()) <= MAX_MODEL_BYTES
    config = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text(encoding="utf-8"))
    assert set(config["id2label"].values()) == {"tech", "other"}
    assert config["newsmon"]["relevance_label"] == "tech"
    assert config["newsmon"]["task"] == "tech_relevance"


def test_construction_is_lazy() -> None:
    b = TransformersBackend()
    assert b._model is None  # nothing loaded until the first prediction


def test_obvious_headlines(backend: TransformersBackend) -> None:
    probs = backend.predict(TECH + NOT_TECH)
    assert all(set(p) == {"tech", "other"} and abs(sum(p.values()) - 1) < 1e-5 for p in probs)
    tech_scores = [p["tech"] for p in probs[: len(TECH)]]
    other_scores = [p["tech"] for p in probs[len(TECH) :]]
    assert all(s > 0.5 for s in tech_scores), list(zip(TECH, tech_scores, strict=True))
    assert all(s < 0.5 for s in other_scores), list(zip(NOT_TECH, other_scores, strict=True))


def test_classify_and_relevance_on_articles(backend: TransformersBackend) -> None:
    arts = [
        _article(0, TECH[0]),
        _article(1, NOT_TECH[0]),
        _article(2, "", "微软发布Windows新版本"),  # untitled: the body is read instead
        _article(3),
    ]
    topics = backend.classify(arts)
    assert [t.label for t in topics[0]] == ["tech"]
    assert isinstance(topics[0][0], Topic) and topics[0][0].evidence == ["model:tech_relevance"]
    assert topics[1] == [] and topics[3] == []
    assert [t.label for t in topics[2]] == ["tech"]
    rel = backend.relevance(arts)
    assert rel[0] > 0.5 > rel[1] and rel[3] == 0.0
    assert rel[0] == topics[0][0].score
    # annotate() fills both fields in place, keeping topics another backend set.
    art = _article(4, TECH[3])
    art.topics.append(Topic(label="semiconductors", score=0.9, evidence=["rules"]))
    backend.annotate([art])
    assert (
        [t.label for t in art.topics] == ["semiconductors", "tech"] and art.relevance and art.relevance > 0.5
    )


def test_article_text_modes() -> None:
    a = _article(0, " 제목 ", "본문   첫 문장. " * 100)
    assert article_text(a) == "제목"
    both = article_text(a, "title+text", max_chars=20)
    assert both.startswith("제목 본문 첫 문장.") and len(both) <= 23


def test_topic_backend_registry_builds_it() -> None:
    topics = pytest.importorskip("newsmon.nlp.topics")
    b = topics.get_backend("transformers")
    assert isinstance(b, topics.TopicBackend) and b.name == "transformers"


def test_no_download_without_permission(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="allow_hub"):
        TransformersBackend("klue/roberta-base").predict(["x"])
    with pytest.raises(ConfigError, match="no such folder"):
        TransformersBackend(str(tmp_path / "missing")).predict(["x"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"config\.json"):
        TransformersBackend(str(tmp_path / "empty")).predict(["x"])


def test_zero_shot_backend_mechanics(tmp_path: Path) -> None:
    """A tiny random NLI model (our tokenizer, 3 NLI labels) stands in for mDeBERTa-XNLI:
    this checks the plumbing, not the accuracy."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(str(DEFAULT_MODEL_DIR), local_files_only=True)
    labels = {0: "entailment", 1: "neutral", 2: "contradiction"}
    cfg = BertConfig(
        vocab_size=len(tok),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=3,
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
    )
    BertForSequenceClassification(cfg).save_pretrained(tmp_path / "nli")
    tok.save_pretrained(tmp_path / "nli")
    zs = ZeroShotBackend(
        str(tmp_path / "nli"), {"tech": "technology", "sports": "sports"}, topic_threshold=0.0
    )
    arts = [_article(0, TECH[0]), _article(1, NOT_TECH[0]), _article(2)]
    topics = zs.classify(arts)
    assert {t.label for t in topics[0]} == {"tech", "sports"} and topics[2] == []
    assert all(0.0 <= t.score <= 1.0 and t.evidence == ["zero-shot:nli"] for t in topics[0])
    rel = zs.relevance(arts)
    assert 0.0 <= rel[0] <= 1.0 and rel[2] == 0.0


@pytest.mark.shared_data
def test_heldout_scores_do_not_regress(shared_data: Path, tmp_path: Path) -> None:
    """Held-out F1 per set on ../shared/data, rebuilt with the same fixed split as training."""
    from newsmon.nlp.training.classifier import evaluate_classifier
    from newsmon.nlp.training.data import build_relevance_dataset

    stats = build_relevance_dataset(shared_data, tmp_path / "rel.jsonl")
    scores = evaluate_classifier(DEFAULT_MODEL_DIR, None, Path(stats.heldout_path))
    for name, floor in HELDOUT_F1_FLOOR.items():
        assert scores[name].f1 >= floor, (name, scores[name])
    assert scores["sci_news_kr50"].recall >= SCI_NEWS_RECALL_FLOOR, scores["sci_news_kr50"]
