"""Re-run the analysis on stored articles, e.g. after a model or taxonomy change.

The index keeps the extracted text and metadata, so articles are read back from it (one
point-in-time snapshot, paged), analysed again and written back through the indexer's
conditional writes: only documents whose analysis changed are rewritten, ``first_seen``
stays, and an article the crawler updates meanwhile is re-read rather than overwritten.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from elasticsearch import Elasticsearch

from newsmon.index.bulk import Writer
from newsmon.index.client import articles_alias, es_client
from newsmon.index.docs import from_doc
from newsmon.index.ops import ESUnavailable, Retry, iter_pages
from newsmon.index.search import Filters, When
from newsmon.index.spool import DeadLetters
from newsmon.models import Article
from newsmon.settings import Settings

Analyze = Callable[[list[Article]], Iterable[Article]]
BATCH_SIZE = 200


@dataclass
class ReprocessStats:
    read: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0  # rejected by Elasticsearch, in the dead-letter file


def analysis_changed(doc: dict[str, Any], stored: dict[str, Any]) -> bool:
    return any(doc[k] != stored.get(k) for k in doc if k != "indexed")


def reprocess(
    settings: Settings,
    analyze: Analyze,
    since: When | None = None,
    until: When | None = None,
    site: str | None = None,
    *,
    client: Elasticsearch | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
    retry: Retry | None = None,
) -> ReprocessStats:
    """Re-analyse the stored articles dated in [since, until] (and from ``site``) with
    ``analyze`` (the app hands in the NLP stage's, built from the same settings)."""
    client = client or es_client(settings)
    retry = retry or Retry(attempts=settings.es_retries)
    writer = Writer(settings, client, retry=retry, dead=DeadLetters(settings), changed=analysis_changed)
    query = {"bool": {"filter": Filters(site=site, since=since, until=until).clauses()}}
    stats = ReprocessStats()
    for hits in iter_pages(client, articles_alias(settings), query, retry, size=batch_size):
        result = writer.write(list(analyze([from_doc(h["_source"]) for h in hits])))
        if result.unwritten:
            raise ESUnavailable(
                f"could not write {len(result.unwritten)} re-analysed articles (Elasticsearch down or "
                f"busy) after {stats.read} were done; run reprocess again"
            )
        stats.read += len(hits)
        stats.updated += result.stats.updated + result.stats.created
        stats.unchanged += result.stats.unchanged
        stats.failed += result.stats.failed
        if progress:
            progress(len(hits))
    return stats
