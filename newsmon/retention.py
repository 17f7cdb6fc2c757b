"""Housekeeping of the data dir: what may go, what must be kept and only reported.

* ``inbox/*.jsonl.part``: output of a crawl that died before renaming it. The crawl state
  already marks those articles seen, so deleting the file would lose them; each one that no
  live crawl holds (its lock) is renamed to ``.jsonl`` and gets analysed and indexed.
* ``inbox/*.jsonl`` and ``spool/*.jsonl``: articles waiting to be indexed. Never deleted;
  old ones are reported (a file that keeps failing, or Elasticsearch down for days), and so
  are articles waiting that long in the shared inbox queue (``NEWSMON_STATE_URL``).
* ``deadletter/*.jsonl``: articles Elasticsearch rejected for good; deleted after
  ``deadletter_days``.
* crawl state (``crawl/sources/<name>/state.sqlite``, one per source): HTTP-cache entries
  and "not an article" marks older than their limits are pruned, so a page that was a 404
  is looked at again one day. Seen articles stay: they are what keeps a re-crawl from
  re-fetching the archive. A source being crawled keeps its lock and is left alone.
  (Crawl run folders, ``crawl/runs``, are bounded by the crawls themselves.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from newsmon.crawlers.store import CrawlStore, open_store, source_lock_at, store_location, stored_sources
from newsmon.inbox import queued
from newsmon.locks import is_same_file, try_hold, try_lock
from newsmon.settings import Settings

DAY_S = 86_400.0
# A .part this young is left alone even when unlocked: its crawl may be about to lock it.
PART_GRACE_S = 300.0


@dataclass(frozen=True)
class RetentionPolicy:
    deadletter_days: float = 90
    http_cache_days: float = 30
    skipped_page_days: float = 90
    stale_days: float = 2  # inbox/spool files older than this are reported


@dataclass
class RetentionStats:
    salvaged_parts: list[str] = field(default_factory=list)
    deleted_deadletters: list[str] = field(default_factory=list)
    pruned_http_cache: int = 0
    pruned_skipped_pages: int = 0
    stale_inbox: list[str] = field(default_factory=list)
    stale_spool: list[str] = field(default_factory=list)
    stale_queued: int = 0  # articles in the shared inbox queue (NEWSMON_STATE_URL) for days
    crawl_busy: bool = False  # some .part or source store was in use by a crawl and left alone
    busy_sources: list[str] = field(default_factory=list)  # their stores were not pruned

    def problems(self) -> list[str]:
        """Lines an operator should read (nothing that cleaned itself up)."""
        queue = [f"{self.stale_queued} articles in the shared inbox queue not indexed for days"]
        return (
            [f"inbox file not indexed for days: {name}" for name in self.stale_inbox]
            + (queue if self.stale_queued else [])
            + [
                f"spool file not replayed for days (Elasticsearch unreachable?): {name}"
                for name in self.stale_spool
            ]
        )


def _files(folder: Path, pattern: str, older_than_days: float = 0, now: float = 0) -> list[Path]:
    """Matching files, oldest name first; with ``older_than_days``, only those not modified since."""
    found = sorted(folder.glob(pattern)) if folder.is_dir() else []
    if older_than_days:
        found = [p for p in found if now - p.stat().st_mtime > older_than_days * DAY_S]
    return found


def cleanup(
    settings: Settings, policy: RetentionPolicy | None = None, *, now: float | None = None
) -> RetentionStats:
    """Apply ``policy`` to ``settings.data_dir``; safe to run at any time, also during a crawl."""
    policy = policy or RetentionPolicy()
    now = time.time() if now is None else now
    data = settings.data_dir
    stats = RetentionStats()

    for path in _files(settings.layout.deadletter, "*.jsonl", policy.deadletter_days, now):
        path.unlink(missing_ok=True)
        stats.deleted_deadletters.append(path.name)
    stats.stale_inbox = [p.name for p in _files(settings.layout.inbox, "*.jsonl", policy.stale_days, now)]
    stats.stale_spool = [p.name for p in _files(settings.layout.spool, "*.jsonl", policy.stale_days, now)]
    if settings.state_url:
        stale = datetime.fromtimestamp(now - policy.stale_days * DAY_S, UTC)
        stats.stale_queued = queued(settings.state_url, before=stale)

    for part in _files(settings.layout.inbox, "*.jsonl.part"):
        try:
            if now - part.stat().st_mtime < PART_GRACE_S:
                continue
        except FileNotFoundError:  # its crawl just ended
            continue
        fh = try_lock(part, create=False)
        if fh is None:  # a live crawl writes it (or it is gone: renamed when that crawl ended)
            stats.crawl_busy |= part.exists()
            continue
        try:
            if is_same_file(part, fh):  # not renamed by its crawl while this waited for the lock
                part.rename(part.with_suffix(""))  # x.jsonl.part -> x.jsonl
                stats.salvaged_parts.append(part.name)
        finally:
            fh.close()

    url = settings.state_url
    for name in stored_sources(data, url):
        fh = try_hold(source_lock_at(data, url, name))
        if fh is None:  # being crawled: the crawl writes its state
            stats.crawl_busy = True
            stats.busy_sources.append(name)
            continue
        try:
            _prune_crawl_state(open_store(store_location(data, url, name), url), policy, now, stats)
        finally:
            fh.close()
    return stats


def _prune_crawl_state(store: CrawlStore, policy: RetentionPolicy, now: float, stats: RetentionStats) -> None:
    try:
        cache, skipped = store.prune(
            cached_before=now - policy.http_cache_days * DAY_S,
            skipped_before=datetime.fromtimestamp(now - policy.skipped_page_days * DAY_S, UTC),
        )
        stats.pruned_http_cache += cache
        stats.pruned_skipped_pages += skipped
    finally:
        store.close()
