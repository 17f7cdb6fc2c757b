"""The crawl's persistent state: seen URLs, content hashes, an outbox of articles, an HTTP cache.

One store and one lock per source, so crawls of different sources run at the same time (on
different Airflow workers, say) and two crawls of one source never do. Embedded (the default):
an SQLite file and a lock file under ``settings.data_dir/crawl/sources/<name>/``. With
``NEWSMON_STATE_URL``: the source's rows in the shared database and an advisory lock there, so
workers on different hosts share what was seen, and the outbox drains into the inbox queue.

Crash safety comes from doing each article's bookkeeping in a single transaction: the article
row goes into the *outbox* in the same commit that marks its URL seen, so a killed crawl can
lose neither (no "seen but never written") nor duplicate (no "written but not seen").
``drain_outbox`` then moves committed articles to the JSON-lines output file (or the queue).
Before per-source stores there was one store for all sources: see ``crawlers.legacy_store``.
Scrapy's HTTP cache keeps its responses here too: ``crawlers.httpcache``.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from newsmon.crawlers.urls import canonicalize
from newsmon.errors import NewsmonError
from newsmon.inbox import enqueue
from newsmon.layout import DataDir
from newsmon.locks import Held, file_lock, lock_at, try_hold
from newsmon.models import Article, utcnow
from newsmon.state import AdvisorySession, StateDb, shared_engine, sqlite_file_engine

if TYPE_CHECKING:
    pass

NEW, UPDATED, UNCHANGED = "new", "updated", "unchanged"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (          -- every URL we fetched and need not fetch again
    url TEXT PRIMARY KEY,                  -- canonicalized
    article_id TEXT,                       -- NULL for pages that were no article (skip reason below)
    skip TEXT,
    lastmod TEXT,                          -- discovery lastmod when fetched (ISO), to notice updates
    seen_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY,
    canonical_url TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (        -- committed articles not yet written to an output file
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,                    -- new | updated
    article TEXT NOT NULL                  -- Article JSON
);
CREATE TABLE IF NOT EXISTS http_cache (    -- feeds, sitemaps and list pages, for conditional GET
    fingerprint TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    status INTEGER NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    stored REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (          -- e.g. legacy_import: when the retired store's rows came in
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
_QUIET = "quiet_runs:"  # meta key prefix: a configured feed or sitemap -> its quiet runs in a row
# The tables for SQLAlchemy: the schema above, plus the ``source`` column that the shared
# database's tables have (state_migrations); an embedded file's statements never name it.
_META = sa.MetaData()
_SOURCE = "source"
SEEN = sa.Table(
    "seen",
    _META,
    *(sa.Column(n, sa.Text) for n in (_SOURCE, "url", "article_id", "skip", "lastmod", "seen_at")),
)
ARTICLES = sa.Table(
    "articles",
    _META,
    *(
        sa.Column(n, sa.Text)
        for n in (_SOURCE, "id", "canonical_url", "content_hash", "first_seen", "last_seen")
    ),
)
OUTBOX = sa.Table(
    "outbox",
    _META,
    sa.Column("seq", sa.BigInteger, primary_key=True),
    *(sa.Column(n, sa.Text) for n in (_SOURCE, "kind", "article")),
)
HTTP_CACHE = sa.Table(
    "http_cache",
    _META,
    *(sa.Column(n, sa.Text) for n in (_SOURCE, "fingerprint", "url", "headers")),
    sa.Column("status", sa.Integer),
    sa.Column("body", sa.LargeBinary),
    sa.Column("stored", sa.Float),
)
META = sa.Table("meta", _META, *(sa.Column(n, sa.Text) for n in (_SOURCE, "key", "value")))
_KEYS = {"seen": "url", "articles": "id", "http_cache": "fingerprint", "meta": "key"}  # outbox: none
# A crawl store's location as the crawl child is told it: a file path, or this prefix and the
# source's name for its rows in the shared database (whose URL the child gets through its
# environment, never in the job file: it may hold a password).
SHARED_STORE = "shared:"


def stored_sources(data_dir: Path, state_url: str | None = None) -> list[str]:
    """Names of the sources that have a crawl store."""
    if state_url:
        db = StateDb(shared_engine(state_url))
        try:
            with db.tx() as conn:
                return list(
                    conn.execute(sa.select(SEEN.c.source).distinct().order_by(SEEN.c.source)).scalars()
                )
        finally:
            db.close()
    root = DataDir(data_dir).crawl_sources
    return sorted(p.parent.name for p in root.glob("*/state.sqlite")) if root.is_dir() else []


def store_location(data_dir: Path, state_url: str | None, source: str) -> str:
    return f"{SHARED_STORE}{source}" if state_url else str(DataDir(data_dir).source_state(source))


def open_store(location: str, state_url: str | None = None) -> CrawlStore:
    """The store at ``location`` (``store_location``); a shared one in the database at
    ``state_url``, by default the environment's (the crawl child's)."""
    if location.startswith(SHARED_STORE):
        url = state_url or os.environ.get("NEWSMON_STATE_URL")
        if not url:
            raise NewsmonError("a shared crawl store needs NEWSMON_STATE_URL in the crawl's environment")
        return CrawlStore.open_shared(url, location.removeprefix(SHARED_STORE))
    return CrawlStore(Path(location))


class _Statements:
    """A store's statements on its hot path (each page crawled), built once: building a
    SQLAlchemy statement costs more than running it on SQLite. Values come as parameters."""

    def __init__(self, db: StateDb, source: dict[str, str], own: Callable[[sa.Table], list[Any]]) -> None:
        self.seen_row = sa.select(SEEN.c.lastmod, SEEN.c.article_id, SEEN.c.skip).where(
            SEEN.c.url == sa.bindparam("seen_url"), *own(SEEN)
        )
        self.content_hash = sa.select(ARTICLES.c.content_hash).where(
            ARTICLES.c.id == sa.bindparam("article_id"), *own(ARTICLES)
        )
        seen = db.upsert(SEEN)
        self.seen_upsert = seen.on_conflict_do_update(
            index_elements=[*source, "url"],
            set_={
                "article_id": seen.excluded.article_id,
                "skip": seen.excluded.skip,
                "lastmod": sa.func.coalesce(seen.excluded.lastmod, SEEN.c.lastmod),
                "seen_at": seen.excluded.seen_at,
            },
        )
        article = db.upsert(ARTICLES)
        self.article_upsert = article.on_conflict_do_update(
            index_elements=[*source, "id"],
            set_={"content_hash": article.excluded.content_hash, "last_seen": article.excluded.last_seen},
        )
        self.outbox_insert = sa.insert(OUTBOX)


class CrawlStore:
    """One source's crawl state: its SQLite file (``CrawlStore(path)``), or its rows in the
    shared state database (``CrawlStore.open_shared``); the same statements run on both."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path: Path | None = path
        try:
            self._db = StateDb(sqlite_file_engine(path))
            self._db.run_script(_SCHEMA)
        except sa.exc.DatabaseError as exc:
            raise NewsmonError(
                f"crawl state {path} is unreadable ({exc.orig}); move it away to start afresh"
            ) from None
        self._source: dict[str, str] = {}

    @classmethod
    def open_shared(cls, url: str, source: str) -> CrawlStore:
        store = cls.__new__(cls)
        store.path = None
        store._db = StateDb(shared_engine(url))
        store._source = {"source": source}  # the shared tables hold every source's rows
        return store

    def close(self) -> None:
        self._db.close()

    def _own(self, table: sa.Table) -> list[sa.ColumnElement[bool]]:
        """This source's rows of ``table`` (all of an embedded file's)."""
        return [table.c.source == value for value in self._source.values()]

    @cached_property
    def _statements(self) -> _Statements:
        return _Statements(self._db, self._source, self._own)

    def _upsert(self, table: sa.Table, key: str, /, **values: Any) -> Any:
        """``INSERT`` of ``values`` (this source's row) that conflicts on ``key`` (positional:
        the meta table has a column named ``key``)."""
        insert = self._db.upsert(table).values(**self._source, **values)
        return insert, [*self._source, key]

    # ------------------------------------------------------------------ seen URLs

    def known(self, url: str, lastmod: datetime | None = None) -> str | None:
        """Why not to fetch ``url`` again: "article", or the skip reason it got; None: fetch it.

        A known URL is fetched again when discovery reports a newer ``lastmod`` than last time.
        """
        with self._db.tx() as conn:
            row = conn.execute(self._statements.seen_row, {"seen_url": canonicalize(url)}).first()
        if row is None or (lastmod and row[0] and lastmod > datetime.fromisoformat(row[0])):
            return None
        return "article" if row[1] else row[2] or "unknown"

    def _mark(
        self,
        conn: sa.Connection,
        urls: list[str],
        article_id: str | None,
        skip: str | None,
        lastmod: datetime | None,
    ) -> None:
        now = utcnow().isoformat()
        stamp = lastmod.isoformat() if lastmod else None
        rows = [
            {
                **self._source,
                "url": url,
                "article_id": article_id,
                "skip": skip,
                "lastmod": stamp,
                "seen_at": now,
            }
            for url in dict.fromkeys(canonicalize(u) for u in urls)
        ]
        conn.execute(self._statements.seen_upsert, rows)

    def note_lastmods(self, announced: Mapping[str, datetime]) -> None:
        """Raise the lastmod of seen URLs to the newest one announced (never lower it)."""
        if not announced:
            return
        with self._db.tx() as conn:
            for url, lastmod in announced.items():
                where = [SEEN.c.url == canonicalize(url), *self._own(SEEN)]
                row = conn.execute(sa.select(SEEN.c.lastmod).where(*where)).first()
                if row is not None and (row[0] is None or lastmod > datetime.fromisoformat(row[0])):
                    conn.execute(sa.update(SEEN).where(*where).values(lastmod=lastmod.isoformat()))

    def mark_skipped(self, urls: list[str], reason: str, lastmod: datetime | None = None) -> None:
        """Remember a page that is no article (list page, 404 ...) so it is not fetched again."""
        with self._db.tx() as conn:
            self._mark(conn, urls, None, reason, lastmod)

    def record(self, article: Article, urls: list[str], lastmod: datetime | None = None) -> str:
        """Mark the article's URLs seen and queue it for output if new or changed; returns its kind."""
        statements = self._statements
        with self._db.tx() as conn:
            row = conn.execute(statements.content_hash, {"article_id": article.id}).first()
            now = utcnow().isoformat()
            kind = NEW if row is None else UPDATED if row[0] != article.content_hash else UNCHANGED
            conn.execute(
                statements.article_upsert,
                {
                    **self._source,
                    "id": article.id,
                    "canonical_url": article.canonical_url,
                    "content_hash": article.content_hash,
                    "first_seen": now,
                    "last_seen": now,
                },
            )
            self._mark(conn, [*urls, article.url, article.canonical_url], article.id, None, lastmod)
            if kind != UNCHANGED:
                conn.execute(
                    statements.outbox_insert,
                    {**self._source, "kind": kind, "article": article.model_dump_json()},
                )
        return kind

    # ------------------------------------------------------------------ quiet feeds and sitemaps

    def quiet_runs(self, url: str) -> int:
        """How many runs in a row the configured feed or sitemap ``url`` brought no new article."""
        query = sa.select(META.c.value).where(META.c.key == _QUIET + url, *self._own(META))
        with self._db.tx() as conn:
            value = conn.execute(query).scalar()
        return int(value) if value is not None else 0

    def note_run(self, url: str, new_articles: int) -> int:
        """Count one more quiet run for ``url`` (reset by a run that brought news); the count."""
        count = 0 if new_articles else self.quiet_runs(url) + 1
        insert, key = self._upsert(META, "key", key=_QUIET + url, value=str(count))
        replace = insert.on_conflict_do_update(index_elements=key, set_={"value": insert.excluded.value})
        with self._db.tx() as conn:
            conn.execute(replace)
        return count

    # ------------------------------------------------------------------ outbox

    def drain_outbox(self, out_file: Path | None) -> Counter[str]:
        """Deliver the queued articles, then drop them from the outbox.

        To ``out_file`` (appended, fsynced): a crash between the fsync and the delete
        re-delivers those rows next time; the article id (a hash of the canonical URL) keeps
        that harmless downstream. ``None``: to the shared inbox queue, in the one transaction
        that deletes them (only with the shared state database).
        """
        counts: Counter[str] = Counter()
        with self._db.tx() as conn:
            query = sa.select(OUTBOX.c.seq, OUTBOX.c.kind, OUTBOX.c.article).where(*self._own(OUTBOX))
            rows = conn.execute(query.order_by(OUTBOX.c.seq)).all()
            counts.update(kind for _, kind, _ in rows)
            if out_file is None:
                if rows:
                    enqueue(conn, [(kind, article) for _, kind, article in rows])
                    conn.execute(sa.delete(OUTBOX).where(OUTBOX.c.seq <= rows[-1][0], *self._own(OUTBOX)))
                return counts
        out_file.parent.mkdir(parents=True, exist_ok=True)
        with out_file.open("a", encoding="utf-8") as fh:
            for _, _, article in rows:
                fh.write(article + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        if rows:
            with self._db.tx() as conn:
                conn.execute(sa.delete(OUTBOX).where(OUTBOX.c.seq <= rows[-1][0], *self._own(OUTBOX)))
        return counts

    # ------------------------------------------------------------------ HTTP cache

    def prune(self, *, cached_before: float, skipped_before: datetime) -> tuple[int, int]:
        """Drop HTTP-cache entries stored before ``cached_before`` (epoch seconds) and the seen
        marks of skipped pages (no article) older than ``skipped_before``; how many of each."""
        with self._db.tx() as conn:
            cache = conn.execute(
                sa.delete(HTTP_CACHE).where(HTTP_CACHE.c.stored < cached_before, *self._own(HTTP_CACHE))
            ).rowcount
            # Marks are written as ``utcnow().isoformat()``: the same format compares as text.
            skipped = conn.execute(
                sa.delete(SEEN).where(
                    SEEN.c.article_id.is_(None), SEEN.c.seen_at < skipped_before.isoformat(), *self._own(SEEN)
                )
            ).rowcount
        return cache, skipped

    def cache_get(self, fingerprint: str) -> tuple[str, int, dict[str, list[str]], bytes, float] | None:
        columns = (HTTP_CACHE.c[name] for name in ("url", "status", "headers", "body", "stored"))
        query = sa.select(*columns).where(HTTP_CACHE.c.fingerprint == fingerprint, *self._own(HTTP_CACHE))
        with self._db.tx() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return row[0], row[1], json.loads(row[2]), bytes(row[3]), row[4]

    def cache_put(
        self, fingerprint: str, url: str, status: int, headers: dict[str, list[str]], body: bytes
    ) -> None:
        insert, key = self._upsert(
            HTTP_CACHE,
            "fingerprint",
            fingerprint=fingerprint,
            url=url,
            status=status,
            headers=json.dumps(headers),
            body=body,
            stored=time.time(),
        )
        replace = {name: insert.excluded[name] for name in ("url", "status", "headers", "body", "stored")}
        with self._db.tx() as conn:
            conn.execute(insert.on_conflict_do_update(index_elements=key, set_=replace))

    # ------------------------------------------------------------------ copying rows between stores

    def tx(self) -> AbstractContextManager[sa.Connection]:
        return self._db.tx()

    def rows(self, table: sa.Table) -> list[dict[str, Any]]:
        """Every row this store has in ``table``, without the source column (the outbox's in
        delivery order, without its sequence number)."""
        columns = [c for c in table.c if c.name not in (_SOURCE, "seq")]
        query = sa.select(*columns).where(*self._own(table))
        if table is OUTBOX:
            query = query.order_by(OUTBOX.c.seq)
        with self._db.tx() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def add_rows(self, conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> int:
        """Insert ``rows`` (as ``rows`` gives them) into this store's ``table``, in ``conn``'s
        transaction; a row whose key this store has already keeps its values. How many rows."""
        key = _KEYS.get(table.name)
        for row in rows:
            insert = self._db.upsert(table).values(**self._source, **row)
            conn.execute(
                insert.on_conflict_do_nothing(index_elements=[*self._source, key]) if key else insert
            )
        return len(rows)

    def empty_outbox(self) -> None:
        """Drop every queued article (they were copied elsewhere: ``newsmon state import``)."""
        with self._db.tx() as conn:
            conn.execute(sa.delete(OUTBOX).where(*self._own(OUTBOX)))

    def has_meta(self, key: str) -> bool:
        with self._db.tx() as conn:
            return (
                conn.execute(sa.select(META.c.value).where(META.c.key == key, *self._own(META))).first()
                is not None
            )


# ---------------------------------------------------------------------- locks


def source_lock_at(data_dir: Path, state_url: str | None, source: str) -> Any:
    """Where the crawl lock of ``source`` lives (``newsmon.locks.lock_at``)."""
    return lock_at(DataDir(data_dir).source_lock(source), state_url, source_lock_name(source))


def source_lock_name(source: str) -> str:
    """The name of a source's crawl lock in the shared database."""
    return f"crawl-source:{source}"


@contextmanager
def source_locks(
    data_dir: Path, names: list[str], *, wait: float = 0.0, poll: float = 1.0, state_url: str | None = None
) -> Iterator[tuple[dict[str, Held], list[str]]]:
    """Lock the stores of the sources that no other crawl holds: yields ``({name: held lock},
    busy names)``. While *every* one is busy, tries again for up to ``wait`` seconds."""
    names = list(dict.fromkeys(names))
    deadline = time.monotonic() + wait
    held: dict[str, Held] = {}
    # Shared: every lock of this crawl on one database session (see AdvisorySession).
    session = AdvisorySession(state_url) if state_url else None

    def try_source(name: str) -> Held | None:
        if session is not None:
            return session.try_lock(source_lock_name(name))
        return try_hold(DataDir(data_dir).source_lock(name))

    try:
        while True:
            for name in names:
                if name not in held and (fh := try_source(name)) is not None:
                    held[name] = fh
            if held or time.monotonic() >= deadline:
                break
            time.sleep(poll)
        yield held, [n for n in names if n not in held]
    finally:
        for fh in held.values():
            fh.close()
        if session is not None:
            session.close()  # when it holds no lock (else the last one released ended it)


@contextmanager
def source_lock(data_dir: Path, source: str, state_url: str | None = None) -> Iterator[None]:
    """Hold one source's crawl lock; NewsmonError if a crawl of that source holds it."""
    where = source_lock_at(data_dir, state_url, source)
    with file_lock(where, busy=f"another crawl of {source} is running (lock {where})"):
        yield


def drain_outboxes(stores: Mapping[str, str], out_file: Path | None, state_url: str | None) -> Counter[str]:
    """Deliver what the stores (``{source: location}``) hold in their outboxes (the caller holds
    their locks); ``out_file`` None: into the shared inbox queue."""
    delivered: Counter[str] = Counter()
    with ExitStack() as stack:
        for location in stores.values():
            store = open_store(location, state_url)
            stack.callback(store.close)
            delivered += store.drain_outbox(out_file)
    return delivered
