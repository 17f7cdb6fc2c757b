"""Child-process entry point: ``python -m crawlers.crawl_process JOB.json``.

Twisted's reactor cannot be restarted within one process, so every crawl runs Scrapy in
a fresh child (see ``crawlers.run.crawl``). The job file holds the sources and the Scrapy
settings; the child writes Scrapy's stats to ``stats_file`` and prints progress on stdout.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path

from scrapy.crawler import CrawlerProcess

from newsmon.crawlers.registry import Source
from newsmon.crawlers.spiders.news import NewsSpider

# After the parent is gone: this long for a graceful stop (spider closed, stores committed),
# then the process exits regardless.
ORPHAN_GRACE_S = 5.0
ORPHAN_POLL_S = 0.5


def when_orphaned(parent_pid: int, action: Callable[[], None]) -> threading.Thread:
    """Run ``action`` in a daemon thread once ``parent_pid`` is no longer our parent (killed,
    even by SIGKILL)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(ORPHAN_POLL_S)
        action()

    watcher = threading.Thread(target=watch, name="newsmon-parent-watch", daemon=True)
    watcher.start()
    return watcher


def stop_with_parent(process: CrawlerProcess, parent_pid: int) -> threading.Thread:
    """Stop crawling once the parent is gone.

    The parent reads our progress and owns the inbox file; crawling on without it would only
    spend the sources' politeness budget and hold their locks. What was committed to the
    stores stays in their outboxes, and the next crawl of each source delivers it.
    """

    def stop() -> None:
        from twisted.internet import reactor

        reactor.callFromThread(process.stop)  # type: ignore[attr-defined]
        time.sleep(ORPHAN_GRACE_S)
        os._exit(1)

    return when_orphaned(parent_pid, stop)


def _extraction_worker_start(crawl_pid: int) -> None:
    # A worker holds copies of the crawl's descriptors (its source locks among them): it must
    # not outlive the crawl, which a SIGKILL gives no chance to shut its pool down.
    when_orphaned(crawl_pid, lambda: os._exit(1))


def start_extraction_pool(workers: int) -> ProcessPoolExecutor | None:
    """``workers`` processes that extract pages while this one downloads (None for 0).

    Forked at once, while this process has one thread (a fork copies only the calling thread,
    and any lock another thread held stays locked in the copy), and with every module
    already imported, so a worker starts in milliseconds.
    """
    if workers < 1:
        return None
    assert threading.active_count() == 1, "extraction workers must be forked before any thread starts"
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_extraction_worker_start,
        initargs=(os.getpid(),),
    )
    pool.submit(int).result()  # with "fork", the first task starts every worker
    return pool


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    sources = [Source.model_validate(s) for s in job["sources"]]
    process = CrawlerProcess(job["scrapy"])  # configures logging: the workers log to the crawl's log
    pool = start_extraction_pool(job["scrapy"].get("NEWSMON_EXTRACT_WORKERS", 0))  # before any thread
    stop_with_parent(process, job["parent_pid"])
    crawler = process.create_crawler(NewsSpider)
    process.crawl(
        crawler,
        sources=sources,
        store_paths=job["stores"],
        since=datetime.fromisoformat(job["since"]) if job["since"] else None,
        feeds_only=job["feeds_only"],
        extract_pool=pool,
    )
    process.start()
    if pool is not None:
        pool.shutdown()
    stats = crawler.stats.get_stats() if crawler.stats else {}
    Path(job["stats_file"]).write_text(json.dumps(stats, default=str, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
