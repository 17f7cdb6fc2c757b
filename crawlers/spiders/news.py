"""The one spider: discovers article URLs from each source's feeds, news sitemaps and list pages.

Discovery only; turning pages into articles is the item pipeline's job
(``crawlers.pipelines``). Already-seen URLs are not requested again. Each source has its
own crawl store (``self.stores``, by source name); every request carries its source's name
in ``meta["source"]``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from datetime import UTC, datetime
from typing import Any, TypeVar

from scrapy import Request, Spider
from scrapy.http import Response
from twisted.python.failure import Failure

from newsmon.crawlers.autodiscover import COMMON_FEEDS, COMMON_SITEMAPS, alternate_feeds, robots_sitemaps
from newsmon.crawlers.discover import DiscoveryError, Link, feed_links, list_links, sitemap_links
from newsmon.crawlers.extraction.dates import LANG_TZ
from newsmon.crawlers.outcomes import ERRORS, PERMANENT_SKIPS, SKIPPED, classify_failure, note, progress
from newsmon.crawlers.registry import Source
from newsmon.crawlers.store import open_store
from newsmon.crawlers.urls import canonicalize, on_domains, origin_of

T = TypeVar("T")
_NEVER = datetime.min.replace(tzinfo=UTC)


def _link_time(link: Link) -> datetime | None:
    return link.lastmod or link.published


# A sitemap index may point at sitemaps, which may be indexes again; stop somewhere.
MAX_SITEMAP_DEPTH = 3


class NewsSpider(Spider):
    name = "news"

    def __init__(
        self,
        sources: list[Source],
        store_paths: dict[str, str],
        since: datetime | None = None,
        feeds_only: bool = False,
        extract_pool: Executor | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.extract_pool = extract_pool  # None: pages are extracted in this process
        self.sources = {s.name: s for s in sources}
        self.since = since
        self.feeds_only = feeds_only
        self.stores = {s.name: open_store(store_paths[s.name]) for s in sources}
        # Canonical URL -> "requested" or why it was left alone, for URLs met earlier in this run
        # (feeds, sitemaps and list pages overlap).
        self._seen_now: dict[str, str] = {}
        self._sitemaps: set[str] = set()  # requested sitemaps, to catch indexes that point back
        # Newest lastmod each source announced per URL in this run. A URL first met on a list
        # page (no lastmod) is fetched before its sitemap entry is read; without this its seen
        # mark would keep no lastmod and a later, newer one could not be told apart.
        self._announced: dict[str, dict[str, datetime]] = {name: {} for name in self.sources}
        self._child_sitemaps: Counter[str] = Counter()  # per source, this run
        self._healing: set[str] = set()  # sources whose failed feed is being replaced, this run
        # Configured feeds and sitemaps read in this run (-> their source), and how many new or
        # updated article URLs each brought (child sitemaps count for their index): a quiet one
        # is re-discovered after NEWSMON_QUIET_RUNS runs in a row.
        self._read: dict[str, str] = {}
        self._fresh: Counter[str] = Counter()

    def closed(self, reason: str) -> None:
        for url, name in self._read.items():
            self.stores[name].note_run(url, self._fresh[url])
        for name, store in self.stores.items():
            store.note_lastmods(self._announced[name])
            store.close()

    async def start(self) -> AsyncIterator[Request]:
        quiet_after = self.settings.getint("NEWSMON_QUIET_RUNS")
        for source in self.sources.values():
            configured = [(url, self.parse_feed, "feed") for url in source.feeds]
            if not self.feeds_only:
                configured += [(url, self.parse_sitemap, "sitemap") for url in source.sitemaps]
            for url, parse, kind in configured:
                request = self._discovery(url, source, parse)
                request.meta["origin"] = url
                yield request
                if (quiet := self.stores[source.name].quiet_runs(url)) >= quiet_after:
                    for heal in self._heal(source, url, f"{kind} quiet for {quiet} runs"):
                        yield heal  # no ``yield from`` in an async generator
            if self.feeds_only:
                continue
            for url in source.list_pages:
                yield self._discovery(url, source, self.parse_list)

    def _discovery(self, url: str, source: Source, callback: Any, depth: int = 0) -> Request:
        if callback == self.parse_sitemap:
            self._sitemaps.add(url)
        return Request(
            url,
            callback=callback,
            errback=self.on_error,
            priority=10,
            meta={"source": source.name, "kind": "discovery", "sitemap_depth": depth},
        )

    # ------------------------------------------------------------------ discovery

    def _parse(self, response: Response, parse: Callable[[], T]) -> T | None:
        """Run a discovery parser; a broken feed, sitemap or page is a counted skip."""
        try:
            return parse()
        except DiscoveryError as exc:
            note(self.crawler.stats, SKIPPED, exc.reason, response.url, exc.detail[:120])
            return None

    def parse_feed(self, response: Response) -> Iterator[Request]:
        source = self.sources[response.meta["source"]]
        links = self._parse(response, lambda: feed_links(response.body, response.url)) or []
        progress(f"feed {response.url}: {len(links)} links")
        failed, origin = response.meta.get("healing"), response.meta.get("origin")
        if not links:
            if failed is None:
                yield from self._heal(source, origin or response.url, "feed failed")
            return
        if origin is not None:
            self._read[origin] = source.name
        self._record_healed(response)
        for link in links:
            yield from self._article(link, source, announced=True, origin=origin)

    # ------------------------------------------------------------------ healing a failed feed

    def _heal(self, source: Source, failed: str, why: str) -> Iterator[Request]:
        """A configured feed or sitemap failed (an HTTP error, nothing readable there) or brought
        nothing new for NEWSMON_QUIET_RUNS runs (``why`` says which): look for the feeds the
        outlet's homepage advertises and the sitemaps its robots.txt names, once per source and
        run, at the source's own pace."""
        if source.homepage is None or source.name in self._healing:
            return
        self._healing.add(source.name)
        progress(f"{why}: {failed}: looking for feeds on {source.homepage}")
        yield Request(
            source.homepage,
            callback=self.heal_from_homepage,
            errback=self.on_error,
            dont_filter=True,
            priority=10,
            meta={"source": source.name, "kind": "discovery", "healing": failed, "healing_why": why},
        )

    def heal_from_homepage(self, response: Response) -> Iterator[Request]:
        """The feeds the homepage advertises (else the common feed paths), and robots.txt for
        the sitemaps it names."""
        source = self.sources[response.meta["source"]]
        origin = origin_of(response.url)
        advertised = [url for url in alternate_feeds(response.body, response.url) if url not in source.feeds]
        candidates = advertised or [
            origin + path for path in COMMON_FEEDS if origin + path not in source.feeds
        ]
        for url in dict.fromkeys(candidates):
            yield self._healing_request(url, source, self.parse_feed, response.meta)
        robots = self._healing_request(origin + "/robots.txt", source, self.heal_from_robots, response.meta)
        robots.meta["handle_httpstatus_list"] = [404, 410]  # no robots.txt: try the common paths
        yield robots

    def heal_from_robots(self, response: Response) -> Iterator[Request]:
        source = self.sources[response.meta["source"]]
        origin = origin_of(response.url)
        advertised = robots_sitemaps(response.text if response.status == 200 else "", origin)
        candidates = [
            url
            for url in advertised or [origin + path for path in COMMON_SITEMAPS]
            if url not in source.sitemaps
        ]
        for url in dict.fromkeys(candidates):
            yield self._healing_request(url, source, self.parse_sitemap, response.meta)

    def _healing_request(
        self, url: str, source: Source, callback: Callable[[Response], Any], meta: dict[str, Any]
    ) -> Request:
        """A discovery request on behalf of the failed feed or sitemap named in ``meta``."""
        request = self._discovery(url, source, callback)
        request.meta["healing"] = meta["healing"]
        request.meta["healing_why"] = meta["healing_why"]
        return request

    def _record_healed(self, response: Response) -> None:
        """A healing feed or sitemap brought links: the first to do so replaces the failed URL
        in the run's summary."""
        failed = response.meta.get("healing")
        if failed is None or f"newsmon/healed/{failed}" in self.crawler.stats.get_stats():
            return
        why = response.meta["healing_why"]
        self.crawler.stats.set_value(f"newsmon/healed/{failed}", response.url)
        self.crawler.stats.set_value(f"newsmon/healed_why/{failed}", why)
        progress(f"healed: {why}: {failed}; {response.url} (found from the homepage) works")

    def parse_list(self, response: Response) -> Iterator[Request]:
        source = self.sources[response.meta["source"]]
        links = (
            self._parse(response, lambda: list_links(response.body, response.url, source.article_pattern))
            or []
        )
        progress(f"list {response.url}: {len(links)} links")
        pattern = re.compile(source.article_pattern) if source.article_pattern else None
        for link in links:
            yield from self._article(link, source, announced=bool(pattern and pattern.search(link.url)))

    def parse_sitemap(self, response: Response) -> Iterator[Request]:
        source = self.sources[response.meta["source"]]
        tz, max_size = LANG_TZ.get(source.lang, UTC), self.settings.getint("DOWNLOAD_MAXSIZE")
        sitemap = self._parse(response, lambda: sitemap_links(response.body, response.url, tz, max_size))
        depth, origin = response.meta.get("sitemap_depth", 0), response.meta.get("origin")
        if sitemap is None or not sitemap.links:
            if depth == 0:
                yield from self._heal(source, origin or response.url, "sitemap failed")
            return
        progress(f"sitemap {response.url}: {len(sitemap.links)} links")
        if origin is not None:
            self._read[origin] = source.name
        self._record_healed(response)
        if not sitemap.is_index:
            for link in self._within_budget(sitemap.links, "NEWSMON_MAX_SITEMAP_URLS", response.url):
                yield from self._article(link, source, announced=True, origin=origin)
            return
        budget = self.settings.getint("NEWSMON_MAX_CHILD_SITEMAPS")
        for link in sitemap.links:
            if self._child_sitemaps[source.name] >= budget:
                self._over_budget("sitemap_budget", response.url, sitemap.links, link)
                return
            if link.url in self._sitemaps:
                note(self.crawler.stats, SKIPPED, "sitemap_loop", link.url)
            elif depth >= MAX_SITEMAP_DEPTH:
                note(self.crawler.stats, SKIPPED, "sitemap_depth", link.url)
            elif self.since and link.lastmod and link.lastmod < self.since:
                note(self.crawler.stats, SKIPPED, "before_since", link.url)
            else:
                self._child_sitemaps[source.name] += 1
                child = self._discovery(link.url, source, self.parse_sitemap, depth + 1)
                child.meta["origin"] = origin
                yield child

    def _within_budget(self, links: list[Link], setting: str, where: str) -> list[Link]:
        """The newest ``setting`` links (undated ones last); the rest are counted, not fetched."""
        budget = self.settings.getint(setting)
        if len(links) <= budget:
            return links
        newest = sorted(links, key=lambda link: _link_time(link) or _NEVER, reverse=True)
        self._over_budget("sitemap_url_budget", where, newest, newest[budget])
        return newest[:budget]

    def _over_budget(self, reason: str, where: str, links: list[Link], first_left: Link) -> None:
        """Count every link from ``first_left`` on as skipped for ``reason``, in one log line."""
        left = len(links) - links.index(first_left)
        self.crawler.stats.inc_value(f"newsmon/{SKIPPED}/{reason}", left - 1)
        note(self.crawler.stats, SKIPPED, reason, where, f"{left} entries left out")

    def _article(
        self, link: Link, source: Source, *, announced: bool, origin: str | None = None
    ) -> Iterator[Request]:
        """A request for an article page. ``announced``: a feed, a sitemap or the source's
        article pattern vouches that it is an article (extraction then drops it for nothing).
        ``origin``: the configured feed or sitemap it came from, credited when the URL is new."""
        url, published, lastmod = link.url, link.published, link.lastmod
        if not on_domains(url, source.allowed_domains):
            note(self.crawler.stats, SKIPPED, "offsite", url)
            return
        if self.since and published and published < self.since:
            self.crawler.stats.inc_value(f"newsmon/{SKIPPED}/before_since")
            return
        key = canonicalize(url, source.homepage)
        announced = self._announced[source.name]
        if lastmod is not None and (url not in announced or lastmod > announced[url]):
            announced[url] = lastmod
        previous = self._seen_now.get(key)
        known = None if previous == "requested" else self.stores[source.name].known(url, lastmod)
        if origin is not None and known is None:
            self._fresh[origin] += 1
        if previous == "requested":
            return
        if known is not None and previous is not None:
            return  # already counted as known by an earlier feed or sitemap entry
        if previous is not None:
            # An earlier entry left this URL alone; this one announces a newer version.
            self.crawler.stats.inc_value(self._known_stat(previous), -1)
        self._seen_now[key] = known or "requested"
        if known is not None:
            self.crawler.stats.inc_value(self._known_stat(known))
            return
        yield Request(
            url,
            callback=self.parse_article,
            errback=self.on_error,
            # Deduplication is ours (_seen_now); Scrapy's filter would silently swallow a redirect loop.
            dont_filter=True,
            meta={
                "source": source.name,
                "kind": "article",
                "lastmod": lastmod,
                "announced": announced,
                "dont_cache": True,
            },
        )

    @staticmethod
    def _known_stat(known: str) -> str:
        return "newsmon/articles/unchanged" if known == "article" else f"newsmon/{SKIPPED}/known_{known}"

    # ------------------------------------------------------------------ pages

    def parse_article(self, response: Response) -> Iterator[dict[str, Any]]:
        yield {
            "url": response.url,
            # The discovered URL and any redirect hops: all of them count as seen.
            "request_urls": [*response.meta.get("redirect_urls", []), response.url],
            "body": response.body,
            "content_type": (response.headers.get("Content-Type") or b"").decode("latin-1"),
            "source": response.meta["source"],
            "lastmod": response.meta.get("lastmod"),
            "announced": response.meta.get("announced", False),
            "fetched": datetime.now(UTC),
        }

    def on_error(self, failure: Failure) -> Iterator[Request]:
        request = failure.request  # type: ignore[attr-defined]
        bucket, reason = classify_failure(failure)
        note(
            self.crawler.stats,
            bucket,
            reason,
            request.url,
            str(failure.value)[:120] if bucket == ERRORS else "",
        )
        if request.meta.get("kind") == "article" and bucket == SKIPPED and reason in PERMANENT_SKIPS:
            self.stores[request.meta["source"]].mark_skipped(
                [request.url, *request.meta.get("redirect_urls", [])], reason, request.meta.get("lastmod")
            )
        if (origin := request.meta.get("origin")) and request.meta.get("sitemap_depth") == 0:
            kind = "feed" if request.callback == self.parse_feed else "sitemap"
            yield from self._heal(self.sources[request.meta["source"]], origin, f"{kind} failed")
