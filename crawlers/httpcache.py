"""Scrapy's HTTP cache in the crawl stores (``HTTPCACHE_STORAGE``): feeds, sitemaps and list
pages, for conditional GETs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from newsmon.crawlers.store import CrawlStore, open_store
from newsmon.crawlers.urls import on_domains

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.http import Response
    from scrapy.settings import BaseSettings

    from newsmon.crawlers.registry import Source


class StoreCacheStorage:
    """Scrapy HTTPCACHE_STORAGE keeping responses in the crawl stores (atomic, unlike the file
    storage): each in the store of its request's source (``meta["source"]``; robots.txt,
    which has none, in that of the first of the crawl's sources whose domains it is on)."""

    def __init__(self, settings: BaseSettings) -> None:
        self._locations: dict[str, str] = settings.getdict("NEWSMON_STORES")
        self._stores: dict[str, CrawlStore] = {}
        self._domains: dict[str, list[str]] = {}

    def open_spider(self, spider: Spider) -> None:
        self._stores = {name: open_store(location) for name, location in self._locations.items()}
        sources: Mapping[str, Source] = getattr(spider, "sources", {})
        self._domains = {name: sources[name].allowed_domains for name in self._stores if name in sources}
        self._fingerprinter = spider.crawler.request_fingerprinter

    def close_spider(self, spider: Spider) -> None:
        for store in self._stores.values():
            store.close()

    def _store(self, request: Request) -> CrawlStore | None:
        name = request.meta.get("source")
        if name not in self._stores:
            name = next((n for n, domains in self._domains.items() if on_domains(request.url, domains)), None)
        return self._stores.get(name) if name else None

    def retrieve_response(self, spider: Spider, request: Request) -> Response | None:
        from scrapy.http import Headers
        from scrapy.responsetypes import responsetypes

        store = self._store(request)
        found = store.cache_get(self._fingerprinter.fingerprint(request).hex()) if store else None
        if found is None:
            return None
        url, status, raw_headers, body, stored = found
        request.meta["cache_timestamp"] = stored
        headers = Headers({k: v for k, v in raw_headers.items()})
        cls = responsetypes.from_args(headers=headers, url=url, body=body)
        return cls(url=url, status=status, headers=headers, body=body)

    def store_response(self, spider: Spider, request: Request, response: Response) -> None:
        store = self._store(request)
        if store is None:
            return
        headers: dict[str, Any] = {
            k.decode("latin-1"): [v.decode("latin-1") for v in vs] for k, vs in response.headers.items()
        }
        store.cache_put(
            self._fingerprinter.fingerprint(request).hex(),
            response.url,
            response.status,
            headers,
            response.body,
        )
