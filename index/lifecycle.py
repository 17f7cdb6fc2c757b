"""Index lifecycle: when the articles index starts a new generation, and what becomes of old ones.

Behind the alias ``{prefix}-articles`` each generation is ``{prefix}-articles-v{N}-{seq}``;
a rollover adds the next ``seq`` and makes it the write index, and the alias keeps every
generation for searches (the indexer updates an article in whichever generation holds it).
One set of conditions, two ways to apply them:

- clusters with index lifecycle management (ILM: Elastic's default distribution, any licence,
  and managed clusters) with ``NEWSMON_ES_ILM=true``: ``setup_index`` puts the ILM policy
  ``{prefix}-articles`` and the index template attaches it to every new generation;
- clusters without ILM (the local node: it is built without x-pack): ``newsmon index rollover``,
  run daily by ``newsmon_daily``, rolls over when a condition holds.

ILM policy format: https://www.elastic.co/guide/en/elasticsearch/reference/8.19/ilm-put-lifecycle.html
"""

from __future__ import annotations

from typing import Any

from elasticsearch import ApiError, Elasticsearch

from newsmon.errors import NewsmonError
from newsmon.index.client import articles_alias, es_client
from newsmon.settings import Settings

# Elastic's sizing advice is primary shards of 10-50 GB; a month bounds how long one generation
# lives, so that old generations can move to warm nodes (and be deleted) month by month.
# min_docs: an empty generation is not rolled over when it gets old (ILM does the same).
ROLLOVER_CONDITIONS: dict[str, Any] = {"max_primary_shard_size": "50gb", "max_age": "30d", "min_docs": 1}
# A generation leaves the hot phase this long after its rollover. The warm phase only lowers
# its recovery priority (and lets ILM move it to warm-tier nodes where there are any): no
# readonly or forcemerge, since the indexer still updates changed articles in old generations.
WARM_AFTER = "30d"


def policy_name(settings: Settings) -> str:
    return articles_alias(settings)


def ilm_policy(settings: Settings) -> dict[str, Any]:
    """The ILM policy body: rollover in hot, a warm phase, and a delete phase when
    ``NEWSMON_ES_ILM_DELETE_AFTER`` is set (measured from each generation's rollover)."""
    phases: dict[str, Any] = {
        "hot": {
            "min_age": "0ms",
            "actions": {"rollover": dict(ROLLOVER_CONDITIONS), "set_priority": {"priority": 100}},
        },
        "warm": {"min_age": WARM_AFTER, "actions": {"set_priority": {"priority": 50}}},
    }
    if settings.es_ilm_delete_after:
        phases["delete"] = {"min_age": settings.es_ilm_delete_after, "actions": {"delete": {}}}
    return {"phases": phases, "_meta": {"managed_by": "newsmon"}}


def lifecycle_settings(settings: Settings) -> dict[str, str]:
    """Index settings that put a new generation under the policy (none without ILM)."""
    if not settings.es_ilm:
        return {}
    return {
        "index.lifecycle.name": policy_name(settings),
        "index.lifecycle.rollover_alias": articles_alias(settings),
    }


def put_policy(settings: Settings, client: Elasticsearch) -> None:
    """Create or update the ILM policy; a cluster without ILM is a one-line error."""
    try:
        client.ilm.put_lifecycle(name=policy_name(settings), policy=ilm_policy(settings))
    except ApiError as exc:
        if exc.meta.status not in (400, 404, 405):
            raise
        raise NewsmonError(
            f"NEWSMON_ES_ILM is on, but Elasticsearch at {settings.es_url} has no index lifecycle "
            f"management ({exc.message}): unset NEWSMON_ES_ILM there and let `newsmon index rollover` "
            "(a daily newsmon_daily task) roll the index over"
        ) from None


def rollover(
    settings: Settings, *, client: Elasticsearch | None = None, **conditions: str | int
) -> str | None:
    """Start a new write index when any ``max_*`` condition holds (and every ``min_*`` one;
    always, given none); returns its name, or None when it did not roll over. The indexer keeps
    updating documents in the older indices, so rolling over never creates duplicates."""
    client = client or es_client(settings)
    resp = client.indices.rollover(alias=articles_alias(settings), conditions=conditions or None)
    return resp["new_index"] if resp["rolled_over"] else None


def scheduled_rollover(settings: Settings, client: Elasticsearch | None = None) -> dict[str, Any]:
    """What the daily task does: roll over by ``ROLLOVER_CONDITIONS`` unless ILM does it.

    Returns ``{"managed_by": "ilm"}``, or ``{"rolled_over": bool, "new_index": name or None}``.
    """
    if settings.es_ilm:
        return {"managed_by": "ilm"}
    new_index = rollover(settings, client=client, **ROLLOVER_CONDITIONS)
    return {"rolled_over": new_index is not None, "new_index": new_index}
