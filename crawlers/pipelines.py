"""Item pipeline: fetched page -> ``Article`` -> its source's crawl store (seen mark + outbox,
one transaction)."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import DropItem

from newsmon.crawlers.extract import ExtractResult, extract_article
from newsmon.crawlers.outcomes import ERRORS, PERMANENT_SKIPS, SKIPPED, note, progress

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler

_TEXTUAL = ("html", "xml", "text/plain")
log = logging.getLogger(__name__)


class ArticlePipeline:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    async def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        spider = self.crawler.spider
        stats = self.crawler.stats
        assert spider is not None and stats is not None
        source, store = spider.sources[item["source"]], spider.stores[item["source"]]
        url, ctype = item["url"], item["content_type"].lower()
        if ctype and not any(t in ctype for t in _TEXTUAL):
            result_skip, detail = "not_html", ctype
        else:
            result = await self._extract(
                item["body"],
                url,
                source,
                item["fetched"],
                content_type=ctype or None,
                announced=item.get("announced", False),
            )
            result_skip, detail = result.skip, result.detail
            if result.article is not None:
                article = result.article
                since = spider.since
                if since and article.published and article.published < since:
                    # Not remembered as seen: a later run with an older --since must still get it.
                    stats.inc_value(f"newsmon/{SKIPPED}/before_since")
                    raise DropItem(f"before --since: {url}", log_level="DEBUG")
                kind = store.record(article, item["request_urls"], item["lastmod"])
                stats.inc_value(f"newsmon/articles/{kind}")
                progress(f"{kind} {url} {article.title[:60]}")
                return {"id": article.id, "kind": kind}
        note(stats, SKIPPED, result_skip or "unknown", url, detail)
        if result_skip in PERMANENT_SKIPS:
            store.mark_skipped(item["request_urls"], result_skip or "", item["lastmod"])
        raise DropItem(f"{result_skip}: {url}", log_level="DEBUG")

    async def _extract(self, *args: Any, **kwargs: Any) -> ExtractResult:
        """``extract_article(...)`` in the spider's extraction pool, so that downloads go on
        meanwhile; in this process when there is none, or when it broke (a worker died):
        the page and the ones queued behind it are extracted here instead, not lost."""
        spider = self.crawler.spider
        pool = getattr(spider, "extract_pool", None)
        if pool is not None:
            try:
                return await asyncio.wrap_future(pool.submit(extract_article, *args, **kwargs))
            except BrokenProcessPool:
                if spider.extract_pool is pool:
                    log.warning("the extraction pool broke (a worker died); extracting in the crawl process")
                    spider.extract_pool = None
                    assert self.crawler.stats is not None
                    self.crawler.stats.inc_value(f"newsmon/{ERRORS}/extract_pool_broken")
        return extract_article(*args, **kwargs)
