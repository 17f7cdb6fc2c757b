"""Article extraction: bytes of one HTML page -> an ``Article`` or a reason to skip it.

Pure functions (no network, no state) so the crawler, ``newsmon extract`` and the
benchmarks all share one code path. This module decides; each concern has its own module in
``crawlers.extraction``: ``decoding`` (bytes to text), ``page`` (reading the parsed tree),
``dates``, ``metadata`` (title, authors, canonical URL) and ``body`` (the story text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from lxml import etree
from lxml import html as lxml_html

from newsmon.crawlers.extraction.body import (
    EXTRACTOR,
    MIN_BODY_WEIGHT,
    link_texts,
    recall_fallback,
    story_body,
    strip_tail,
    text_weight,
)
from newsmon.crawlers.extraction.dates import LANG_TZ, published_date
from newsmon.crawlers.extraction.decoding import decode_html, sniff_binary
from newsmon.crawlers.extraction.metadata import canonical_url, clean_authors, page_authors, page_title
from newsmon.crawlers.extraction.page import clean_ws, json_ld_nodes, ld_article, meta_tags
from newsmon.crawlers.registry import Source
from newsmon.crawlers.urls import NON_ARTICLE_PATH
from newsmon.models import Article, utcnow
from newsmon.scripts import is_cjk_lang, lang_by_script

# Skip reasons (also the keys of CrawlStats.skipped).
SKIP_BINARY = "binary"
SKIP_EMPTY = "empty"
SKIP_ERROR_PAGE = "error_page"
SKIP_LIST_PAGE = "list_page"
SKIP_TOO_SHORT = "too_short"
SKIP_NO_TITLE = "no_title"
_ERROR_TITLE = re.compile(
    r"\b(?:404|not found)\b|페이지를 찾을 수 없|존재하지 않는|삭제된 기사|"
    r"页面不存在|页面未找到|找不到页面|您访问的页面|文章不存在|已被删除",
    re.I,
)


@dataclass(frozen=True)
class ExtractResult:
    """An article, or why the page is not one (``skip`` is a short reason key)."""

    article: Article | None = None
    skip: str | None = None
    detail: str = ""
    encoding: str = ""

    @property
    def is_article(self) -> bool:
        return self.article is not None


# The page is parsed once; metadata, dates, body and fallback share the tree. Comments and
# processing instructions go at parse time, as trafilatura's own loader drops them (a comment
# left in the tree can carry old markup into its body).
_PARSER = lxml_html.HTMLParser(collect_ids=False, remove_comments=True, remove_pis=True)

# ----------------------------------------------------------------------------- entry point


def extract_article(
    html: bytes | str,
    url: str,
    source: Source | None = None,
    fetched: datetime | None = None,
    *,
    content_type: str | None = None,
    announced: bool = False,
) -> ExtractResult:
    """Extract one article; never raises on bad input (returns a skip reason instead).

    ``announced``: a feed, a news sitemap or the source's article pattern says this URL is an
    article. Then no heuristic drops it (a lost article is the worst outcome for a monitor):
    the list-page and too-short gates only warn (``Article.warnings``). A page reached by
    following links must pass them.
    """
    fetched = fetched or utcnow()
    lang_hint = source.lang if source else None
    encoding = "str"
    if isinstance(html, bytes):
        if kind := sniff_binary(html):
            return ExtractResult(skip=SKIP_BINARY, detail=kind)
        html, encoding = decode_html(html, content_type, lang_hint)
    html = html.replace("\x00", "")
    if not html.strip():
        return ExtractResult(skip=SKIP_EMPTY, encoding=encoding)
    try:
        tree = lxml_html.document_fromstring(html, parser=_PARSER)
    except (etree.ParserError, ValueError):
        return ExtractResult(skip=SKIP_EMPTY, detail="unparsable HTML", encoding=encoding)
    # A per-site date rule may need the raw page; body rules mutate the tree, so take metadata first.
    rules = source.extract if source else None
    meta = meta_tags(tree)
    nodes = json_ld_nodes(tree)
    ld = ld_article(nodes)
    site_names = [n for n in (meta.get("og:site_name"), source.label if source else None) if n]
    title = page_title(tree, meta, ld, rules, site_names)
    html_lang = (tree.get("lang") or meta.get("content-language") or "").split("-")[0].lower() or None
    tz = LANG_TZ.get(lang_hint or html_lang or "", UTC)
    published = published_date(tree, meta, nodes, ld, rules, tz, fetched)
    authors = page_authors(tree, meta, ld, rules)
    homepage = source.homepage if source else None
    canonical = canonical_url(tree, url, meta, homepage)
    headlines = link_texts(tree)
    cjk = is_cjk_lang(lang_hint or html_lang or lang_by_script(title))
    text, extractor, listish = story_body(tree, html, url, rules, ld, title, headlines, cjk)
    lang = lang_by_script(title + "\n" + text) or html_lang or lang_hint
    if _ERROR_TITLE.search(title) and not ld:
        return ExtractResult(skip=SKIP_ERROR_PAGE, detail=title[:80], encoding=encoding)
    text, bylines = strip_tail(text)
    authors = authors or clean_authors(bylines)
    warnings: list[str] = []
    if text_weight(text) < MIN_BODY_WEIGHT and (fallback := recall_fallback(tree, url, text, cjk)):
        text, extractor = strip_tail(fallback)[0], f"{EXTRACTOR} (recall)"
        warnings.append("fallback_body")
    is_typed_article = bool(ld) or meta.get("og:type", "").lower() == "article"
    if not is_typed_article and (NON_ARTICLE_PATH.search(urlsplit(url).path) or listish):
        if not announced:
            return ExtractResult(skip=SKIP_LIST_PAGE, encoding=encoding)
        warnings.append("list_like")
    if not text or text_weight(text) < MIN_BODY_WEIGHT:
        if not announced:
            return ExtractResult(
                skip=SKIP_TOO_SHORT, detail=f"{text_weight(text)} < {MIN_BODY_WEIGHT}", encoding=encoding
            )
        warnings.append("short_body" if text else "no_body")
        text = text or clean_ws(meta.get("og:description") or meta.get("description") or "")
    if not title:
        return ExtractResult(skip=SKIP_NO_TITLE, encoding=encoding)
    article = Article(
        url=url,
        canonical_url=canonical,
        source=source.name if source else "",
        site=urlsplit(canonical).hostname or "",
        title=title,
        text=text,
        published=published,
        authors=authors,
        lang=lang,
        fetched=fetched,
        extractor=extractor,
        warnings=warnings,
    )
    return ExtractResult(article=article, encoding=encoding)
