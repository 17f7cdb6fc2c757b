"""Title, authors and canonical URL of a page."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin, urlsplit

from newsmon.crawlers.extraction.page import block_text, clean_ws, ld_names, select
from newsmon.crawlers.registry import ExtractRules
from newsmon.crawlers.urls import canonicalize

_TITLE_SEPARATORS = (" | ", " - ", " – ", " — ", " :: ", "_", "｜", "ㅣ", "|", " : ", " > ", " « ", " » ")

_BYLINE_NOISE = re.compile(
    r"^(?:by|작성자|글|기자|작성|作者|编辑|责任编辑|记者|来源)\s*[:：]?\s*|\s*(?:기자|특파원|선임기자|"
    r"논설위원|객원기자|记者|编辑)$|\s*[\w.+-]+@[\w.-]+$",
    re.I,
)


def clean_authors(raw: list[str]) -> list[str]:
    """Split bylines, drop titles such as "기자"/"记者" and e-mail addresses, de-duplicate."""
    names: list[str] = []
    for item in raw:
        for part in re.split(r"\s*[,;/|、，]\s*|\s+and\s+", item):
            name = part.strip()
            for _ in range(3):
                name = _BYLINE_NOISE.sub("", name).strip()
            if name and len(name) <= 40 and not name.startswith("http") and name not in names:
                names.append(name)
    return names


# "标题-新华网": a hyphen without spaces only separates a site name that looks like one.
_CJK_SITE_SUFFIX = re.compile(r"[-—]\s?[\u4e00-\u9fff\w]{1,8}(?:网|报|社|新闻|日报|频道|在线|头条)$")


def clean_title(title: str, site_names: list[str]) -> str:
    """Drop a trailing (or leading) site name: "제목 - 사이트", "标题_新浪科技_新浪网", "标题-新华网"."""
    title = _CJK_SITE_SUFFIX.sub("", clean_ws(title))
    for _ in range(3):
        for sep in _TITLE_SEPARATORS:
            head, found, tail = title.rpartition(sep)
            if (
                found
                and head.strip()
                and (tail.strip() in site_names or (len(tail) <= 16 and len(head) > 2 * len(tail)))
            ):
                title = head.strip()
                break
            lead, found, rest = title.partition(sep)
            if found and lead.strip() in site_names and rest.strip():
                title = rest.strip()
                break
        else:
            return title
    return title


def _first_text(tree: Any, selector: str) -> str:
    for el in select(tree, selector):
        text = el if isinstance(el, str) else block_text(el)
        if text.strip():
            return text.strip()
    return ""


def page_title(
    tree: Any,
    meta: dict[str, str],
    ld: dict[str, Any] | None,
    rules: ExtractRules | None,
    site_names: list[str],
) -> str:
    if rules and rules.title and (text := _first_text(tree, rules.title)):
        return clean_ws(text)
    if ld and isinstance(ld.get("headline"), str) and ld["headline"].strip():
        return clean_ws(ld["headline"])
    decorated = [
        clean_ws(t)
        for t in (meta.get("og:title"), meta.get("twitter:title"), _first_text(tree, "//title"))
        if t
    ]
    # An <h1> making up most of the page title is the headline without the site's decoration
    # (a short one is the site logo).
    for h1 in tree.iter("h1"):
        text = clean_ws(h1.text_content())
        if len(text) >= 4 and any(text in t and len(text) * 2 >= len(t) for t in decorated):
            return text
    return clean_title(decorated[0], site_names) if decorated else ""


def page_authors(
    tree: Any, meta: dict[str, str], ld: dict[str, Any] | None, rules: ExtractRules | None
) -> list[str]:
    raw: list[str] = []
    if rules and rules.author:
        raw = [el if isinstance(el, str) else el.text_content() for el in select(tree, rules.author)]
    if not raw and ld:
        raw = ld_names(ld.get("author"))
    if not raw:
        raw = [
            meta[k]
            for k in (
                "author",
                "article:author",
                "dable:author",
                "byl",
                "sailthru.author",
                "parsely-author",
                "dc.creator",
            )
            if k in meta and not meta[k].startswith("http")
        ]
    return clean_authors(raw)


def canonical_url(tree: Any, url: str, meta: dict[str, str], homepage: str | None) -> str:
    """rel=canonical (or og:url) when it is a plausible article URL on the same site, else the URL."""
    base = tree.xpath("//base/@href")
    page_base = urljoin(url, base[0]) if base else url
    candidates = tree.xpath('//link[@rel="canonical"]/@href') + ([meta["og:url"]] if "og:url" in meta else [])
    here = urlsplit(url)
    for href in candidates:
        target = urlsplit(urljoin(page_base, href.strip()))
        if target.scheme not in ("http", "https") or not target.hostname:
            continue
        # Canonicals pointing at the home page are a common CMS bug, not the article's URL.
        if target.path in ("", "/") and here.path not in ("", "/"):
            continue
        if _site_key(target.hostname) != _site_key(here.hostname or ""):
            continue
        return canonicalize(target.geturl(), homepage)
    return canonicalize(url, homepage)


def _site_key(host: str) -> str:
    """Registrable-domain approximation for same-site checks (last two labels, three for co.kr/com.cn)."""
    labels = host.lower().split(".")
    keep = 3 if len(labels) >= 3 and labels[-2] in ("co", "com", "or", "ne", "net", "org", "go", "ac") else 2
    return ".".join(labels[-keep:])
