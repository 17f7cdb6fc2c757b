"""The one ``Article`` model that flows from crawl to index to alert."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, computed_field

# Bounds on the short fields a hostile page controls: longer values are cut (with an
# ellipsis), never rejected, so the article is kept. Real headlines stay far below these.
MAX_TITLE_CHARS = 500
MAX_NAME_CHARS = 200  # an author, a source or site name, a language tag
MAX_AUTHORS = 20


def cut(value: str, limit: int) -> str:
    """``value`` if it fits in ``limit`` characters, else its first ``limit - 1`` and an ellipsis."""
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


Title = Annotated[str, AfterValidator(lambda v: cut(v, MAX_TITLE_CHARS))]
Name = Annotated[str, AfterValidator(lambda v: cut(v, MAX_NAME_CHARS))]
Authors = Annotated[list[Name], AfterValidator(lambda v: v[:MAX_AUTHORS])]


def url_id(canonical_url: str) -> str:
    """Stable document id: the same canonical URL always maps to the same id."""
    return hashlib.sha1(canonical_url.encode("utf-8")).hexdigest()


def content_hash(title: str, text: str) -> str:
    return hashlib.sha1(f"{title}\n{text}".encode()).hexdigest()


def utcnow() -> datetime:
    return datetime.now(UTC)


class Topic(BaseModel):
    label: str
    score: float
    evidence: list[str] = Field(default_factory=list)


class AlertDecision(BaseModel):
    export_controls: bool = False
    score: float = 0.0
    evidence: list[str] = Field(default_factory=list)


class Article(BaseModel):
    """One news article; crawlers fill the first block, nlp/ the second, index/ the third."""

    # --- extraction
    url: str
    canonical_url: str
    source: Name = ""  # registry name of the outlet
    site: Name = ""  # host of the canonical URL
    title: Title = ""
    text: str = ""
    published: datetime | None = None
    authors: Authors = Field(default_factory=list)
    lang: Name | None = None
    fetched: datetime = Field(default_factory=utcnow)
    extractor: str = ""
    # The extractor's doubts about a page it kept because a feed, a sitemap or the source's
    # article pattern said it is an article: short_body, list_like, fallback_body, no_body.
    warnings: list[str] = Field(default_factory=list)

    # --- analysis
    tokens: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    entities: list[str] = Field(default_factory=list)
    topics: list[Topic] = Field(default_factory=list)
    relevance: float | None = None
    alert: AlertDecision = Field(default_factory=AlertDecision)
    cluster_id: str | None = None  # wire copies of one text (nlp.cluster)
    story_id: str | None = None  # every report of one event, any outlet or language (nlp.stories)
    analyzer: str = ""

    # --- index bookkeeping
    first_seen: datetime | None = None
    last_seen: datetime | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def id(self) -> str:
        return url_id(self.canonical_url)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def content_hash(self) -> str:
        return content_hash(self.title, self.text)


def read_articles(path: Path, errors: dict[str, int] | None = None) -> Iterator[Article]:
    """Articles from a JSONL file; a bad line is counted and skipped, never fatal."""
    # errors="replace": a line with broken UTF-8 fails validation and is counted, not fatal.
    with path.open(encoding="utf-8", errors="replace") as fh:
        yield from parse_articles(fh, errors)


def parse_articles(lines: Iterable[str], errors: dict[str, int] | None = None) -> Iterator[Article]:
    """Articles from JSON lines (a file's, or the inbox queue's rows); a bad one is counted
    (``bad_inbox_line``) and skipped, never fatal."""
    for line in lines:
        if not line.strip():
            continue
        try:
            yield Article.model_validate_json(line)
        except ValueError:
            if errors is not None:
                errors["bad_inbox_line"] = errors.get("bad_inbox_line", 0) + 1
