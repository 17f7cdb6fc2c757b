"""Shared fixtures: one real Elasticsearch node for the whole session, started by the suite."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from newsmon.settings import Settings

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def es_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings pointing at a real local node (NEWSMON_TEST_ES_URL reuses a running one)."""
    from esfixture import start_test_node, stop_test_node

    settings = start_test_node(tmp_path_factory.mktemp("es"))
    try:
        yield settings
    finally:
        stop_test_node(settings)


@pytest.fixture
def shared_data() -> Path:
    """The third-party evaluation data in ../shared/data; tests skip cleanly without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"../shared/data is absent ({SHARED_DATA}); CI provides it")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's NEWSMON_* settings or writes into ./var."""
    for var in list(os.environ):
        if var.startswith("NEWSMON_") and var != "NEWSMON_TEST_ES_URL":
            monkeypatch.delenv(var)
    monkeypatch.setenv("NEWSMON_DATA_DIR", str(tmp_path / "var"))
    from newsmon.settings import get_settings

    get_settings.cache_clear()


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """A real PostgreSQL server for the session, started by the suite: its URL."""
    pytest.importorskip("pgserver", reason="the test extra installs pgserver (a PostgreSQL in a wheel)")
    from helpers.postgres import postgres_server

    # Not under pytest's private (0700) temp folder: run as root, pgserver runs PostgreSQL as an
    # unprivileged user of its own, which must reach the data folder to stop the server.
    pgdata = Path(tempfile.mkdtemp(prefix="newsmon-test-pg-"))
    pgdata.chmod(0o755)
    try:
        with postgres_server(pgdata) as url:
            yield url
    finally:
        shutil.rmtree(pgdata, ignore_errors=True)


@pytest.fixture
def state_url(postgres: str) -> str:
    """A fresh shared state database (migrated) in the suite's PostgreSQL: its URL."""
    from helpers.postgres import fresh_database

    return fresh_database(postgres)


# The index tests' node: settings with their own index prefix, and a client that removes what
# they created.
@pytest.fixture
def es(es_settings: Settings, tmp_path: Path) -> Settings:
    from helpers.articles import isolated

    return isolated(es_settings, tmp_path)


@pytest.fixture
def client(es: Settings) -> Iterator[Elasticsearch]:
    from newsmon.index.client import articles_alias, es_client

    c = es_client(es)
    yield c
    c.indices.delete(index=f"{articles_alias(es)}-v*", ignore_unavailable=True)
    c.options(ignore_status=404).indices.delete_index_template(name=articles_alias(es))
    c.close()
