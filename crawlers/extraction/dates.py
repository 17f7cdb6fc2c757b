"""Publication dates: parsing every format CJK and western sites use, and finding the date
of a page (JSON-LD, meta tags, site rules, the dateline, htmldate, a scan)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime
from typing import Any

import htmldate

from newsmon.crawlers.extraction.page import select
from newsmon.crawlers.registry import ExtractRules

KST = timezone(timedelta(hours=9), "KST")
CST = timezone(timedelta(hours=8), "CST")
LANG_TZ: dict[str, tzinfo] = {"ko": KST, "zh": CST}

_DATE_RE = re.compile(
    r"(?P<y>(?:19|20)\d{2})\s*[-./년年]\s*(?P<m>\d{1,2})\s*[-./월月]\s*(?P<d>\d{1,2})\s*[일日]?"
    r"(?:\s*\(?[월화수목금토일一二三四五六日]?\)?\s*T?\s*(?P<ampm>오전|오후|上午|下午|AM|PM|am|pm)?\s*"
    r"(?P<H>\d{1,2})\s*[:시時时点]\s*(?P<M>\d{1,2})(?:\s*[:분分]\s*(?P<S>\d{1,2}))?)?"
    r"(?:\.\d+)?\s*(?P<tz>Z|[+-]\d{2}:?\d{2}|UTC|GMT|KST|CST)?"
)
_TZ_NAMES: dict[str, tzinfo] = {"Z": UTC, "UTC": UTC, "GMT": UTC, "KST": KST, "CST": CST}


def parse_date(value: str, default_tz: tzinfo = UTC) -> datetime | None:
    """A timezone-aware datetime from ISO 8601, RFC 2822 or CJK-style date text.

    A date without a zone is taken as local time of the outlet (``default_tz``).
    """
    value = value.strip()
    if not value:
        return None
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            parsed = _parse_cjk_date(value, default_tz)
    if parsed is None or not 1990 <= parsed.year <= 2100:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=default_tz)


def _parse_cjk_date(value: str, default_tz: tzinfo) -> datetime | None:
    m = _DATE_RE.search(value)
    if not m:
        return None
    hour = int(m["H"] or 0)
    if m["ampm"] in ("오후", "下午", "PM", "pm") and hour < 12:
        hour += 12
    elif m["ampm"] in ("오전", "上午", "AM", "am") and hour == 12:
        hour = 0
    tz: tzinfo = default_tz
    if m["tz"]:
        if m["tz"] in _TZ_NAMES:
            tz = _TZ_NAMES[m["tz"]]
        else:
            sign = 1 if m["tz"][0] == "+" else -1
            digits = m["tz"][1:].replace(":", "")
            tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        return datetime(
            int(m["y"]), int(m["m"]), int(m["d"]), hour, int(m["M"] or 0), int(m["S"] or 0), tzinfo=tz
        )
    except ValueError:
        return None


_META_DATE_KEYS = (
    "article:published_time",
    "og:article:published_time",
    "og:published_time",
    "article:published",
    "datepublished",
    "pubdate",
    "publishdate",
    "publish-date",
    "publish_date",
    "publication_date",
    "dc.date.issued",
    "dc.date",
    "dcterms.created",
    "date",
    "sailthru.date",
    "parsely-pub-date",
    "og:regdate",
    "og:release_date",
    "article:created",
    "nv:news:date",
    "dable:published_time",
    "ptime",
    "weibo: article:create_at",
)


def _date_candidates(
    tree: Any,
    meta: dict[str, str],
    nodes: list[dict[str, Any]],
    ld: dict[str, Any] | None,
    rules: ExtractRules | None,
) -> list[str]:
    found: list[str] = []
    # The article node first, then any node (Baidu's "cambrian" JSON-LD has an untyped pubDate).
    for node in ([ld] if ld else []) + nodes:
        found += [
            str(node[k]) for k in ("datePublished", "dateCreated", "pubDate", "uploadDate") if node.get(k)
        ]
    found += [meta[k] for k in _META_DATE_KEYS if k in meta]
    found += [el.get("datetime") or el.text_content() for el in tree.xpath('//*[@itemprop="datePublished"]')]
    if rules and rules.date:
        for el in select(tree, rules.date):
            found.append(
                el if isinstance(el, str) else (el.get("datetime") or el.get("content") or el.text_content())
            )
    return found


def _dateline_after_headline(tree: Any) -> list[str]:
    """The date printed just below the <h1>: "2019-09-05 11:10 来源：…", "입력 2025.03.04 14:20"."""
    found = []
    for h1 in tree.iter("h1"):
        following = "".join(h1.xpath("following::text()[position() <= 40]"))[:400]
        if match := _DATE_RE.search(following):
            found.append(match[0])
    return found


_DATEISH = re.compile(r"date|time|pub|info|source|meta|byline|writer|author|article-?head", re.I)


def _scan_dates(tree: Any) -> list[str]:
    """Texts of elements that look like a dateline (<time>, class/id with date, time, info ...)."""
    found = [el.get("datetime") or el.text_content() for el in tree.iter("time")]
    for el in tree.xpath("//body//*[@class or @id]"):
        if _DATEISH.search(f"{el.get('class', '')} {el.get('id', '')}") and len(el) < 12:
            text = el.text_content()
            if len(text) < 300 and _DATE_RE.search(text):
                found.append(text)
    return found


def published_date(
    tree: Any,
    meta: dict[str, str],
    nodes: list[dict[str, Any]],
    ld: dict[str, Any] | None,
    rules: ExtractRules | None,
    tz: tzinfo,
    fetched: datetime,
) -> datetime | None:
    """JSON-LD, meta tags, the site rule, the dateline below the headline, htmldate, a dateline scan.

    Never after the fetch time: such a date is a wrong zone or a scheduled-post artefact.
    """
    for raw in _date_candidates(tree, meta, nodes, ld, rules) + _dateline_after_headline(tree):
        when = parse_date(raw, tz)
        if when and when <= fetched:
            return when
    # htmldate's markup rules only: its "extensive" text search calls dateparser, which
    # compiles regexes for hundreds of locales (tens of seconds on some CJK pages).
    try:
        day = htmldate.find_date(
            tree,
            extensive_search=False,
            original_date=True,
            max_date=fetched.astimezone(tz).strftime("%Y-%m-%d"),
        )
    except (ValueError, TypeError):
        day = None
    for raw in ([day] if day else []) + _scan_dates(tree):
        when = parse_date(raw, tz)
        if when and when <= fetched:
            return when
    return None
