"""Article <-> index document."""

from __future__ import annotations

from datetime import UTC, datetime

from helpers.articles import NOW, make_article

from newsmon.index.docs import from_doc, mapping_spec, to_doc


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
