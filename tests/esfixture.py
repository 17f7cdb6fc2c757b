"""A real Elasticsearch node for the test suite (conftest wraps these into a session fixture).

``NEWSMON_TEST_ES_URL=http://127.0.0.1:9200`` reuses a node that is already running (e.g. one from
``newsmon es start``) instead of starting one: faster edit-test loops.
"""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

from newsmon.errors import ESNodeError
from newsmon.index.localnode import launcher as esnode
from newsmon.index.localnode.build import TRANSPORT_OFFSET
from newsmon.index.localnode.launcher import free_port
from newsmon.settings import Settings

REUSE_ENV = "NEWSMON_TEST_ES_URL"


def start_test_node(tmp_dir: Path, timeout: float = 300.0) -> Settings:
    """Start a node with its data in ``tmp_dir`` on a free port (or reuse NEWSMON_TEST_ES_URL)."""
    url = os.environ.get(REUSE_ENV)
    if url:
        settings = Settings(es_url=url, data_dir=tmp_dir)
        st = esnode.status(settings)
        if st.health not in ("yellow", "green"):
            raise ESNodeError(f"{REUSE_ENV}={url} does not answer with yellow/green health (got {st.health})")
        return settings
    last: ESNodeError | None = None
    for _ in range(2):  # the free port can be taken between picking and binding it; try once more
        settings = Settings(es_url=f"http://127.0.0.1:{free_port()}", data_dir=tmp_dir)
        try:
            # watch_pid: the node stops itself if this test process dies without tearing down
            esnode.start(settings, timeout, watch_pid=os.getpid())
            return settings
        except ESNodeError as exc:
            if "already in use" not in str(exc) and "Failed to bind" not in str(exc):
                raise
            last = exc
    assert last is not None
    raise last


def start_test_cluster(tmp_dir: Path, nodes: int = 3, timeout: float = 300.0) -> Settings:
    """Start a local cluster of ``nodes`` with its data in ``tmp_dir`` on free ports; the
    settings point at node 1 and clients from them know every node (``NEWSMON_TEST_ES_URL``
    is not used: the caller kills nodes)."""
    last: ESNodeError | None = None
    for _ in range(3):  # as above: a picked port can be taken before the node binds it
        url = f"http://127.0.0.1:{_free_port_run(nodes)}"
        settings = Settings(es_url=url, data_dir=tmp_dir, es_nodes=nodes)
        try:
            esnode.start(settings, timeout, watch_pid=os.getpid())
            return settings
        except ESNodeError as exc:
            if "already in use" not in str(exc) and "bind" not in str(exc).lower():
                raise
            last = exc
    assert last is not None
    raise last


def _free_port_run(count: int) -> int:
    """A port P such that P .. P+count-1 (HTTP) and the same + TRANSPORT_OFFSET are all free,
    below Linux's ephemeral range so that outgoing connections do not take them meanwhile."""
    while True:
        base = random.randrange(20000, 32000 - TRANSPORT_OFFSET - count)
        ports = [base + i + off for i in range(count) for off in (0, TRANSPORT_OFFSET)]
        if all(_bindable(p) for p in ports):
            return base


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def stop_test_node(settings: Settings) -> None:
    """Stop a node started by :func:`start_test_node`; a reused node is left running."""
    if os.environ.get(REUSE_ENV):
        return
    esnode.stop(settings)


def es_client(settings: Settings):
    """An official Python client for the node (import kept local: the module imports without it)."""
    from elasticsearch import Elasticsearch

    return Elasticsearch(settings.es_url, request_timeout=60)
