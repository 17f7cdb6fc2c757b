"""Scrapy components that enforce newsmon's crawl policy (configured in ``crawlers.scrapy_settings``)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from scrapy.exceptions import IgnoreRequest
from scrapy.extensions.httpcache import RFC2616Policy
from scrapy.extensions.throttle import AutoThrottle
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.threads import deferToThread

from crawlers.urls import host_port, is_private_host

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request
    from scrapy.core.downloader import Slot
    from scrapy.crawler import Crawler
    from scrapy.http import Response


class BlockedRequest(IgnoreRequest):
    """A request refused by policy; ``reason`` is the skip key counted in the crawl stats."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class PrivateAddressGuard:
    """Refuse requests to loopback/private/link-local addresses (SSRF guard).

    Runs for every request, so it also catches redirects and links found on public
    pages. Hosts that a source is explicitly configured on (``NEWSMON_PRIVATE_ALLOWED``,
    host:port) stay allowed: the demo site and tests run on 127.0.0.1.
    """

    def __init__(self, allowed: set[str]) -> None:
        self.allowed = allowed

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(set(crawler.settings.getlist("NEWSMON_PRIVATE_ALLOWED")))

    def check(self, url: str) -> None:
        """Raise BlockedRequest if ``url`` leads to a private address that no source is configured on."""
        if host_port(url) in self.allowed:
            return
        host = urlsplit(url).hostname or ""
        if is_private_host(host):
            raise BlockedRequest("private_address", f"refused private/loopback address: {host}")

    async def process_request(self, request: Request) -> None:
        # Name resolution blocks, so the check runs in a thread (results are cached per host).
        await maybe_deferred_to_future(deferToThread(self.check, request.url))


class RevalidatePolicy(RFC2616Policy):
    """HTTP cache policy for feeds, sitemaps and list pages: always ask the server.

    Every cached copy is treated as stale, so each crawl sends If-None-Match /
    If-Modified-Since and a 304 answer is served from the cache. A cached copy is never
    trusted blindly: a feed's freshness heuristics could otherwise hide new articles.
    """

    def is_cached_response_fresh(self, cachedresponse: Response, request: Request) -> bool:
        self._set_conditional_validators(request, cachedresponse)
        return False


class SourceRateThrottle(AutoThrottle):
    """AutoThrottle that never lowers a slot's delay below the source's configured ``rate``."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        slots = crawler.settings.getdict("DOWNLOAD_SLOTS")
        self.floors = {key: float(conf.get("delay", 0)) for key, conf in slots.items()}

    def _adjust_delay(self, slot: Slot, latency: float, response: Response) -> None:
        super()._adjust_delay(slot, latency, response)
        key = response.request.meta.get("download_slot") if response.request else None
        slot.delay = max(slot.delay, self.floors.get(key or "", 0.0))
