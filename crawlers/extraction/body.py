"""The story text: trafilatura on the shared tree, site rules, embedded JSON-LD or Next.js
text, the tail that is not story (bylines, notices, related lists), list-page detection."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import trafilatura
from lxml import html as lxml_html
from trafilatura.settings import use_config

from newsmon.crawlers.extraction.page import block_text, clean_ws, select
from newsmon.crawlers.registry import ExtractRules
from newsmon.scripts import CJK

EXTRACTOR = f"newsmon/trafilatura-{trafilatura.__version__}"
# Fewer body characters than this (CJK characters count 3: one carries about a word's worth).
MIN_BODY_WEIGHT = 250
# A paragraph this long (about 80 CJK characters or 40 English words) is story text, not a teaser.
_PARAGRAPH_WEIGHT = 240


def text_weight(text: str) -> int:
    """Amount of text: CJK characters count 3, other non-space characters 1 (a 6-letter word ~ 2 CJK)."""
    cjk = len(CJK.findall(text))
    return cjk * 2 + len("".join(text.split()))


# trafilatura calls a body under 250 characters short and then runs its fallbacks (readability,
# then jusText, whose stop-word test cannot read Chinese or Korean). 250 CJK characters are a
# long brief: for CJK pages the mark is 100 (a CJK character carries ~2.5 Latin ones). Over every
# shared page set this left body F1 equal or higher and made extraction ~45% faster.
_CJK_TRAFILATURA = use_config()
_CJK_TRAFILATURA.set("DEFAULT", "MIN_EXTRACTED_SIZE", "100")
_TRAFILATURA = use_config()
# A precision-mode body this heavy is the story: the default-mode run that would only guard
# against a precision body cut to a comment box is skipped (one trafilatura run, not two).
PRECISE_ENOUGH = 4 * MIN_BODY_WEIGHT


def _trafilatura(tree: Any, url: str, cjk: bool, *, precision: bool = False, recall: bool = False) -> str:
    """trafilatura on the page's one parsed tree (a copy: its cleaning prunes the tree it gets)."""
    return (
        trafilatura.extract(
            copy.deepcopy(tree),
            url=url,
            include_comments=False,
            deduplicate=False,
            favor_precision=precision,
            favor_recall=recall,
            config=_CJK_TRAFILATURA if cjk else _TRAFILATURA,
        )
        or ""
    )


def recall_fallback(tree: Any, url: str, text: str, cjk: bool) -> str | None:
    """trafilatura's recall-mode body when ours is short and that one is at least twice as long."""
    recalled = _trafilatura(tree, url, cjk, recall=True)
    return recalled if text_weight(recalled) >= 2 * max(text_weight(text), 1) else None


def story_body(
    tree: Any,
    html_text: str,
    url: str,
    rules: ExtractRules | None,
    ld: dict[str, Any] | None,
    title: str,
    headlines: set[str],
    cjk: bool,
) -> tuple[str, str, bool]:
    """(text, extractor name, looks like a list page).

    The site rule if it matches, else trafilatura, else text embedded in JSON-LD or a Next.js payload.
    """
    if rules and rules.body:
        for el in select(tree, rules.body):
            if isinstance(el, str):
                continue
            for sel in rules.drop:
                for junk in select(el, sel):
                    junk.drop_tree()
            text = block_text(el)
            if text:
                return text, "newsmon/site-rule", False
    if rules and rules.drop:
        for sel in rules.drop:
            for junk in select(tree, sel):
                junk.drop_tree()
    # Precision mode drops the "related news" and promo blocks that news pages carry, but on
    # some layouts it keeps a comment box instead of the story: when its body is short, the
    # default run wins if it finds more than twice as much.
    raw = _trafilatura(tree, url, cjk, precision=True)
    lines = _clean_body(raw, title, headlines)
    if _lines_weight(lines) < PRECISE_ENOUGH:
        raw = _trafilatura(tree, url, cjk)
        default = _clean_body(raw, title, headlines)
        lines = lines if _lines_weight(lines) * 2 >= _lines_weight(default) else default
    listish = _looks_like_list(headlines, raw, max(map(text_weight, lines), default=0))
    text, name = "\n".join(lines), EXTRACTOR
    # Script-rendered pages may hold the text only in their JSON-LD or in a Next.js payload.
    for embedded, label in (
        (_ld_body(ld), "newsmon/json-ld"),
        (_next_flight_body(html_text), "newsmon/next-flight"),
    ):
        if embedded and text_weight(embedded) > 2 * text_weight(text):
            return embedded, label, False
    return text, name, listish


# Lines that end a story on CJK news sites; what follows is editor credits, copyright and promos.
_END_MARKER = re.compile(
    r"^(?:- )?[（(【\[<]?\s*(?:责任编辑|责编|编辑|編輯)\s*[:：]|网友评论仅供其表达个人看法"
    r"|무단\s?전재|재배포\s?금지|저작권자"
)


# The tail of a story body that is not story: bylines with an email, copyright and reprint
# notices, photo credits, "related articles" headers and the link lists after them.
_EMAIL = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
_KO_BYLINE = re.compile(r"([가-힣]{2,4})\s?(?:기자|특파원|객원기자|인턴기자)")
_ZH_BYLINE = re.compile(r"(?:记者|記者|作者|编辑|編輯)\s*[:：/]?\s*([\u4e00-\u9fff]{2,4})")
_TAIL_LINE = re.compile(
    rf"{_EMAIL}\s*[)）\]]?\s*$|무단\s?전재|재배포\s?금지|저작권자|版权所有|版權所有|未经授权|未經授權|禁止转载|禁止轉載"
    r"|all rights reserved|copyright\b|ⓒ|©|^\(?끝\)?$"
    r"|^[\[(（【]?\s*(?:사진|사진제공|写真|图片来源|圖片來源|图源|圖源|photo)\s*[=:：/]"
    r"|^[(（]?\s*(?:[가-힣]{2,4}\s?(?:기자|특파원)|(?:记者|記者)\s*[\u4e00-\u9fff]{2,4})\s*[)）]?$",
    re.IGNORECASE,
)
_RELATED = re.compile(
    r"^[\[【<]?\s*(?:관련\s?기사|相关阅读|相關閱讀|相关新闻|相關新聞|延伸阅读|延伸閱讀|推荐阅读|推薦閱讀"
    r"|related (?:articles|stories|news))\s*[\]】>:：]?\s*$",
    re.IGNORECASE,
)
_INLINE_BYLINE = re.compile(rf"\s*[(（\[]?\s*([가-힣]{{2,4}})\s?기자\s*(?:{_EMAIL})?\s*[)）\]]?\s*$")
MAX_TAIL_LINE = 160
_SENTENCE_END = re.compile(r"[.!?。！？](?:\s|$)")


def _is_tail_line(line: str) -> bool:
    """Empty, or a short notice line: its match is not preceded by a finished sentence (a
    paragraph that ends with a byline keeps its text; only the byline is cut from it)."""
    if not line:
        return True
    found = _TAIL_LINE.search(line) if len(line) <= MAX_TAIL_LINE else None
    bracketed = line[0] in "[【(（" and line[-1] in "]】)）"  # a notice set apart as a whole
    return bool(found) and (bracketed or not _SENTENCE_END.search(line[: found.start()]))


def strip_tail(text: str) -> tuple[str, list[str]]:
    """(the body without its non-story tail, the reporter names found in it).

    Only the end is touched: a "related articles" header in the second half cuts what follows,
    then trailing short lines that are bylines, emails, copyright or photo credits go, and a
    byline written at the end of the last paragraph is cut from it.
    """
    lines = text.split("\n")
    total, seen = _lines_weight(lines), 0
    for i, line in enumerate(lines):
        if i and seen * 2 >= total and _RELATED.match(line.strip()):
            lines = lines[:i]
            break
        seen += text_weight(line)
    names: list[str] = []
    while lines and _is_tail_line(lines[-1].strip()):
        tail = lines.pop().strip()
        names += _KO_BYLINE.findall(tail) + _ZH_BYLINE.findall(tail)
    if lines and (inline := _INLINE_BYLINE.search(lines[-1])) and inline.start() > 0:
        names.append(inline.group(1))
        lines[-1] = lines[-1][: inline.start()]
    return "\n".join(lines).strip(), list(dict.fromkeys(names))


def _lines_weight(lines: list[str]) -> int:
    return sum(text_weight(line) for line in lines)


def _clean_body(text: str, title: str, headlines: set[str]) -> list[str]:
    """Paragraph lines without headline links, the repeated title, and what follows an end marker."""
    lines = [line.strip() for line in text.split("\n") if line.strip() and not _is_link_line(line, headlines)]
    if lines and clean_ws(lines[0]) == title:
        lines = lines[1:]  # the headline repeated as the first paragraph
    total, seen = _lines_weight(lines), 0
    for i, line in enumerate(lines):
        if i and seen * 4 >= total and _END_MARKER.search(line):
            return lines[:i]
        seen += text_weight(line)
    return lines


def _ld_body(ld: dict[str, Any] | None) -> str:
    body = ld.get("articleBody") if ld else None
    return "\n".join(clean_ws(p) for p in body.split("\n") if p.strip()) if isinstance(body, str) else ""


_NEXT_PUSH = re.compile(r'self\.__next_f\.push\(\[1,"((?:[^"\\]|\\.)*)"\]\)')
_NEXT_TEXT_ROW = re.compile(rb"(?:^|\n)[0-9a-f]+:T([0-9a-f]+),")


def _next_flight_body(html_text: str) -> str:
    """Article HTML carried in a Next.js app-router payload (``self.__next_f.push``) as a text row."""
    pushes = _NEXT_PUSH.findall(html_text)
    if not pushes:
        return ""
    try:
        payload = "".join(json.loads(f'"{chunk}"') for chunk in pushes).encode("utf-8")
    except ValueError:
        return ""
    # Text rows are "<id>:T<hex byte length>,<text>"; the article is the row with most paragraphs.
    rows = [
        payload[m.end() : m.end() + int(m[1], 16)].decode("utf-8", "ignore")
        for m in _NEXT_TEXT_ROW.finditer(payload)
    ]
    best = max(rows, key=lambda row: row.count("<p"), default="")
    if best.count("<p") < 2:
        return ""
    return block_text(
        lxml_html.fragment_fromstring(re.sub(r"\$\$[A-Z_]+\$\$", "", best), create_parent="div")
    )


def link_texts(tree: Any) -> set[str]:
    """Texts of content links long enough to be headlines (menus, headers and footers excluded)."""
    links = tree.xpath("//body//a[not(ancestor::nav or ancestor::header or ancestor::footer)]")
    return {t for a in links if text_weight(t := clean_ws(a.text_content())) >= 24}


def _is_link_line(line: str, titles: set[str]) -> bool:
    line = line.strip().lstrip("-•·*> ").strip()
    return text_weight(line) >= 12 and any(
        line in t or (t in line and text_weight(t) * 2 > text_weight(line)) for t in titles
    )


def _looks_like_list(titles: set[str], raw: str, longest: int) -> bool:
    """An index, tag or section page: many headline links, and either no real paragraph at all or
    mostly headline links in the extracted text with only teaser-length paragraphs."""
    if len(titles) < 5:
        return False
    if longest < _PARAGRAPH_WEIGHT // 2:
        return True
    lines = [line for line in raw.split("\n") if line.strip()]
    linked = sum(text_weight(line) for line in lines if _is_link_line(line, titles))
    return linked * 2 >= text_weight(raw) and longest < _PARAGRAPH_WEIGHT
