"""Where the pipeline's state lives: embedded SQLite files under the data dir (the default), or
the one database that ``NEWSMON_STATE_URL`` names (PostgreSQL), shared by every worker host.

The stores (the crawl store in ``crawlers.store``, the alert ledger in ``alerts.ledger``, the
inbox queue in ``newsmon.inbox``) run the same SQLAlchemy Core statements on both; this module
gives them a connection (``StateDb``), an upsert that speaks either dialect, advisory locks,
and the Alembic migrations of the shared database (``newsmon state upgrade``).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool, StaticPool

from newsmon.errors import NewsmonError

MIGRATIONS = Path(__file__).resolve().parent / "state_migrations"


def driver_url(url: str) -> str:
    """``url`` with the psycopg (3) driver when it names PostgreSQL without a driver."""
    parsed = sa.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(engine: Engine, *, wal: bool) -> Engine:
    """SQLite as the stores have always used it: WAL, a commit that survives power loss, and
    every transaction taking the write lock at BEGIN (no upgrade deadlocks between readers).

    pysqlite's own transaction handling is switched off so that SQLAlchemy's BEGIN is the one
    sent, as the SQLAlchemy SQLite dialect documentation describes
    (https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#serializable-isolation-savepoints-transactional-ddl).
    """

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi: sqlite3.Connection, _record: object) -> None:
        dbapi.isolation_level = None
        if wal:
            dbapi.execute("PRAGMA journal_mode=WAL")
        dbapi.execute("PRAGMA synchronous=FULL")

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def sqlite_file_engine(path: Path) -> Engine:
    return _sqlite_pragmas(
        sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 30}, poolclass=NullPool), wal=True
    )


def memory_engine() -> Engine:
    """A private in-memory SQLite database (one connection, kept for the engine's life)."""
    return _sqlite_pragmas(sa.create_engine("sqlite://", poolclass=StaticPool), wal=False)


@lru_cache(maxsize=8)
def shared_engine(url: str) -> Engine:
    """The engine of the shared state database, checked to be migrated to the newest schema."""
    engine = sa.create_engine(driver_url(url), pool_pre_ping=True)
    try:
        current, head = current_revision(engine), head_revision()
    except sa.exc.OperationalError as exc:
        raise NewsmonError(f"NEWSMON_STATE_URL: cannot connect ({_first_line(exc)})") from None
    if current != head:
        raise NewsmonError(
            f"NEWSMON_STATE_URL: the state database is at schema {current or 'none'}, this newsmon "
            f"needs {head}: run `newsmon state upgrade`"
        )
    return engine


def _first_line(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]


class StateDb:
    """A state database; ``tx()`` is a transaction on it.

    An SQLite file keeps one connection open for the store's life (opening the file is the
    costly part). The shared database lends a pooled connection per transaction: a crawl opens
    a store per source, and holding a connection for each would drain the pool.
    ``shared`` says whether the database is the shared one: its crawl tables then hold every
    source's rows (a ``source`` column), where an embedded file holds one source's.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.shared = engine.dialect.name == "postgresql"
        self._conn = None if self.shared else engine.connect()

    def run_script(self, script: str) -> None:
        """Run an SQLite script (``CREATE TABLE IF NOT EXISTS ...``) on an embedded database."""
        assert self._conn is not None, "the shared database's schema is Alembic's"
        self._conn.connection.dbapi_connection.executescript(script)  # type: ignore[union-attr]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        if self._conn is None:
            with self.engine.begin() as conn:
                yield conn
        else:
            with self._conn.begin():
                yield self._conn

    def upsert(self, table: sa.Table) -> Any:
        """``INSERT`` with ``on_conflict_do_update``/``_nothing`` in this database's dialect."""
        return (postgresql.insert if self.shared else sqlite.insert)(table)


# ---------------------------------------------------------------------- advisory locks


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``name`` (PostgreSQL advisory locks take a bigint)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


@lru_cache(maxsize=8)
def _lock_engine(url: str) -> Engine:
    # No pool: closing a lock's connection must end its session, and so release the lock.
    return sa.create_engine(driver_url(url), poolclass=NullPool)


class AdvisorySession:
    """A database session that holds advisory locks, like a ``flock``ed file: they go with the
    process holding it (the server sees the session end). A crawl takes every one of its
    sources' locks on one session: a connection per source would be dozens for a feeds poll.
    The session ends when its last lock is released (or ``close()`` while it holds none)."""

    def __init__(self, url: str) -> None:
        try:
            self._conn = _lock_engine(url).connect()
        except sa.exc.OperationalError as exc:
            raise NewsmonError(f"NEWSMON_STATE_URL: cannot connect for a lock ({_first_line(exc)})") from None
        self._held = 0

    def try_lock(self, name: str, *, exclusive: bool = True) -> AdvisoryLock | None:
        """The lock ``name``, or None when another session holds it (``exclusive=False``: when
        another holds it exclusively). A session may take a lock it holds again: callers ask
        once per name."""
        key = lock_key(name)
        take = sa.func.pg_try_advisory_lock if exclusive else sa.func.pg_try_advisory_lock_shared
        got = self._conn.execute(sa.select(take(key))).scalar()
        self._conn.commit()  # the lock is the session's, not the transaction's
        if not got:
            return None
        self._held += 1
        return AdvisoryLock(self, key, exclusive)

    def fileno(self) -> int:
        """The session's socket: a child process given it keeps the session (and the locks)
        alive after this one dies, as a child given a locked file's descriptor does."""
        return int(self._conn.connection.dbapi_connection.fileno())  # type: ignore[union-attr]

    def release(self, key: int, exclusive: bool) -> None:
        self._held -= 1
        if self._held:
            unlock = sa.func.pg_advisory_unlock if exclusive else sa.func.pg_advisory_unlock_shared
            self._conn.execute(sa.select(unlock(key)))
            self._conn.commit()
        else:
            self._conn.close()  # ending the session releases for certain

    def close(self) -> None:
        """End the session if it holds no lock (its locks end it when they are released)."""
        if not self._held:
            self._conn.close()


class AdvisoryLock:
    """One advisory lock of an ``AdvisorySession``; closing it releases it."""

    def __init__(self, session: AdvisorySession, key: int, exclusive: bool) -> None:
        self._session, self._key, self._exclusive = session, key, exclusive
        self._open = True

    def fileno(self) -> int:
        return self._session.fileno()

    def close(self) -> None:
        if self._open:
            self._open = False
            self._session.release(self._key, self._exclusive)


def try_advisory_lock(url: str, name: str, *, exclusive: bool = True) -> AdvisoryLock | None:
    """The lock ``name`` on a session of its own, or None when another session holds it."""
    session = AdvisorySession(url)
    try:
        held = session.try_lock(name, exclusive=exclusive)
    finally:
        session.close()  # a no-op once it holds the lock
    return held


# ---------------------------------------------------------------------- migrations (Alembic)


def alembic_config(url: str | None = None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        # ConfigParser interpolation: a literal % in a password must be doubled.
        config.set_main_option("sqlalchemy.url", driver_url(url).replace("%", "%%"))
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(url: str) -> tuple[str | None, str]:
    """Migrate the shared state database to the newest schema: (revision before, after)."""
    from alembic import command

    engine = sa.create_engine(driver_url(url), poolclass=NullPool)
    try:
        before = current_revision(engine)
        command.upgrade(alembic_config(url), "head")
        return before, current_revision(engine) or ""
    except sa.exc.OperationalError as exc:
        raise NewsmonError(f"NEWSMON_STATE_URL: cannot migrate ({_first_line(exc)})") from None
    finally:
        engine.dispose()
