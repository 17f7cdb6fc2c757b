"""Scrapy components that enforce newsmon's crawl policy (configured in ``crawlers.scrapy_settings``)."""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from scrapy.exceptions import IgnoreRequest
from scrapy.extensions.httpcache import RFC2616Policy
from scrapy.extensions.throttle import AutoThrottle
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.threads import deferToThread

from newsmon.crawlers.urls import host_port, is_private_host

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


class StrictGunzip:
    """Decodes ``Content-Encoding: gzip`` bodies itself, and strictly.

    Scrapy's own decoder returns whatever prefix it could inflate, so a truncated or junk
    stream became a garbled "article". Here a stream that does not end cleanly is a counted
    skip (``broken_gzip``), and inflating past DOWNLOAD_MAXSIZE is ``too_large``. It runs just
    before Scrapy's HttpCompressionMiddleware, which then sees a plain body (other encodings
    are left to it).
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler.settings.getint("DOWNLOAD_MAXSIZE"))

    def process_response(self, request: Request, response: Response, spider: object = None) -> Response:
        encodings = [e.strip().lower() for e in response.headers.getlist("Content-Encoding")]
        if encodings not in ([b"gzip"], [b"x-gzip"]) or request.method == "HEAD" or not response.body:
            return response
        try:
            body = gunzip_strict(response.body, self.max_size)
        except (zlib.error, EOFError) as exc:
            raise BlockedRequest("broken_gzip", f"broken gzip body: {exc}") from None
        except OverflowError:
            raise BlockedRequest("too_large", f"gzip body inflates past {self.max_size} B") from None
        headers = response.headers.copy()
        del headers["Content-Encoding"]
        return response.replace(body=body, headers=headers)


def gunzip_strict(data: bytes, max_size: int) -> bytes:
    """Inflate one gzip stream, at most ``max_size`` bytes; EOFError if it is cut short."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    out = bytearray()
    while data:
        out += inflater.decompress(data, max_size + 1 - len(out))
        if len(out) > max_size:
            raise OverflowError(len(out))
        data = inflater.unconsumed_tail
    if not inflater.eof:
        raise EOFError("the gzip stream ends before its end marker")
    return bytes(out)
