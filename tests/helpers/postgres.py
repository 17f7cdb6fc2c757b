"""A real PostgreSQL 16 for the suite (the ``pgserver`` wheel carries its binaries) and a fresh,
migrated database per test, for the shared state (``NEWSMON_STATE_URL``)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from newsmon.state import upgrade


@contextmanager
def postgres_server(pgdata: Path) -> Iterator[str]:
    """Start a server on ``pgdata`` (a Unix socket there, no TCP port); yields its URL."""
    import pgserver

    # Its exit hook logs at INFO after pytest has closed the captured streams: a noisy traceback.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def empty_database(server_url: str, prefix: str = "newsmon") -> str:
    """A new, empty database on the server: its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)


def fresh_database(server_url: str) -> str:
    """A new database on the server, migrated with ``newsmon.state.upgrade``: its URL."""
    url = empty_database(server_url)
    upgrade(url)
    return url
