"""Scrapy settings for a newsmon crawl: politeness, safety limits, caching, our components."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from newsmon.crawlers.registry import Source
from newsmon.crawlers.urls import host_port, is_private_host
from newsmon.settings import Settings

MAX_PAGE_BYTES = 5 * 1024 * 1024


def extract_workers(configured: int) -> int:
    """Extraction processes for a crawl: ``configured``, or for -1 one per core beyond the first (max 4)."""
    return configured if configured >= 0 else min(4, (os.cpu_count() or 1) - 1)


def scrapy_settings(
    sources: list[Source], settings: Settings, stores: dict[str, str], log_file: Path
) -> dict[str, Any]:
    # Sources configured on loopback/private hosts (demo site, tests) are allowed there explicitly;
    # anything else that leads to such an address is refused by PrivateAddressGuard.
    local = {url for s in sources for url in s.start_urls if is_private_host(urlsplit(url).hostname or "")}
    # Local servers need no politeness delay (download slots are keyed by host name) ...
    slots: dict[str, dict[str, Any]] = {urlsplit(url).hostname or "": {"delay": 0.0} for url in local}
    # ... and a source's `rate` (requests/s) becomes a minimum delay on the slots of its domains.
    slots |= {
        domain: {"delay": 1.0 / s.rate, "concurrency": 1}
        for s in sources
        if s.rate
        for domain in s.allowed_domains
    }
    return {
        "BOT_NAME": "newsmon",
        "USER_AGENT": settings.user_agent,
        "ROBOTSTXT_OBEY": True,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,  # no listening ports in a crawler
        # Scrapy re-reads and re-parses a callback's source on every response to warn about a
        # generator's return value (its cache is keyed on bound methods, which die at once):
        # ~1 ms a page. Our callbacks return nothing.
        "WARN_ON_GENERATOR_RETURN_VALUE": False,
        "CONCURRENT_REQUESTS": 16,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 2,
        "DOWNLOAD_SLOTS": slots,
        "DOWNLOAD_TIMEOUT": settings.crawl_page_timeout,
        "DOWNLOAD_MAXSIZE": MAX_PAGE_BYTES,
        "DOWNLOAD_WARNSIZE": MAX_PAGE_BYTES // 2,
        "RETRY_ENABLED": True,
        "RETRY_TIMES": 1,  # a page that timed out costs at most two DOWNLOAD_TIMEOUTs
        # The run's wall-time budget: the spider closes (its stores committed) when it is spent.
        "CLOSESPIDER_TIMEOUT": settings.crawl_max_seconds,
        "NEWSMON_MAX_CHILD_SITEMAPS": settings.crawl_max_child_sitemaps,
        "NEWSMON_MAX_SITEMAP_URLS": settings.crawl_max_sitemap_urls,
        "NEWSMON_QUIET_RUNS": settings.crawl_quiet_runs,
        "NEWSMON_EXTRACT_WORKERS": extract_workers(settings.crawl_extract_workers),
        "RETRY_HTTP_CODES": [429, 500, 502, 503, 504, 522, 524, 408],
        "REDIRECT_MAX_TIMES": 5,
        "AUTOTHROTTLE_ENABLED": True,  # as SourceRateThrottle, which replaces the stock extension
        "AUTOTHROTTLE_START_DELAY": 1.0,
        "AUTOTHROTTLE_MAX_DELAY": 30.0,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 1.0,
        "EXTENSIONS": {
            "scrapy.extensions.throttle.AutoThrottle": None,
            "newsmon.crawlers.middlewares.SourceRateThrottle": 0,
        },
        "DOWNLOADER_MIDDLEWARES": {
            "newsmon.crawlers.middlewares.PrivateAddressGuard": 50,
            # Just above Scrapy's HttpCompressionMiddleware (590): sees the raw body first.
            "newsmon.crawlers.middlewares.StrictGunzip": 595,
        },
        "ITEM_PIPELINES": {"newsmon.crawlers.pipelines.ArticlePipeline": 300},
        "NEWSMON_PRIVATE_ALLOWED": sorted({host_port(url) for url in local}),
        "NEWSMON_STORES": stores,  # by source name: crawlers.store.store_location
        # Conditional GET for feeds, sitemaps and list pages (articles carry dont_cache).
        "HTTPCACHE_ENABLED": True,
        "HTTPCACHE_POLICY": "newsmon.crawlers.middlewares.RevalidatePolicy",
        "HTTPCACHE_STORAGE": "newsmon.crawlers.httpcache.StoreCacheStorage",
        "LOG_LEVEL": "INFO",
        "LOG_FILE": str(log_file),
        "LOG_FILE_APPEND": False,
    }
