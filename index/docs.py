"""Article <-> index document.

The document keeps everything the extractor and the analyzer produced (text included), so
stored articles can be re-analysed from the index alone. Differences from ``Article``:
``topics`` holds the labels (for filters and aggregations) and ``topic_scores`` the full
topics; ``date`` is ``published`` or else ``first_seen`` (Kibana's time field: an article
without a published date still shows up in time-filtered views); ``indexed`` is the time of
the last write; ``content_hash`` and ``mapping_version`` are provenance.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from newsmon.models import Article, Topic

MAPPING_FILE = Path(__file__).with_name("mapping.json")


@cache
def mapping_spec() -> dict[str, Any]:
    """``index/mapping.json``: ``version``, index ``settings`` and ``mappings``."""
    return json.loads(MAPPING_FILE.read_text(encoding="utf-8"))


def to_doc(article: Article, *, first_seen: str | None, indexed: datetime) -> dict[str, Any]:
    """The document for ``article``; ``first_seen`` is the stored one when it exists."""
    doc = article.model_dump(mode="json", exclude={"id", "topics"})
    doc["topics"] = [t.label for t in article.topics]
    doc["topic_scores"] = [t.model_dump(mode="json") for t in article.topics]
    doc["first_seen"] = first_seen or doc["first_seen"] or doc["fetched"]
    doc["last_seen"] = doc["last_seen"] or doc["fetched"]
    doc["date"] = doc["published"] or doc["first_seen"]
    doc["indexed"] = indexed.isoformat()
    doc["mapping_version"] = mapping_spec()["version"]
    return doc


def from_doc(source: dict[str, Any]) -> Article:
    """The ``Article`` stored in a document (index-only fields are dropped)."""
    data = {k: v for k, v in source.items() if k in Article.model_fields}
    data["topics"] = [Topic.model_validate(t) for t in source.get("topic_scores") or []]
    return Article.model_validate(data)
