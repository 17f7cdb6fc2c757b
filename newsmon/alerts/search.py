"""Rules as Elasticsearch queries over the articles indexed in a time window.

Only plain query DSL is used (bool/term/terms/range/multi_match): the local node has no
percolator and no painless, and none is needed because rules run after each index run
over the documents whose ``indexed`` time is newer than the rule's checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from index.docs import from_doc
from index.ops import Retry, iter_pages
from index.search import text_fields
from newsmon.alerts.rules import AlertRule
from newsmon.models import Article

PAGE_SIZE = 200
_SOURCE_EXCLUDES = ["tokens"]


def build_query(rule: AlertRule, since: datetime, until: datetime) -> dict[str, Any]:
    """The ES query for ``rule`` over documents with since < indexed <= until."""
    q = rule.query
    filters: list[dict[str, Any]] = [
        {"range": {"indexed": {"gt": since.isoformat(), "lte": until.isoformat()}}}
    ]
    if q.export_controls is not None:
        filters.append({"term": {"alert.export_controls": q.export_controls}})
    if q.min_score:
        filters.append({"range": {"alert.score": {"gte": q.min_score}}})
    for field, values in (("topics", q.topics), ("entities", q.entities), ("lang", q.languages)):
        if values:
            filters.append({"terms": {field: values}})
    if q.sites:
        # Analysts think in hosts ("etnews.com") or registry names ("etnews"): accept both.
        filters.append(_any_of([{"terms": {"site": q.sites}}, {"terms": {"source": q.sites}}]))
    if q.terms:
        filters.append(
            _any_of(
                [
                    # The fields whose analyzer suits the term's script (nori for Hangul,
                    # smartcn for Chinese), so "수출 통제" also matches "수출 통제를".
                    {"multi_match": {"query": term, "type": "phrase", "fields": text_fields(term)}}
                    for term in q.terms
                ]
            )
        )
    return {"bool": {"filter": filters}}


def _any_of(clauses: list[dict[str, Any]]) -> dict[str, Any]:
    return {"bool": {"should": clauses, "minimum_should_match": 1}}


@dataclass(frozen=True)
class MatchPage:
    """One page of matches, oldest first, and how far the window is handled after it.

    ``handled_until``: every matching document indexed at or before it is in this page or an
    earlier one (the last hit's time less one millisecond, because more documents with that
    same time may be on the next page).
    """

    articles: list[Article]
    handled_until: datetime


def search_pages(
    client: Any, alias: str, rule: AlertRule, since: datetime, until: datetime, *, size: int = PAGE_SIZE
) -> Iterator[MatchPage]:
    """Every article matching ``rule`` indexed in (since, until], a page at a time, oldest first.

    A point in time with ``search_after`` pages through any number of matches on one stable
    snapshot; memory stays one page.
    """
    pages = iter_pages(
        client,
        alias,
        build_query(rule, since, until),
        Retry(attempts=1),  # the alert run reports a failure; the next run retries the window
        size=size,
        source={"excludes": _SOURCE_EXCLUDES},
        sort=[{"indexed": {"order": "asc"}}, {"_shard_doc": {"order": "asc"}}],
    )
    for hits in pages:
        last_ms = int(hits[-1]["sort"][0])
        handled = datetime.fromtimestamp((last_ms - 1) / 1000, tz=UTC)
        yield MatchPage([from_doc(hit["_source"]) for hit in hits], max(since, handled))
