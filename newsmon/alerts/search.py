"""Rules as Elasticsearch queries over the articles indexed in a time window.

Only plain query DSL is used (bool/term/terms/range/multi_match): the local node has no
percolator and no painless, and none is needed because rules run after each index run
over the documents whose ``indexed`` time is newer than the rule's checkpoint.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from index.docs import from_doc
from index.search import text_fields
from newsmon.alerts.rules import AlertRule
from newsmon.models import Article

PAGE_SIZE = 200
# More matches than this in one window is a flood (or a broken rule), not news: the
# excess is dropped rather than mailed; the caller reports it.
MAX_MATCHES_PER_RULE = 1000
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


def search_new(
    client: Any, alias: str, rule: AlertRule, since: datetime, until: datetime
) -> tuple[list[Article], int]:
    """Articles matching ``rule`` indexed in (since, until], oldest first, and the total."""
    query = build_query(rule, since, until)
    found: list[Article] = []
    total = 0
    # The window is closed at ``until``, so from/size paging sees a stable result set.
    while len(found) < MAX_MATCHES_PER_RULE:
        resp = client.search(
            index=alias,
            query=query,
            sort=[{"indexed": {"order": "asc"}}],
            size=min(PAGE_SIZE, MAX_MATCHES_PER_RULE - len(found)),
            from_=len(found),
            source_excludes=_SOURCE_EXCLUDES,
            track_total_hits=True,
        )
        hits = resp["hits"]["hits"]
        total = resp["hits"]["total"]["value"]
        found += [from_doc(hit["_source"]) for hit in hits]
        if not hits or len(found) >= total:
            break
    return found, total
