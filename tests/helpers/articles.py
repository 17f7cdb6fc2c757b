"""Article factories and per-test settings shared by the index, search and alert tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from newsmon.alerts.sample import sample_articles
from newsmon.models import AlertDecision, Article, Topic
from newsmon.settings import Settings

NOW = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
# What a crawl of the demo site (crawlers/demo_site) brings: 12 articles, and the Korean feed's
# "[기획]" hub page, a list page the feed announces, so it is kept (recall first) with the
# warning list_like rather than dropped.
DEMO_ARTICLES = 13


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


DESK = "desk@example.org"


def story(n: int, *, lang: str = "ko", cluster: str | None = None, **update: Any) -> Article:
    """Article ``n`` of a story; the same ``cluster`` makes them copies of one story."""
    base = sample_articles()[0 if lang == "ko" else 3]
    url = f"https://outlet{n}.example/news/{n}"
    return base.model_copy(
        update={
            "url": url,
            "canonical_url": url,
            "source": f"outlet{n}",
            "site": f"outlet{n}.example",
            "title": f"{base.title} #{n}",
            "lang": lang,
            "cluster_id": cluster,
            "published": base.published + timedelta(minutes=n) if base.published else None,
        }
        | update
    )
