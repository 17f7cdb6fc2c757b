"""``check_sources``: is each registry entry still right? (behind ``newsmon sources check``)

For every feed, sitemap and list page of a source: HTTP status and links found; then one
sample article (the newest link) run through the extractor: title, body, date. Plain
sequential urllib requests, obeying robots.txt and the source's rate: this is a manual
health check, run by someone with internet access, not a crawl.
"""

from __future__ import annotations

import gzip
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import urlsplit

from protego import Protego

from newsmon.crawlers.discover import DiscoveryError, Link, feed_links, list_links, sitemap_links
from newsmon.crawlers.extract import extract_article
from newsmon.crawlers.extraction.dates import LANG_TZ
from newsmon.crawlers.registry import Source
from newsmon.crawlers.scrapy_settings import MAX_PAGE_BYTES
from newsmon.settings import Settings

TIMEOUT_S = 20
SAMPLE_TRIES = 3  # links tried until one is an article (feeds sometimes lead with hub pages)


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    status: int | None  # None: no HTTP response at all
    body: bytes = b""
    content_type: str = ""
    error: str = ""


Fetcher = Callable[[str], Fetched]


@dataclass
class PageCheck:
    url: str
    kind: str  # feed | sitemap | list | article
    status: int | None
    links: int = 0
    error: str = ""  # why this page is no use
    note: str = ""  # e.g. how a sitemap index was followed


@dataclass
class SourceCheck:
    name: str
    pages: list[PageCheck] = field(default_factory=list)
    sample_url: str | None = None
    title: str = ""
    body_chars: int = 0
    published: datetime | None = None
    newest: datetime | None = None  # newest date among discovered links and the sample

    @property
    def discovery_ok(self) -> bool:
        return any(p.kind != "article" and p.links for p in self.pages)

    @property
    def ok(self) -> bool:
        return self.discovery_ok and bool(self.title) and self.body_chars > 0 and self.published is not None


def http_fetcher(user_agent: str) -> Fetcher:
    """GET with newsmon's User-Agent, a timeout, a size cap and robots.txt obeyed."""

    @lru_cache(maxsize=256)
    def robots(origin: str) -> Protego | None:
        got = get(f"{origin}/robots.txt")
        return Protego.parse(got.body.decode("utf-8", "replace")) if got.status == 200 else None

    headers = {"User-Agent": user_agent, "Accept-Encoding": "gzip"}

    def get(url: str) -> Fetched:
        try:
            request = urllib.request.Request(url, headers=headers)
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                body = response.read(MAX_PAGE_BYTES + 1)
                if response.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                return Fetched(response.url, response.status, body, response.headers.get("Content-Type", ""))
        except urllib.error.HTTPError as exc:
            return Fetched(url, exc.code, error=f"HTTP {exc.code}")
        except (urllib.error.URLError, OSError, EOFError, zlib.error, ValueError) as exc:
            return Fetched(url, None, error=str(getattr(exc, "reason", exc))[:120])

    def fetch(url: str) -> Fetched:
        parts = urlsplit(url)
        rules = robots(f"{parts.scheme}://{parts.netloc}")
        if rules is not None and not rules.can_fetch(url, user_agent):
            return Fetched(url, None, error="disallowed by robots.txt")
        got = get(url)
        if len(got.body) > MAX_PAGE_BYTES:
            return Fetched(got.url, got.status, error=f"larger than {MAX_PAGE_BYTES} bytes")
        return got

    return fetch


class _Pacer:
    """Sleeps so that calls are at least ``delay`` seconds apart."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.last: float | None = None

    def __call__(self) -> None:
        if self.last is not None:
            time.sleep(max(0.0, self.last + self.delay - time.monotonic()))
        self.last = time.monotonic()


def _discover(
    source: Source, fetch: Fetcher, kind: str, url: str, pause: Callable[[], None]
) -> tuple[PageCheck, list[Link]]:
    pause()
    got = fetch(url)
    page = PageCheck(url, kind, got.status, error=got.error)
    if got.status != 200:
        return page, []
    tz = LANG_TZ.get(source.lang, UTC)
    try:
        if kind == "feed":
            links = feed_links(got.body, got.url)
        elif kind == "list":
            links = list_links(got.body, got.url, source.article_pattern)
        else:
            sitemap = sitemap_links(got.body, got.url, tz, MAX_PAGE_BYTES)
            links = sitemap.links
            if sitemap.is_index and links:  # follow the newest child sitemap only
                newest = max(links, key=lambda link: link.lastmod or datetime.min.replace(tzinfo=UTC))
                child, links = _discover(source, fetch, "sitemap", newest.url, pause)
                page.note = f"index of {len(sitemap.links)} sitemaps; followed the newest: {newest.url}"
                page.error = child.error
    except DiscoveryError as exc:
        page.error = str(exc)
        return page, []
    page.links = len(links)
    if not links and not page.error:
        page.error = "no article links found"
    return page, links


def check_source(source: Source, fetch: Fetcher, pause_s: float | None = None) -> SourceCheck:
    """Check one source; ``pause_s`` between requests defaults to the source's rate (or 1 s)."""
    pause = _Pacer(pause_s if pause_s is not None else 1.0 / (source.rate or 1.0))
    result = SourceCheck(source.name)
    links: list[Link] = []
    for kind, urls in (("feed", source.feeds), ("sitemap", source.sitemaps), ("list", source.list_pages)):
        for url in urls:
            page, found = _discover(source, fetch, kind, url, pause)
            result.pages.append(page)
            links += found
    dates = [d for link in links if (d := link.published or link.lastmod)]
    # Newest links first; undated ones (list pages) after them, in page order.
    candidates = sorted(
        links,
        key=lambda link: link.published or link.lastmod or datetime.min.replace(tzinfo=UTC),
        reverse=True,
    )
    for link in list(dict.fromkeys(c.url for c in candidates))[:SAMPLE_TRIES]:
        pause()
        got = fetch(link)
        page = PageCheck(link, "article", got.status, error=got.error)
        result.pages.append(page)
        if got.status != 200:
            continue
        extracted = extract_article(got.body, got.url, source, content_type=got.content_type or None)
        if extracted.article is None:
            page.error = f"not an article: {extracted.skip} {extracted.detail}".strip()
            continue
        article = extracted.article
        result.sample_url, result.title, result.body_chars = link, article.title, len(article.text)
        result.published = article.published
        if article.published:
            dates.append(article.published)
        break
    result.newest = max(dates, default=None)
    return result


def check_sources(
    sources: list[Source],
    settings: Settings,
    fetch: Fetcher | None = None,
    progress: Callable[[SourceCheck], None] | None = None,
    pause_s: float | None = None,
) -> list[SourceCheck]:
    """Check each source in turn (reporting each result to ``progress`` as it comes)."""
    fetch = fetch or http_fetcher(settings.user_agent)
    results = []
    for source in sources:
        result = check_source(source, fetch, pause_s)
        if progress:
            progress(result)
        results.append(result)
    return results
