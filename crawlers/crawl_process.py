"""Child-process entry point: ``python -m crawlers.crawl_process JOB.json``.

Twisted's reactor cannot be restarted within one process, so every crawl runs Scrapy in
a fresh child (see ``crawlers.run.crawl``). The job file holds the sources and the Scrapy
settings; the child writes Scrapy's stats to ``stats_file`` and prints progress on stdout.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from scrapy.crawler import CrawlerProcess

from newsmon.crawlers.registry import Source
from newsmon.crawlers.spiders.news import NewsSpider

# After the parent is gone: this long for a graceful stop (spider closed, stores committed),
# then the process exits regardless.
ORPHAN_GRACE_S = 5.0
ORPHAN_POLL_S = 0.5


def stop_with_parent(process: CrawlerProcess, parent_pid: int) -> threading.Thread:
    """Stop crawling once ``parent_pid`` is no longer our parent (killed, even by SIGKILL).

    The parent reads our progress and owns the inbox file; crawling on without it would only
    spend the sources' politeness budget and hold their locks. What was committed to the
    stores stays in their outboxes, and the next crawl of each source delivers it.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(ORPHAN_POLL_S)
        from twisted.internet import reactor

        reactor.callFromThread(process.stop)  # type: ignore[attr-defined]
        time.sleep(ORPHAN_GRACE_S)
        os._exit(1)

    watcher = threading.Thread(target=watch, name="newsmon-parent-watch", daemon=True)
    watcher.start()
    return watcher


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    sources = [Source.model_validate(s) for s in job["sources"]]
    process = CrawlerProcess(job["scrapy"])
    stop_with_parent(process, job["parent_pid"])
    crawler = process.create_crawler(NewsSpider)
    process.crawl(
        crawler,
        sources=sources,
        store_paths=job["stores"],
        since=datetime.fromisoformat(job["since"]) if job["since"] else None,
        feeds_only=job["feeds_only"],
    )
    process.start()
    stats = crawler.stats.get_stats() if crawler.stats else {}
    Path(job["stats_file"]).write_text(json.dumps(stats, default=str, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
