"""Finding article URLs in feeds, sitemaps and list pages: pure parsing, shared by the spider and
``check_sources``. Bad input raises ``DiscoveryError`` with a skip reason instead of crashing."""

from __future__ import annotations

import re
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
from lxml import etree
from lxml import html as lxml_html
from scrapy.utils.gz import gunzip

from newsmon.crawlers.extraction.dates import parse_date
from newsmon.crawlers.urls import NON_ARTICLE_PATH

_DIGITS = re.compile(r"\d{4,}|/\d{1,3}/\d+")
_PAGING = re.compile(r"(?:^|&)(?:page|p|pg|pageno|pagenum)=", re.I)


class DiscoveryError(Exception):
    """A feed, sitemap or list page that yields nothing usable; ``reason`` is the skip key."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Link:
    url: str
    published: datetime | None = None
    lastmod: datetime | None = None


@dataclass(frozen=True)
class Sitemap:
    is_index: bool  # True: ``links`` are further sitemaps
    links: list[Link]


def looks_like_article_url(url: str) -> bool:
    """Generic guess for list-page links: a long number (id, date) in the URL; no section, tag or paging."""
    parts = urlsplit(url)
    return (
        bool(_DIGITS.search(parts.path + "?" + parts.query))
        and not NON_ARTICLE_PATH.search(parts.path)
        and not _PAGING.search(parts.query)
    )


def _struct_time(value: time.struct_time | None) -> datetime | None:
    return datetime(*value[:6], tzinfo=UTC) if value else None


def _entry_link(entry: Any) -> str | None:
    return entry.get("link") or next(
        (lk.get("href") for lk in entry.get("links", []) if lk.get("href")), None
    )


def feed_links(body: bytes, url: str) -> list[Link]:
    """Entries of an RSS/Atom feed (feedparser copes with most broken feeds)."""
    feed = feedparser.parse(body, response_headers={"content-location": url})
    links = []
    for entry in feed.entries:
        if link := _entry_link(entry):
            # dict.get: FeedParserDict maps a missing updated_parsed to published_parsed, with a warning.
            updated = _struct_time(dict.get(entry, "updated_parsed"))
            published = _struct_time(dict.get(entry, "published_parsed")) or updated
            lastmod = updated or published
            links.append(Link(urljoin(url, link), published, lastmod))
    if not links:
        raise DiscoveryError("bad_feed", str(feed.get("bozo_exception", "")) or "no entries with links")
    return links


def sitemap_links(body: bytes, url: str, tz: tzinfo, max_size: int) -> Sitemap:
    """A sitemap index, or a (news) sitemap's URLs with publication date and lastmod; gzip allowed."""
    if body[:2] == b"\x1f\x8b":
        try:
            body = gunzip(body, max_size=max_size)
        except (OSError, EOFError, ValueError, zlib.error) as exc:
            raise DiscoveryError("broken_gzip", str(exc)[:80]) from None
    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True)
    try:
        root = etree.fromstring(body, parser=parser)
    except etree.XMLSyntaxError:
        root = None
    if root is None:
        raise DiscoveryError("bad_sitemap")
    links = []
    for node in root:
        if not isinstance(node.tag, str):
            continue
        fields = {
            etree.QName(el).localname: (el.text or "").strip()
            for el in node.iter()
            if isinstance(el.tag, str)
        }
        if loc := fields.get("loc"):
            lastmod = parse_date(fields.get("lastmod", ""), tz)
            published = parse_date(fields.get("publication_date", ""), tz) or lastmod
            links.append(Link(urljoin(url, loc), published, lastmod))
    return Sitemap(etree.QName(root).localname == "sitemapindex", links)


def list_links(body: bytes, url: str, pattern: str | None) -> list[Link]:
    """Article links on a list page: those matching ``pattern``, or looking like articles."""
    if not body.strip():
        raise DiscoveryError("empty")
    try:
        tree = lxml_html.document_fromstring(body)
    except (etree.ParserError, ValueError):
        raise DiscoveryError("bad_list_page") from None
    regex = re.compile(pattern) if pattern else None
    found: dict[str, None] = {}
    # Site chrome (menus, headers, footers) never links to articles worth discovering.
    for href in tree.xpath("//body//a[not(ancestor::nav or ancestor::header or ancestor::footer)]/@href"):
        link = urljoin(url, href.strip())
        if (
            link.startswith(("http://", "https://"))
            and link != url
            and (regex.search(link) if regex else looks_like_article_url(link))
        ):
            found[link] = None
    return [Link(link) for link in found]
