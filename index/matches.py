"""Alert rule queries (``newsmon.queries.RuleQuery``) as Elasticsearch queries over the
articles indexed in a time window; the app hands an ``IndexMatcher`` to the alert run.

Only plain query DSL is used (bool/term/terms/range/multi_match): the local node has no
percolator and no painless, and none is needed because rules run after each index run
over the documents whose ``indexed`` time is newer than the rule's checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from elasticsearch import ApiError, NotFoundError, TransportError

from newsmon.errors import NewsmonError
from newsmon.index.client import articles_alias, es_client
from newsmon.index.docs import from_doc
from newsmon.index.ops import Retry, iter_pages
from newsmon.index.search import text_fields
from newsmon.queries import MatchPage, RuleQuery
from newsmon.settings import Settings

PAGE_SIZE = 200
_SOURCE_EXCLUDES = ["tokens"]


def build_query(q: RuleQuery, since: datetime, until: datetime) -> dict[str, Any]:
    """The ES query for ``q`` over documents with since < indexed <= until."""
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


def search_pages(
    client: Any, alias: str, query: RuleQuery, since: datetime, until: datetime, *, size: int = PAGE_SIZE
) -> Iterator[MatchPage]:
    """Every article matching ``query`` indexed in (since, until], a page at a time, oldest first.

    A point in time with ``search_after`` pages through any number of matches on one stable
    snapshot; memory stays one page.
    """
    pages = iter_pages(
        client,
        alias,
        build_query(query, since, until),
        Retry(attempts=1),  # the alert run reports a failure; the next run retries the window
        size=size,
        source={"excludes": _SOURCE_EXCLUDES},
        sort=[{"indexed": {"order": "asc"}}, {"_shard_doc": {"order": "asc"}}],
    )
    for hits in pages:
        last_ms = int(hits[-1]["sort"][0])
        handled = datetime.fromtimestamp((last_ms - 1) / 1000, tz=UTC)
        yield MatchPage([from_doc(hit["_source"]) for hit in hits], max(since, handled))


class IndexMatcher:
    """The alert run's view of the index (``newsmon.alerts.run.Matcher``): make what the last
    index run wrote searchable, then page through a rule's matches. Elasticsearch failures
    become one-line errors; a missing index matches nothing."""

    def __init__(self, settings: Settings, client: Any = None) -> None:
        self.client = es_client(settings) if client is None else client
        self.alias = self.name = articles_alias(settings)

    def refresh(self) -> bool:
        """False when there is no index yet (nothing can match)."""
        try:
            self.client.indices.refresh(index=self.alias)
        except NotFoundError:
            return False
        except (ApiError, TransportError) as exc:
            raise NewsmonError(f"alerts: Elasticsearch refresh of {self.alias} failed: {exc}") from None
        return True

    def pages(self, query: RuleQuery, since: datetime, until: datetime) -> Iterator[MatchPage]:
        try:
            yield from search_pages(self.client, self.alias, query, since, until)
        except NotFoundError:
            return
        except (ApiError, TransportError) as exc:
            raise NewsmonError(f"alerts: Elasticsearch query on {self.alias} failed: {exc}") from None
