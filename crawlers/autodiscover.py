"""Finding an outlet's feeds, sitemaps and list pages from its homepage (``newsmon sources
discover URL``), so that a wrong guess in the registry can be replaced by what the site itself
publishes:

- feeds from the homepage's ``<link rel="alternate">`` tags and the feed paths of the CMSs
  common among these outlets (ND Soft's ``/rss/allArticle.xml``, WordPress ``/feed``);
- sitemaps from ``robots.txt`` ``Sitemap:`` lines and ``/sitemap.xml``, Google News sitemaps
  marked as such;
- list pages among the homepage's own links, kept when they link to enough articles;
- an article pattern generalised from the article URLs the feeds and sitemaps list.

It reuses the crawler's parsers (``newsmon.crawlers.discover``) and the health check's polite
fetcher (robots.txt, size cap, timeout), and stays within a request budget.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any
from urllib.parse import urljoin, urlsplit

from lxml import etree
from lxml import html as lxml_html
from protego import Protego

from newsmon.crawlers.check import Fetched, Fetcher
from newsmon.crawlers.discover import DiscoveryError, feed_links, list_links, sitemap_links
from newsmon.crawlers.scrapy_settings import MAX_PAGE_BYTES
from newsmon.crawlers.urls import origin_of

# Feed paths of the CMSs these outlets run: ND Soft (most Korean outlets), WordPress, common others.
COMMON_FEEDS = ("/rss/allArticle.xml", "/feed", "/rss", "/rss.xml", "/feed.xml", "/atom.xml")
COMMON_SITEMAPS = ("/sitemap.xml", "/news-sitemap.xml", "/sitemap_news.xml")
_FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json")
# Homepage links that name a listing: sections, categories, article lists, tags.
_LIST_HINT = re.compile(r"list|section|categor|channel|/tag/|/news/?$|/topics?/", re.I)
MAX_LIST_CANDIDATES = 4
MIN_LIST_LINKS = 3
_NEWS_NS = b"schemas/sitemap-news/"


@dataclass
class DiscoveredOutlet:
    homepage: str
    feeds: list[str] = field(default_factory=list)
    sitemaps: list[str] = field(default_factory=list)
    news_sitemaps: list[str] = field(default_factory=list)  # the Google News ones among ``sitemaps``
    list_pages: list[str] = field(default_factory=list)
    article_urls: list[str] = field(default_factory=list)
    article_pattern: str | None = None
    requests: int = 0

    def entry(self, name: str, lang: str) -> dict[str, Any]:
        """A registry entry to paste into ``crawlers/sources/*.yaml``."""
        host = urlsplit(self.homepage).hostname or ""
        return {
            "name": name,
            "lang": lang,
            "homepage": self.homepage,
            "feeds": self.feeds,
            "sitemaps": self.sitemaps,
            "list_pages": self.list_pages,
            "allowed_domains": [host.removeprefix("www.")],
            "article_pattern": self.article_pattern,
            "rate": 0.5,
            "confidence": "guessed",
            "sample_articles": self.article_urls[:3],
        }


def article_pattern(urls: Iterable[str]) -> str | None:
    """The URL shape most of ``urls`` share, as a regex: the host as it is (without ``www.``),
    then the path and query with every digit run generalised (``etnews\\.com/\\d+``)."""
    shapes: Counter[str] = Counter()
    for url in urls:
        parts = urlsplit(url)
        tail = parts.path + (f"?{parts.query}" if parts.query else "")
        chunks = re.split(r"(\d+)", tail)
        shape = "".join(r"\d+" if chunk.isdigit() else re.escape(chunk) for chunk in chunks)
        shapes[re.escape(parts.netloc.removeprefix("www.")) + shape] += 1
    if not shapes:
        return None
    shape, count = shapes.most_common(1)[0]
    return shape if count * 2 >= sum(shapes.values()) else None


def alternate_feeds(body: bytes, url: str) -> list[str]:
    """The feeds a page advertises in ``<link rel="alternate">``."""
    try:
        tree = lxml_html.document_fromstring(body)
    except (etree.ParserError, ValueError):
        return []
    found = []
    for link in tree.xpath("//link[@href]"):
        rel = (link.get("rel") or "").lower().split()
        if "alternate" in rel and (link.get("type") or "").lower() in _FEED_TYPES:
            found.append(urljoin(url, link.get("href").strip()))
    return found


def _homepage_links(body: bytes, url: str) -> list[str]:
    try:
        tree = lxml_html.document_fromstring(body)
    except (etree.ParserError, ValueError):
        return []
    host = urlsplit(url).hostname
    links = (urljoin(url, href.strip()) for href in tree.xpath("//a/@href"))
    return list(dict.fromkeys(link for link in links if urlsplit(link).hostname == host and link != url))


class _Budget:
    def __init__(self, fetch: Fetcher, max_requests: int) -> None:
        self.fetch, self.left, self.used = fetch, max_requests, 0

    def get(self, url: str) -> Fetched | None:
        if self.left <= 0:
            return None
        self.left -= 1
        self.used += 1
        got = self.fetch(url)
        return got if got.status == 200 and got.body else None


def robots_sitemaps(robots_text: str, origin: str) -> list[str]:
    """The sitemaps a robots.txt names; relative Sitemap: lines, out of spec but seen in the
    wild, are resolved against ``origin``."""
    return [urljoin(origin + "/", url) for url in Protego.parse(robots_text).sitemaps]


def discover_outlet(homepage: str, fetch: Fetcher, *, max_requests: int = 24) -> DiscoveredOutlet:
    """What the site at ``homepage`` publishes, found with at most ``max_requests`` requests."""
    found = DiscoveredOutlet(homepage)
    budget = _Budget(fetch, max_requests)
    home = budget.get(homepage)
    origin = origin_of(homepage)
    articles: list[str] = []

    def feed(url: str) -> bool:
        got = budget.get(url)
        try:
            links = feed_links(got.body, got.url) if got else []
        except DiscoveryError:
            return False
        articles.extend(link.url for link in links)
        return bool(links)

    # Every feed the homepage advertises; the common CMS paths only when it advertises none.
    found.feeds = [
        url for url in dict.fromkeys(alternate_feeds(home.body, home.url) if home else []) if feed(url)
    ]
    if not found.feeds:
        found.feeds = next(([origin + path] for path in COMMON_FEEDS if feed(origin + path)), [])

    robots = budget.get(origin + "/robots.txt")
    advertised = robots_sitemaps(robots.body.decode("utf-8", "replace") if robots else "", origin)
    for url in dict.fromkeys([*advertised, *(origin + path for path in COMMON_SITEMAPS)]):
        got = budget.get(url)
        try:
            sitemap = sitemap_links(got.body, got.url, UTC, MAX_PAGE_BYTES) if got else None
        except DiscoveryError:
            continue
        if sitemap is None or not sitemap.links:
            continue
        found.sitemaps.append(url)
        if got is not None and _NEWS_NS in got.body[:2000]:
            found.news_sitemaps.append(url)
        if not sitemap.is_index:
            articles += [link.url for link in sitemap.links]

    found.article_urls = list(dict.fromkeys(articles))
    found.article_pattern = article_pattern(found.article_urls)
    candidates = (
        [link for link in _homepage_links(home.body, home.url) if _LIST_HINT.search(link)] if home else []
    )
    for url in candidates[:MAX_LIST_CANDIDATES]:
        got = budget.get(url)
        try:
            links = list_links(got.body, got.url, found.article_pattern) if got else []
        except DiscoveryError:
            continue
        if len(links) >= MIN_LIST_LINKS:
            found.list_pages.append(url)
    found.requests = budget.used
    return found
