"""Article <-> index document, plus the article factory and settings helper the other
index/search test modules import."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from index.docs import from_doc, mapping_spec, to_doc
from newsmon.models import AlertDecision, Article, Topic
from newsmon.settings import Settings

NOW = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)


def make_article(n: int = 0, **changes: Any) -> Article:
    """A small, fully analysed Korean article; ``changes`` override any field."""
    url = f"https://news.example.kr/article/{n}"
    fields: dict[str, Any] = {
        "url": url,
        "canonical_url": url,
        "source": "example",
        "site": "news.example.kr",
        "title": f"반도체 수출통제 기사 {n}",
        "text": f"미국이 반도체 장비 수출통제를 강화했다. 기사 번호 {n}.",
        "published": datetime(2026, 5, 1, 9, 0, tzinfo=UTC),
        "authors": ["홍길동"],
        "lang": "ko",
        "fetched": datetime(2026, 5, 1, 10, 0, tzinfo=UTC),
        "extractor": "trafilatura-2.3.1",
        "tokens": ["반도체", "수출", "통제"],
        "keywords": ["수출통제"],
        "entities": ["미국"],
        "topics": [Topic(label="semiconductors", score=0.9, evidence=["반도체"])],
        "relevance": 0.8,
        "alert": AlertDecision(export_controls=True, score=0.7, evidence=["수출통제"]),
        "cluster_id": f"c{n % 3}",
        "analyzer": "kiwi-0.24.1/test",
    }
    fields.update(changes)
    return Article(**fields)


def isolated(es_settings: Settings, tmp_path: Path) -> Settings:
    """The session node's settings with a prefix and data dir of this test's own."""
    return es_settings.model_copy(
        update={"index_prefix": f"t{uuid.uuid4().hex[:10]}", "data_dir": tmp_path / "var"}
    )


def test_doc_keeps_everything_and_converts_back() -> None:
    seen = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    article = make_article(1, first_seen=seen, last_seen=seen)
    doc = to_doc(article, first_seen=None, indexed=NOW)
    assert doc["topics"] == ["semiconductors"]
    assert doc["topic_scores"] == [{"label": "semiconductors", "score": 0.9, "evidence": ["반도체"]}]
    assert doc["content_hash"] == article.content_hash
    assert doc["mapping_version"] == mapping_spec()["version"]
    assert doc["indexed"] == NOW.isoformat()
    assert "id" not in doc  # it is the document _id
    back = from_doc(doc)
    assert back == article
    assert back.id == article.id


def test_first_seen_last_seen_and_date() -> None:
    article = make_article(2)
    doc = to_doc(article, first_seen=None, indexed=NOW)
    # Nothing stored and nothing on the article: first seen when fetched.
    assert doc["first_seen"] == doc["fetched"] == doc["last_seen"]
    assert doc["date"] == doc["published"]
    stored = to_doc(article, first_seen="2026-04-01T00:00:00Z", indexed=NOW)
    assert stored["first_seen"] == "2026-04-01T00:00:00Z"  # the stored one wins
    undated = to_doc(make_article(3, published=None), first_seen="2026-04-01T00:00:00Z", indexed=NOW)
    assert undated["date"] == "2026-04-01T00:00:00Z"  # Kibana's time field falls back to first_seen
