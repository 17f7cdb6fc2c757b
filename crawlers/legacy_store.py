"""The single crawl store of older versions (``crawl/state.sqlite``, embedded state only).

Before per-source stores there was one store for all sources: ``retire_legacy_store``
delivers its outbox and moves it aside, and a source's new store takes that source's seen URLs
and content hashes from it (``import_legacy``).
"""

from __future__ import annotations

import os
import sqlite3
from collections import Counter
from pathlib import Path

from newsmon.crawlers.store import ARTICLES, META, SEEN, CrawlStore
from newsmon.crawlers.urls import on_domains
from newsmon.errors import NewsmonError
from newsmon.layout import DataDir
from newsmon.locks import file_lock
from newsmon.models import utcnow

# How long a crawl waits for another one that is retiring the legacy store (a quick job).
LEGACY_LOCK_WAIT_S = 120.0


def retire_legacy_store(
    data_dir: Path, out_file: Path | None, *, wait: float = LEGACY_LOCK_WAIT_S
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
        finally:
            store.close()
        # Fold the write-ahead log into the file: the file alone is then the whole store.
        with sqlite3.connect(legacy, timeout=30) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.execute("PRAGMA journal_mode=DELETE")
        db.close()
        os.replace(legacy, DataDir(data_dir).crawl_retired_state)
        for suffix in ("-wal", "-shm"):
            Path(f"{legacy}{suffix}").unlink(missing_ok=True)
    return delivered


def import_legacy(store: CrawlStore, legacy: Path, domains: list[str]) -> int | None:
    """Once per store: copy the seen URLs and content hashes on ``domains`` from the retired
    single store, so that the first crawl of a source after the upgrade neither fetches its
    archive again nor delivers it as new. The number of URLs taken; None: nothing to do."""
    if not legacy.exists() or store.has_meta("legacy_import"):
        return None
    try:
        old = sqlite3.connect(f"{legacy.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            seen_columns = ["url", "article_id", "skip", "lastmod", "seen_at"]
            seen = [
                dict(zip(seen_columns, row, strict=True))
                for row in old.execute(f"SELECT {', '.join(seen_columns)} FROM seen")
                if on_domains(row[0], domains)
            ]
            columns = ["id", "canonical_url", "content_hash", "first_seen", "last_seen"]
            articles = [
                dict(zip(columns, row, strict=True))
                for row in old.execute(f"SELECT {', '.join(columns)} FROM articles")
                if on_domains(row[1], domains)
            ]
            with store.tx() as conn:  # all of it, and the mark that it was done, or nothing
                taken = store.add_rows(conn, SEEN, seen)
                store.add_rows(conn, ARTICLES, articles)
                store.add_rows(conn, META, [{"key": "legacy_import", "value": utcnow().isoformat()}])
        finally:
            old.close()
    except sqlite3.DatabaseError as exc:
        raise NewsmonError(
            f"retired crawl state {legacy} is unreadable ({exc}); delete it (sources then re-fetch "
            "what their feeds and sitemaps list once)"
        ) from None
    return taken
