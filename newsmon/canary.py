"""The daily canary: can each site still be crawled, and does it still produce articles?

For every source: discover one recent article (the newest feed entry, else a list-page
link, else the newest sitemap entry), fetch it and run the crawler's own extractor on it;
title, body and date must come out. Then compare the articles the index holds for the site
on the last complete day with the site's own history (its daily counts over the days
before, from Elasticsearch, so there is no state file to lose): a fall to a fraction of
the median is a silent breakage (new layout, blocked crawler, dead feed) even when the one
article still extracts. Broken sites are mailed to the operators (``NEWSMON_ALERT_TO``).
"""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from statistics import median
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import feedparser
from lxml import etree
from lxml import html as lxml_html

from crawlers.extract import extract_article
from crawlers.registry import Source
from crawlers.scrapy_settings import MAX_PAGE_BYTES
from newsmon.errors import NewsmonError
from newsmon.settings import Settings

TIMEOUT_S = 30.0
HISTORY_DAYS = 14
COLLAPSE_RATIO = 0.25
MIN_BASELINE = 4.0  # a site with fewer articles a day is too noisy to call a collapse

# (body, Content-Type) of a URL; raises urllib's HTTPError/URLError (or OSError) on failure.
Fetch = Callable[[str], tuple[bytes, str | None]]


@dataclass
class SiteCheck:
    """One site's result; plain data, so it can travel through XCom."""

    source: str
    article_url: str | None = None
    title: str = ""
    published: str | None = None
    body_chars: int = 0
    day: str | None = None  # the day whose article count was compared
    count: int | None = None
    baseline: float | None = None  # median articles a day before ``day``
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def http_fetch(settings: Settings) -> Fetch:
    """Plain GETs as the crawler's user agent, capped at the crawler's page size."""

    def fetch(url: str) -> tuple[bytes, str | None]:
        request = urllib.request.Request(url, headers={"User-Agent": settings.user_agent})
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as resp:
            return resp.read(MAX_PAGE_BYTES), resp.headers.get("Content-Type")

    return fetch


def _describe(exc: Exception) -> str:
    if isinstance(exc, HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, URLError):
        return f"unreachable ({exc.reason})"
    return f"{type(exc).__name__}: {exc}"


class _Site:
    """Fetches for one source: robots.txt honoured (per host, as the crawler does), offsite links refused."""

    def __init__(self, source: Source, fetch: Fetch, agent: str) -> None:
        self.source = source
        self._fetch = fetch
        self._agent = agent
        self._robots: dict[str, RobotFileParser | None] = {}
        self.problems: list[str] = []

    def allowed_host(self, url: str) -> bool:
        host = (urlsplit(url).hostname or "").lower()
        return any(host == d or host.endswith("." + d) for d in self.source.allowed_domains)

    def _robots_for(self, url: str) -> RobotFileParser | None:
        root = urlsplit(url)._replace(path="/robots.txt", query="", fragment="").geturl()
        if root not in self._robots:
            try:
                body, _ = self._fetch(root)
            except HTTPError as exc:
                if exc.code >= 500:
                    raise
                self._robots[root] = None  # no robots.txt: everything is allowed (RFC 9309)
            else:
                parser = RobotFileParser()
                parser.parse(body.decode("utf-8", "replace").splitlines())
                self._robots[root] = parser
        return self._robots[root]

    def get(self, url: str, what: str) -> tuple[bytes, str | None] | None:
        """The page, or None with the reason added to ``problems``."""
        try:
            robots = self._robots_for(url)
            if robots is not None and not robots.can_fetch(self._agent, url):
                self.problems.append(f"{what} {url}: disallowed by robots.txt")
                return None
            return self._fetch(url)
        except (OSError, ValueError) as exc:  # HTTPError and URLError are OSErrors
            self.problems.append(f"{what} {url}: {_describe(exc)}")
            return None


def _entry_time(entry: Any) -> float:
    stamp = entry.get("published_parsed") or entry.get("updated_parsed")
    return time.mktime(stamp) if stamp else float("-inf")


def _feed_links(body: bytes, base: str) -> list[str]:
    entries = sorted(feedparser.parse(body).entries, key=_entry_time, reverse=True)
    return [urljoin(base, e["link"]) for e in entries if e.get("link")]


def _list_links(body: bytes, base: str, source: Source) -> list[str]:
    from crawlers.spiders.news import looks_like_article_url

    try:
        tree = lxml_html.document_fromstring(body)
    except (etree.ParserError, ValueError):
        return []
    pattern = re.compile(source.article_pattern) if source.article_pattern else None
    hrefs = tree.xpath("//body//a[not(ancestor::nav or ancestor::header or ancestor::footer)]/@href")
    links = [urljoin(base, h.strip()) for h in hrefs]
    return [u for u in links if u != base and (pattern.search(u) if pattern else looks_like_article_url(u))]


def _sitemap_entries(body: bytes) -> tuple[str, list[tuple[str, str]]]:
    """(root element name, [(newest date text, loc)]), newest first."""
    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True)
    root = etree.fromstring(body, parser=parser)
    if root is None:
        return "", []
    entries = []
    for node in root:
        fields = {
            etree.QName(c).localname: (c.text or "").strip() for c in node.iter() if isinstance(c.tag, str)
        }
        if fields.get("loc"):
            entries.append((fields.get("publication_date") or fields.get("lastmod") or "", fields["loc"]))
    # ISO 8601 dates of one sitemap share a format, so they sort as text; undated ones go last.
    return etree.QName(root).localname, sorted(entries, key=lambda e: e[0], reverse=True)


def _sitemap_links(site: _Site, url: str, depth: int = 0) -> list[str]:
    page = site.get(url, "sitemap")
    if page is None:
        return []
    kind, entries = _sitemap_entries(page[0])
    if kind == "sitemapindex":
        return _sitemap_links(site, urljoin(url, entries[0][1]), depth + 1) if entries and depth < 2 else []
    return [urljoin(url, loc) for _, loc in entries]


def recent_article_url(site: _Site) -> str | None:
    """The newest article the site's feeds, list pages or sitemaps offer (in that order)."""
    source = site.source
    pages: list[tuple[str, list[str], Callable[[bytes, str], list[str]]]] = [
        ("feed", source.feeds, _feed_links),
        ("list page", source.list_pages, lambda body, url: _list_links(body, url, source)),
    ]
    for what, urls, links in pages:
        for url in urls:
            page = site.get(url, what)
            if page is None:
                continue
            if found := [u for u in links(page[0], url) if site.allowed_host(u)]:
                return found[0]
            site.problems.append(f"{what} {url}: no article links")
    for url in source.sitemaps:
        if found := [u for u in _sitemap_links(site, url) if site.allowed_host(u)]:
            return found[0]
    return None


def check_extraction(source: Source, fetch: Fetch, agent: str) -> SiteCheck:
    """Discover one recent article and extract it; problems say what is missing."""
    site = _Site(source, fetch, agent)
    check = SiteCheck(source=source.name)
    url = recent_article_url(site)
    check.problems = site.problems
    if url is None:
        check.problems.append("no recent article found")
        return check
    check.article_url = url
    page = site.get(url, "article")
    if page is None:
        return check
    result = extract_article(page[0], url, source, content_type=page[1])
    article = result.article
    if article is None:
        detail = f": {result.detail}" if result.detail else ""
        check.problems.append(f"article {url}: not extracted ({result.skip}{detail})")
        return check
    check.title, check.body_chars = article.title, len(article.text)
    check.published = article.published.isoformat() if article.published else None
    missing = {"title": not article.title, "body": not article.text, "date": article.published is None}
    check.problems += [f"article {url}: no {name}" for name, absent in missing.items() if absent]
    return check


def collapse(
    counts: dict[date, int],
    day: date,
    *,
    window: int = HISTORY_DAYS,
    ratio: float = COLLAPSE_RATIO,
    min_baseline: float = MIN_BASELINE,
) -> tuple[float, str | None]:
    """The median count of the ``window`` days before ``day``, and a problem if ``day`` fell under
    ``ratio`` of it."""
    baseline = float(median(counts.get(day - timedelta(days=i), 0) for i in range(1, window + 1)))
    count = counts.get(day, 0)
    if baseline >= min_baseline and count < ratio * baseline:
        return baseline, (
            f"article count collapsed: {count} on {day} against a median of {baseline:g} a day"
            f" over the {window} days before"
        )
    return baseline, None


def daily_counts(
    settings: Settings, source: str, first: date, last: date, client: Any = None
) -> dict[date, int]:
    """Articles per day (by ``date``) the index holds for ``source`` from ``first`` to ``last``."""
    from index.search import article_stats

    stats = article_stats(
        settings, site=source, since=first, until=last, interval="day", top=1, client=client
    )
    return {date.fromisoformat(b.key): b.count for b in stats.days}


def check_site(
    settings: Settings,
    source: Source,
    *,
    fetch: Fetch | None = None,
    client: Any = None,
    now: datetime | None = None,
) -> SiteCheck:
    """The canary for one site: extraction, then its article count against its history."""
    check = check_extraction(source, fetch or http_fetch(settings), settings.user_agent)
    day = ((now or datetime.now(UTC)) - timedelta(days=1)).date()  # the last complete (UTC) day
    counts = daily_counts(settings, source.name, day - timedelta(days=HISTORY_DAYS), day, client)
    check.day, check.count = day.isoformat(), counts.get(day, 0)
    check.baseline, problem = collapse(counts, day)
    if problem:
        check.problems.append(problem)
    return check


def compose_report(settings: Settings, checks: list[SiteCheck], other: list[str]) -> EmailMessage | None:
    """The operators' mail, or None when every site is fine and there is nothing else to say."""
    broken = [c for c in checks if not c.ok]
    if not broken and not other:
        return None
    lines = [f"{len(broken)} of {len(checks)} sites need a look.", ""]
    for c in broken:
        lines.append(f"* {c.source}" + (f" (checked {c.article_url})" if c.article_url else ""))
        lines += [f"    - {p}" for p in c.problems]
    if other:
        lines += ["", "Data dir:"] + [f"  - {line}" for line in other]
    msg = EmailMessage()
    msg["Subject"] = f"[newsmon canary] {len(broken)} of {len(checks)} sites broken" + (
        f", {len(other)} data-dir warnings" if other else ""
    )
    msg["From"] = settings.alert_from
    msg["To"] = ", ".join(settings.alert_to)
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain="newsmon")
    msg.set_content("\n".join(lines) + "\n")
    return msg


def mail_operators(settings: Settings, checks: list[SiteCheck], other: list[str]) -> bool:
    """Mail the report to ``NEWSMON_ALERT_TO`` if there is anything to report; True if mailed."""
    from newsmon.alerts.mailer import SmtpTransport

    msg = compose_report(settings, checks, other)
    if msg is None:
        return False
    if not settings.alert_to:
        raise NewsmonError("canary: sites are broken but NEWSMON_ALERT_TO is empty: nobody to tell")
    transport = SmtpTransport(settings)
    try:
        transport.send(msg, settings.alert_to)
    finally:
        transport.close()
    return True
