"""A three-node local cluster (``newsmon es start --nodes 3``): the articles index with one
replica, the node holding its primary killed (SIGKILL) during bulk indexing, nothing lost,
green again once the node is restarted.

The indexer's client knows all three nodes and spreads requests over them, so the killed
node holds the primary (a surviving coordinator must send the writes to the promoted replica)
and may also be coordinating a bulk request when it dies (the client then retries that request
on another node; seen in the transport's log of a run with live logging)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from esfixture import REUSE_ENV, start_test_cluster
from helpers.articles import make_article
from typer.testing import CliRunner

from newsmon.cli import app
from newsmon.errors import ESNodeError
from newsmon.index.bulk import index_articles
from newsmon.index.client import es_client
from newsmon.index.localnode import launcher as esnode
from newsmon.index.localnode.build import local_nodes
from newsmon.index.ops import Retry
from newsmon.index.setup import setup_index
from newsmon.settings import Settings, get_settings

pytestmark = pytest.mark.integration

NODES = 3
ARTICLES = 1000
CHUNK = 50


def _copies(client: Elasticsearch, index: str) -> list[dict[str, str]]:
    """The shard copies of ``index``: node name and id, primary or replica, state."""
    return client.cat.shards(index=index, format="json", h="node,id,prirep,state")


def _es_cli(settings: Settings, command: str) -> tuple[int, str]:
    """``newsmon es <command>`` against the cluster's data dir: (exit code, output)."""
    env = {"NEWSMON_ES_URL": settings.es_url, "NEWSMON_DATA_DIR": str(settings.data_dir)}
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["es", command], env=env)
    finally:
        get_settings.cache_clear()
    return result.exit_code, result.output


def test_killing_the_primary_node_mid_bulk_loses_nothing(tmp_path: Path) -> None:
    if os.environ.get(REUSE_ENV):
        pytest.skip(f"{REUSE_ENV}: this test runs and kills nodes of its own")
    settings = start_test_cluster(tmp_path, NODES)
    nodes = {n.name: n for n in local_nodes(settings, NODES)}
    try:
        members = esnode.cluster_members(settings)
        assert [m.url for m in members] == [n.url for n in nodes.values()]
        assert len({m.pid for m in members}) == NODES  # a JVM each
        # the single node would share node 1's port: refused while the cluster runs
        with pytest.raises(ESNodeError, match=f"a local cluster of {NODES} node"):
            esnode.start(settings, nodes=1)
        client = es_client(settings)
        assert client.cluster.health()["number_of_nodes"] == NODES
        index = setup_index(settings, client).write_index
        # the template's auto_expand_replicas gives the index one replica as soon as there are two nodes
        index_settings = client.indices.get_settings(index=index)[index]["settings"]["index"]
        assert index_settings["number_of_replicas"] == "1"
        client.cluster.health(index=index, wait_for_status="green", timeout="60s")
        copies = _copies(client, index)
        assert sorted(c["prirep"] for c in copies) == ["p", "r"]
        victim = nodes[next(c["node"] for c in copies if c["prirep"] == "p")]
        victim_pid, _ = esnode.read_pid_file(victim.pid_file)
        assert victim_pid is not None

        killed_at: list[int] = []

        def kill_after_first_chunk(n: int) -> None:
            # progress runs as a chunk is done, while the next one's bulk is already in flight
            if not killed_at:
                os.kill(victim_pid, signal.SIGKILL)
                killed_at.append(n)

        articles = [make_article(i) for i in range(ARTICLES)]
        stats = index_articles(
            articles,
            settings,
            progress=kill_after_first_chunk,
            chunk_size=CHUNK,
            retry=Retry(attempts=6, backoff_s=0.5),
        )
        assert killed_at
        code, output = _es_cli(settings, "status")
        assert code == 0 and f", {NODES - 1} nodes," in output
        assert len(esnode.cluster_members(settings)) == NODES - 1  # the victim's stale pid file is gone
        assert (stats.created, stats.updated, stats.unchanged, stats.failed, stats.spooled) == (
            ARTICLES,
            0,
            0,
            0,
            0,
        )
        assert not list(settings.layout.spool.glob("*")) and not list(settings.layout.deadletter.glob("*"))

        survivor = es_client(settings)
        survivor.indices.refresh(index=index)
        hits = survivor.search(index=index, size=ARTICLES + 10, source=False, query={"match_all": {}})
        ids = [h["_id"] for h in hits["hits"]["hits"]]
        assert len(ids) == ARTICLES  # each exactly once ...
        assert set(ids) == {a.id for a in articles}  # ... and every one

        # the killed node comes back (the same `start` finds the two live nodes and starts the third)
        back = esnode.start(settings, nodes=NODES, watch_pid=os.getpid())
        assert back.nodes == NODES
        health = survivor.cluster.health(index=index, wait_for_status="green", timeout="120s")
        assert (health["status"], health["number_of_nodes"]) == ("green", NODES)
        survivor.indices.refresh(index=index)
        copies = _copies(survivor, index)
        assert [c["state"] for c in copies] == ["STARTED", "STARTED"]
        # the replica on a survivor was promoted when the victim died (primaries do not move back)
        assert next(c["node"] for c in copies if c["prirep"] == "p") != victim.name
        # each copy holds every article (the restarted node's one too, if it got a copy back)
        for copy in copies:
            assert survivor.count(index=index, preference=f"_only_nodes:{copy['id']}")["count"] == ARTICLES

        code, output = _es_cli(settings, "status")
        assert code == 0 and f"health green, {NODES} nodes," in output
        assert all(f"{n.home.name}: pid" in output for n in nodes.values())
        code, output = _es_cli(settings, "stop")
        assert code == 0 and "Elasticsearch stopped" in output
        assert not any(n.pid_file.exists() for n in nodes.values())
        assert _es_cli(settings, "status")[0] == 3
    finally:
        esnode.stop(settings)
