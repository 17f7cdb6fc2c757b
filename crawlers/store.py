"""The crawl's persistent state: seen URLs, content hashes, an outbox of articles, an HTTP cache.

One sqlite file and one lock per source, under ``settings.data_dir/crawl/sources/<name>/``,
so crawls of different sources run at the same time (on different Airflow workers, say)
and two crawls of one source never do. Crash safety comes from doing each article's
bookkeeping in a single transaction: the article row goes into the *outbox* in the same
commit that marks its URL seen, so a killed crawl can lose neither (no "seen but never
written") nor duplicate (no "written but not seen"). ``drain_outbox`` then moves committed
articles to the JSON-lines output file.

Before per-source stores there was one store for all sources (``crawl/state.sqlite``):
``retire_legacy_store`` delivers its outbox and moves it aside, and a source's new store
takes that source's seen URLs and content hashes from it (``import_legacy``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from newsmon.crawlers.urls import canonicalize, on_domains
from newsmon.errors import NewsmonError
from newsmon.layout import DataDir
from newsmon.locks import file_lock, try_lock
from newsmon.models import Article, utcnow

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.http import Response
    from scrapy.settings import BaseSettings

    from newsmon.crawlers.registry import Source

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
# How long a crawl waits for another one that is retiring the legacy store (a quick job).
LEGACY_LOCK_WAIT_S = 120.0


def stored_sources(data_dir: Path) -> list[str]:
    """Names of the sources that have a crawl store."""
    root = DataDir(data_dir).crawl_sources
    return sorted(p.parent.name for p in root.glob("*/state.sqlite")) if root.is_dir() else []


class CrawlStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        try:
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")  # a commit survives power loss, not just a kill
            self.db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise NewsmonError(
                f"crawl state {path} is unreadable ({exc}); move it away to start afresh"
            ) from None

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ------------------------------------------------------------------ seen URLs

    def known(self, url: str, lastmod: datetime | None = None) -> str | None:
        """Why not to fetch ``url`` again: "article", or the skip reason it got; None: fetch it.

        A known URL is fetched again when discovery reports a newer ``lastmod`` than last time.
        """
        row = self.db.execute(
            "SELECT lastmod, article_id, skip FROM seen WHERE url = ?", (canonicalize(url),)
        ).fetchone()
        if row is None or (lastmod and row[0] and lastmod > datetime.fromisoformat(row[0])):
            return None
        return "article" if row[1] else row[2] or "unknown"

    def _mark(
        self,
        db: sqlite3.Connection,
        urls: list[str],
        article_id: str | None,
        skip: str | None,
        lastmod: datetime | None,
    ) -> None:
        now = utcnow().isoformat()
        for url in dict.fromkeys(canonicalize(u) for u in urls):
            db.execute(
                "INSERT INTO seen (url, article_id, skip, lastmod, seen_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(url) DO UPDATE SET article_id = excluded.article_id, skip = excluded.skip, "
                "lastmod = COALESCE(excluded.lastmod, seen.lastmod), seen_at = excluded.seen_at",
                (url, article_id, skip, lastmod.isoformat() if lastmod else None, now),
            )

    def note_lastmods(self, announced: Mapping[str, datetime]) -> None:
        """Raise the lastmod of seen URLs to the newest one announced (never lower it)."""
        if not announced:
            return
        with self._tx() as db:
            for url, lastmod in announced.items():
                row = db.execute("SELECT lastmod FROM seen WHERE url = ?", (canonicalize(url),)).fetchone()
                if row is not None and (row[0] is None or lastmod > datetime.fromisoformat(row[0])):
                    db.execute(
                        "UPDATE seen SET lastmod = ? WHERE url = ?", (lastmod.isoformat(), canonicalize(url))
                    )

    def mark_skipped(self, urls: list[str], reason: str, lastmod: datetime | None = None) -> None:
        """Remember a page that is no article (list page, 404 ...) so it is not fetched again."""
        with self._tx() as db:
            self._mark(db, urls, None, reason, lastmod)

    def record(self, article: Article, urls: list[str], lastmod: datetime | None = None) -> str:
        """Mark the article's URLs seen and queue it for output if new or changed; returns its kind."""
        with self._tx() as db:
            row = db.execute("SELECT content_hash FROM articles WHERE id = ?", (article.id,)).fetchone()
            now = utcnow().isoformat()
            kind = NEW if row is None else UPDATED if row[0] != article.content_hash else UNCHANGED
            db.execute(
                "INSERT INTO articles (id, canonical_url, content_hash, first_seen, last_seen) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET content_hash = excluded.content_hash, "
                "last_seen = excluded.last_seen",
                (article.id, article.canonical_url, article.content_hash, now, now),
            )
            self._mark(db, [*urls, article.url, article.canonical_url], article.id, None, lastmod)
            if kind != UNCHANGED:
                db.execute(
                    "INSERT INTO outbox (kind, article) VALUES (?, ?)", (kind, article.model_dump_json())
                )
        return kind

    # ------------------------------------------------------------------ quiet feeds and sitemaps

    def quiet_runs(self, url: str) -> int:
        """How many runs in a row the configured feed or sitemap ``url`` brought no new article."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (_QUIET + url,)).fetchone()
        return int(row[0]) if row else 0

    def note_run(self, url: str, new_articles: int) -> int:
        """Count one more quiet run for ``url`` (reset by a run that brought news); the count."""
        count = 0 if new_articles else self.quiet_runs(url) + 1
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (_QUIET + url, str(count)))
        return count

    # ------------------------------------------------------------------ outbox

    def drain_outbox(self, out_file: Path) -> Counter[str]:
        """Append queued articles to ``out_file`` (fsynced), then drop them from the outbox.

        A crash between the fsync and the delete re-delivers those rows next time; the
        article id (a hash of the canonical URL) keeps that harmless downstream.
        """
        rows = self.db.execute("SELECT seq, kind, article FROM outbox ORDER BY seq").fetchall()
        counts: Counter[str] = Counter()
        out_file.parent.mkdir(parents=True, exist_ok=True)
        with out_file.open("a", encoding="utf-8") as fh:
            for _, kind, article in rows:
                fh.write(article + "\n")
                counts[kind] += 1
            fh.flush()
            os.fsync(fh.fileno())
        if rows:
            with self._tx() as db:
                db.execute("DELETE FROM outbox WHERE seq <= ?", (rows[-1][0],))
        return counts

    # ------------------------------------------------------------------ HTTP cache

    def prune(self, *, cached_before: float, skipped_before: datetime) -> tuple[int, int]:
        """Drop HTTP-cache entries stored before ``cached_before`` (epoch seconds) and the seen
        marks of skipped pages (no article) older than ``skipped_before``; how many of each."""
        with self._tx() as db:
            cache = db.execute("DELETE FROM http_cache WHERE stored < ?", (cached_before,)).rowcount
            # Marks are written as ``utcnow().isoformat()``: the same format compares as text.
            skipped = db.execute(
                "DELETE FROM seen WHERE article_id IS NULL AND seen_at < ?", (skipped_before.isoformat(),)
            ).rowcount
        return cache, skipped

    def cache_get(self, fingerprint: str) -> tuple[str, int, dict[str, list[str]], bytes, float] | None:
        row = self.db.execute(
            "SELECT url, status, headers, body, stored FROM http_cache WHERE fingerprint = ?", (fingerprint,)
        ).fetchone()
        if row is None:
            return None
        return row[0], row[1], json.loads(row[2]), row[3], row[4]

    def cache_put(
        self, fingerprint: str, url: str, status: int, headers: dict[str, list[str]], body: bytes
    ) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO http_cache (fingerprint, url, status, headers, body, stored) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (fingerprint, url, status, json.dumps(headers), body, time.time()),
        )


# ---------------------------------------------------------------------- locks


@contextmanager
def source_locks(
    data_dir: Path, names: list[str], *, wait: float = 0.0, poll: float = 1.0
) -> Iterator[tuple[dict[str, IO[str]], list[str]]]:
    """Lock the stores of the sources that no other crawl holds: yields ``({name: open lock
    file}, busy names)``. While *every* one is busy, tries again for up to ``wait`` seconds."""
    names = list(dict.fromkeys(names))
    deadline = time.monotonic() + wait
    held: dict[str, IO[str]] = {}
    try:
        while True:
            for name in names:
                if name not in held and (fh := try_lock(DataDir(data_dir).source_lock(name))) is not None:
                    held[name] = fh
            if held or time.monotonic() >= deadline:
                break
            time.sleep(poll)
        yield held, [n for n in names if n not in held]
    finally:
        for fh in held.values():
            fh.close()


@contextmanager
def source_lock(data_dir: Path, source: str) -> Iterator[None]:
    """Hold one source's crawl lock; NewsmonError if a crawl of that source holds it."""
    path = DataDir(data_dir).source_lock(source)
    with file_lock(path, busy=f"another crawl of {source} is running (lock {path})"):
        yield


def drain_outboxes(data_dir: Path, sources: list[str], out_file: Path) -> Counter[str]:
    """Deliver what the sources' stores hold in their outboxes (the caller holds their locks)."""
    delivered: Counter[str] = Counter()
    with ExitStack() as stack:
        for name in sources:
            store = CrawlStore(DataDir(data_dir).source_state(name))
            stack.callback(store.close)
            delivered += store.drain_outbox(out_file)
    return delivered


# ---------------------------------------------------------------------- the legacy single store


def retire_legacy_store(
    data_dir: Path, out_file: Path, *, wait: float = LEGACY_LOCK_WAIT_S
) -> Counter[str] | None:
    """Deliver the outbox of the single store older versions kept to ``out_file``, then move
    that store aside (``state.sqlite.legacy``); None when there is none.

    Under the data-dir lock those versions took, so it never overlaps one of their crawls,
    nor another crawl retiring it; a crash before the move re-runs it, and the drained
    outbox is empty by then, so every article is delivered once.
    """
    legacy = DataDir(data_dir).crawl_legacy_state
    if not legacy.exists():
        return None
    lock = DataDir(data_dir).crawl_lock
    busy = f"the old single crawl store {legacy} is in use (lock {lock}): a crawl by an older newsmon?"
    with file_lock(lock, timeout=wait, busy=busy):
        if not legacy.exists():  # another crawl retired it while this one waited
            return None
        store = CrawlStore(legacy)
        try:
            delivered = store.drain_outbox(out_file)
            # Fold the write-ahead log into the file: the file alone is then the whole store.
            store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            store.db.execute("PRAGMA journal_mode=DELETE")
        finally:
            store.close()
        os.replace(legacy, DataDir(data_dir).crawl_retired_state)
        for suffix in ("-wal", "-shm"):
            Path(f"{legacy}{suffix}").unlink(missing_ok=True)
    return delivered


def import_legacy(store: CrawlStore, legacy: Path, domains: list[str]) -> int | None:
    """Once per store: copy the seen URLs and content hashes on ``domains`` from the retired
    single store, so that the first crawl of a source after the upgrade neither fetches its
    archive again nor delivers it as new. The number of URLs taken; None: nothing to do."""
    if not legacy.exists() or store.db.execute("SELECT 1 FROM meta WHERE key = 'legacy_import'").fetchone():
        return None
    taken = 0
    try:
        old = sqlite3.connect(f"{legacy.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            with store._tx() as db:
                for row in old.execute("SELECT url, article_id, skip, lastmod, seen_at FROM seen"):
                    if on_domains(row[0], domains):
                        db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?, ?, ?, ?)", row)
                        taken += 1
                query = "SELECT id, canonical_url, content_hash, first_seen, last_seen FROM articles"
                for row in old.execute(query):
                    if on_domains(row[1], domains):
                        db.execute("INSERT OR IGNORE INTO articles VALUES (?, ?, ?, ?, ?)", row)
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('legacy_import', ?)", (utcnow().isoformat(),)
                )
        finally:
            old.close()
    except sqlite3.DatabaseError as exc:
        raise NewsmonError(
            f"retired crawl state {legacy} is unreadable ({exc}); delete it (sources then re-fetch "
            "what their feeds and sitemaps list once)"
        ) from None
    return taken


# ---------------------------------------------------------------------- HTTP cache for Scrapy


class SqliteCacheStorage:
    """Scrapy HTTPCACHE_STORAGE keeping responses in the crawl stores (atomic, unlike the file
    storage): each in the store of its request's source (``meta["source"]``; robots.txt,
    which has none, in that of the first of the crawl's sources whose domains it is on)."""

    def __init__(self, settings: BaseSettings) -> None:
        self._paths = {name: Path(path) for name, path in settings.getdict("NEWSMON_STORES").items()}
        self._stores: dict[str, CrawlStore] = {}
        self._domains: dict[str, list[str]] = {}

    def open_spider(self, spider: Spider) -> None:
        self._stores = {name: CrawlStore(path) for name, path in self._paths.items()}
        sources: Mapping[str, Source] = getattr(spider, "sources", {})
        self._domains = {name: sources[name].allowed_domains for name in self._stores if name in sources}
        self._fingerprinter = spider.crawler.request_fingerprinter

    def close_spider(self, spider: Spider) -> None:
        for store in self._stores.values():
            store.close()

    def _store(self, request: Request) -> CrawlStore | None:
        name = request.meta.get("source")
        if name not in self._stores:
            name = next((n for n, domains in self._domains.items() if on_domains(request.url, domains)), None)
        return self._stores.get(name) if name else None

    def retrieve_response(self, spider: Spider, request: Request) -> Response | None:
        from scrapy.http import Headers
        from scrapy.responsetypes import responsetypes

        store = self._store(request)
        found = store.cache_get(self._fingerprinter.fingerprint(request).hex()) if store else None
        if found is None:
            return None
        url, status, raw_headers, body, stored = found
        request.meta["cache_timestamp"] = stored
        headers = Headers({k: v for k, v in raw_headers.items()})
        cls = responsetypes.from_args(headers=headers, url=url, body=body)
        return cls(url=url, status=status, headers=headers, body=body)

    def store_response(self, spider: Spider, request: Request, response: Response) -> None:
        store = self._store(request)
        if store is None:
            return
        headers: dict[str, Any] = {
            k.decode("latin-1"): [v.decode("latin-1") for v in vs] for k, vs in response.headers.items()
        }
        store.cache_put(
            self._fingerprinter.fingerprint(request).hex(),
            response.url,
            response.status,
            headers,
            response.body,
        )
