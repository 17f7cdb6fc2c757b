"""The crawl-health index: run summaries and canary results, one small document each.

Separate from the articles (its own mapping, ``index/runs_mapping.json``) so that Kibana can
chart crawl health next to the news without either index's fields leaking into the other.
Writers use the alias ``{prefix}-runs``, backed by ``{prefix}-runs-000001``; the documents
are a few hundred bytes and a few hundred a day, so one generation lasts for years (no
rollover). Writes carry ``require_alias``: a write before the setup can never auto-create a
concrete index with guessed field types.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from elasticsearch import BadRequestError, Elasticsearch

from newsmon.index.client import REQUEST_TIMEOUT_S, runs_alias
from newsmon.settings import Settings

RUNS_MAPPING_FILE = Path(__file__).with_name("runs_mapping.json")
TEMPLATE_PRIORITY = 200


@cache
def runs_spec() -> dict[str, Any]:
    """``index/runs_mapping.json``: index ``settings`` and ``mappings``."""
    return json.loads(RUNS_MAPPING_FILE.read_text(encoding="utf-8"))


def setup_runs_index(settings: Settings, client: Elasticsearch) -> str:
    """Create or update the template, the first index and the alias; idempotent. Returns the
    write index. New fields in the mapping file are put on the live index."""
    alias, spec = runs_alias(settings), runs_spec()
    client.indices.put_index_template(
        name=alias,
        index_patterns=[f"{alias}-0*"],
        priority=TEMPLATE_PRIORITY,
        template={"settings": spec["settings"], "mappings": spec["mappings"]},
    )
    if client.indices.exists_alias(name=alias):
        client.indices.put_mapping(
            index=alias,
            properties=spec["mappings"]["properties"],
            dynamic_templates=spec["mappings"]["dynamic_templates"],
        )
        found = client.indices.get_alias(name=alias)
        return next((i for i, a in found.items() if a["aliases"][alias].get("is_write_index")), max(found))
    first = f"{alias}-000001"
    try:
        client.indices.create(index=first, aliases={alias: {"is_write_index": True}})
    except BadRequestError as exc:
        if exc.error != "resource_already_exists_exception":
            raise
        # A concurrent setup won the race (or an earlier one died before the alias).
        client.indices.update_aliases(
            actions=[{"add": {"index": first, "alias": alias, "is_write_index": True}}]
        )
    return first


def index_runs(settings: Settings, docs: Sequence[dict[str, Any]], client: Elasticsearch) -> list[str]:
    """Index ``docs`` (each with its ``_id``) in one bulk; returns the reasons of the documents
    Elasticsearch refused (empty: all written). Sets the index up when it is missing. Transport
    errors (Elasticsearch unreachable) propagate: the caller decides that they do not matter."""
    alias = runs_alias(settings)

    def send() -> list[dict[str, Any]]:
        ops: list[dict[str, Any]] = []
        for doc in docs:
            body = {k: v for k, v in doc.items() if k != "_id"}
            ops += [{"index": {"_index": alias, "_id": doc["_id"]}}, body]
        resp = client.options(request_timeout=REQUEST_TIMEOUT_S).bulk(operations=ops, require_alias=True)
        return [result.get("error") for item in resp["items"] for result in item.values()]

    if not docs:
        return []
    errors = send()
    if any(e and e.get("type") == "index_not_found_exception" for e in errors):
        setup_runs_index(settings, client)
        errors = send()
    return [f"{e.get('type')}: {e.get('reason')}" for e in errors if e]
