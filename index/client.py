"""The one way newsmon builds an Elasticsearch client."""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch

from newsmon.index.localnode.build import local_nodes
from newsmon.settings import Settings

# Bulk requests of a few hundred CJK articles run through four analyzers each, so give them
# longer than the default; searches are fast and keep the short default.
REQUEST_TIMEOUT_S = 30.0
BULK_TIMEOUT_S = 120.0


def es_client(settings: Settings, **overrides: Any) -> Elasticsearch:
    """A client for ``settings.es_url`` with auth and CA from settings.

    The transport retries a request on connection errors, timeouts and 429/502/503/504
    (immediately, against the next node it knows); the indexer adds backoff and a disk spool
    on top. For a local cluster (NEWSMON_ES_NODES > 1) it knows every node, so that one node
    dying costs a retry on another rather than an outage.
    """
    options: dict[str, Any] = {
        "request_timeout": REQUEST_TIMEOUT_S,
        "max_retries": 2,
        "retry_on_timeout": True,
        "retry_on_status": (429, 502, 503, 504),
        "http_compress": not settings.es_is_local,  # CPU is dearer than bandwidth on loopback
    }
    if settings.es_user:
        options["basic_auth"] = (settings.es_user, settings.es_password or "")
    if settings.es_ca_certs:
        options["ca_certs"] = str(settings.es_ca_certs)
    options.update(overrides)
    hosts = [settings.es_url]
    if settings.es_nodes > 1 and settings.es_is_local:
        hosts = [node.url for node in local_nodes(settings, settings.es_nodes)]
    return Elasticsearch(hosts, **options)


def articles_alias(settings: Settings) -> str:
    """The alias every reader and writer uses; concrete indices sit behind it."""
    return f"{settings.index_prefix}-articles"


def runs_alias(settings: Settings) -> str:
    """The crawl-health index's write alias: one small document per run, stage and canary check."""
    return f"{settings.index_prefix}-runs"
