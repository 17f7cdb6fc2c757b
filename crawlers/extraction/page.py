"""Reading the parsed page: CSS selection, block text, meta tags and JSON-LD."""

from __future__ import annotations

import json
import re
from typing import Any

from lxml.cssselect import CSSSelector

ARTICLE_TYPES = {
    "newsarticle",
    "article",
    "reportagenewsarticle",
    "analysisnewsarticle",
    "blogposting",
    "techarticle",
    "opinionnewsarticle",
    "backgroundnewsarticle",
    "report",
    "liveblogposting",
}


def select(tree: Any, selector: str) -> list[Any]:
    """CSS selector, or XPath when it starts with ``/`` or ``(``."""
    if selector.startswith(("/", "(")):
        result = tree.xpath(selector)
        return result if isinstance(result, list) else [result]
    return CSSSelector(selector)(tree)


def clean_ws(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u3000", " ")).strip()


_BLOCK_TAGS = {
    "p",
    "div",
    "br",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "tr",
    "table",
    "section",
    "article",
    "figcaption",
    "pre",
    "ul",
    "ol",
    "dd",
    "dt",
}


def block_text(element: Any) -> str:
    """Text of an element with one line per paragraph (block elements and <br> break lines)."""
    parts: list[str] = []

    def walk(el: Any) -> None:
        if not isinstance(el.tag, str):  # comments, processing instructions
            if el.tail:
                parts.append(el.tail)
            return
        tag = el.tag.lower()
        if tag in ("script", "style", "noscript", "template"):
            if el.tail:
                parts.append(el.tail)
            return
        block = tag in _BLOCK_TAGS
        if block:
            parts.append("\n")
        if el.text:
            parts.append(el.text)
        for child in el:
            walk(child)
        if block:
            parts.append("\n")
        if el.tail:
            parts.append(el.tail)

    walk(element)
    lines = (clean_ws(line) for line in "".join(parts).split("\n"))
    return "\n".join(line for line in lines if line)


def meta_tags(tree: Any) -> dict[str, str]:
    """First value of each <meta name|property|itemprop> (lower-cased key)."""
    found: dict[str, str] = {}
    for el in tree.iter("meta"):
        key = el.get("property") or el.get("name") or el.get("itemprop") or el.get("http-equiv")
        value = el.get("content")
        if key and value and value.strip():
            found.setdefault(key.strip().lower(), value.strip())
    return found


def json_ld_nodes(tree: Any) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []

    def collect(obj: Any) -> None:
        if isinstance(obj, list):
            for item in obj:
                collect(item)
        elif isinstance(obj, dict):
            if "@graph" in obj:
                collect(obj["@graph"])
            nodes.append(obj)

    for script in tree.xpath('//script[@type="application/ld+json"]'):
        raw = (script.text or "").strip().removeprefix("<!--").removesuffix("-->")
        try:
            collect(json.loads(raw, strict=False))
        except ValueError:
            continue  # broken JSON-LD is common; the other metadata sources remain
    return nodes


def _ld_type(node: dict[str, Any]) -> set[str]:
    kind = node.get("@type", [])
    kinds = kind if isinstance(kind, list) else [kind]
    return {str(k).lower() for k in kinds}


def ld_article(nodes: list[dict[str, Any]]) -> dict[str, Any] | None:
    for node in nodes:
        if _ld_type(node) & ARTICLE_TYPES:
            return node
    return None


def ld_names(value: Any) -> list[str]:
    if isinstance(value, list):
        return [name for item in value for name in ld_names(item)]
    if isinstance(value, dict):
        return ld_names(value.get("name"))
    if isinstance(value, str) and value.strip():
        return [value.strip()]
    return []
