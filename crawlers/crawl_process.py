"""Child-process entry point: ``python -m crawlers.crawl_process JOB.json``.

Twisted's reactor cannot be restarted within one process, so every crawl runs Scrapy in
a fresh child (see ``crawlers.run.crawl``). The job file holds the sources and the Scrapy
settings; the child writes Scrapy's stats to ``stats_file`` and prints progress on stdout.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

from scrapy.crawler import CrawlerProcess

from crawlers.registry import Source
from crawlers.spiders.news import NewsSpider


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    sources = [Source.model_validate(s) for s in job["sources"]]
    process = CrawlerProcess(job["scrapy"])
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
