"""The crawl's persistent state: seen URLs, content hashes, an outbox of articles, an HTTP cache.

One sqlite file under ``settings.data_dir``. Crash safety comes from doing each article's
bookkeeping in a single transaction: the article row goes into the *outbox* in the same
commit that marks its URL seen, so a killed crawl can lose neither (no "seen but never
written") nor duplicate (no "written but not seen"). ``drain_outbox`` then moves committed
articles to the JSON-lines output file.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crawlers.urls import canonicalize
from newsmon.errors import NewsmonError
from newsmon.models import Article, utcnow

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.http import Response
    from scrapy.settings import BaseSettings

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
"""


def store_path(data_dir: Path) -> Path:
    return data_dir / "crawl" / "state.sqlite"


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


@contextmanager
def crawl_lock(data_dir: Path) -> Iterator[None]:
    """One crawl at a time per data dir: two would race on the outbox and the cache."""
    lock_file = data_dir / "crawl" / "crawl.lock"
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise NewsmonError(f"another crawl is running on {data_dir} (lock {lock_file})") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class SqliteCacheStorage:
    """Scrapy HTTPCACHE_STORAGE keeping responses in the crawl store (atomic, unlike the file storage)."""

    def __init__(self, settings: BaseSettings) -> None:
        self._path = Path(settings["NEWSMON_STORE"])
        self._store: CrawlStore | None = None

    def open_spider(self, spider: Spider) -> None:
        self._store = CrawlStore(self._path)
        self._fingerprinter = spider.crawler.request_fingerprinter

    def close_spider(self, spider: Spider) -> None:
        if self._store:
            self._store.close()

    def retrieve_response(self, spider: Spider, request: Request) -> Response | None:
        from scrapy.http import Headers
        from scrapy.responsetypes import responsetypes

        assert self._store is not None
        found = self._store.cache_get(self._fingerprinter.fingerprint(request).hex())
        if found is None:
            return None
        url, status, raw_headers, body, stored = found
        request.meta["cache_timestamp"] = stored
        headers = Headers({k: v for k, v in raw_headers.items()})
        cls = responsetypes.from_args(headers=headers, url=url, body=body)
        return cls(url=url, status=status, headers=headers, body=body)

    def store_response(self, spider: Spider, request: Request, response: Response) -> None:
        assert self._store is not None
        headers: dict[str, Any] = {
            k.decode("latin-1"): [v.decode("latin-1") for v in vs] for k, vs in response.headers.items()
        }
        self._store.cache_put(
            self._fingerprinter.fingerprint(request).hex(),
            response.url,
            response.status,
            headers,
            response.body,
        )
