"""Query building for search and stats (no Elasticsearch needed)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from newsmon.errors import NewsmonError
from newsmon.index.search import Filters, _snippets, build_query, parse_when, text_fields


@pytest.mark.parametrize(
    ("query", "lang", "fields"),
    [
        ("반도체 수출", None, ["title.ko^3", "text.ko"]),
        ("삼성 HBM", None, ["title.ko^3", "text.ko"]),  # nori keeps Latin words too
        ("芯片 出口管制", None, ["title.zh^3", "text.zh"]),
        ("TSMC 2nm", None, ["title^3", "text"]),
        ("TSMC", "zh", ["title.zh^3", "text.zh", "title^3", "text"]),
        ("TSMC", "en", ["title^3", "text"]),
        ("半導体", None, ["title.zh^3", "text.zh"]),  # kanji without kana reads as Chinese...
        ("半導体の輸出", None, ["title^3", "text"]),  # ...but kana means Japanese: no zh analyzer
    ],
)
def test_fields_follow_the_script_of_the_query(query: str, lang: str | None, fields: list[str]) -> None:
    assert text_fields(query, lang) == fields


def test_cjk_queries_add_the_bigram_recall_net_with_the_same_operators() -> None:
    q = build_query("-华为 芯片", [], None)
    precise, recall = q["bool"]["should"]
    assert precise["simple_query_string"]["default_operator"] == "and"
    assert recall["simple_query_string"]["fields"] == ["title.cjk^2", "text.cjk"]
    assert recall["simple_query_string"]["default_operator"] == "and"  # "or" would match all docs w/o 华为
    assert recall["simple_query_string"]["boost"] < 1
    assert q["bool"]["minimum_should_match"] == 1
    assert len(build_query("TSMC", [], None)["bool"]["should"]) == 1


def test_empty_query_is_filters_only() -> None:
    f = [{"term": {"lang": "ko"}}]
    assert build_query("  ", f) == {"bool": {"filter": f}}


def test_filters() -> None:
    clauses = Filters(
        topic="ai",
        lang="zh",
        site="etnews",
        entity="华为",
        since=date(2026, 5, 1),
        until="2026-05-31",
        alert=False,
    ).clauses()
    assert {"term": {"topics": "ai"}} in clauses
    assert {"term": {"lang": "zh"}} in clauses
    assert {"term": {"entities": "华为"}} in clauses
    assert {"bool": {"should": [{"term": {"site": "etnews"}}, {"term": {"source": "etnews"}}]}} in clauses
    # Whole days: ES rounds ||/d down for gte and up for lte.
    assert {"range": {"date": {"gte": "2026-05-01||/d", "lte": "2026-05-31||/d"}}} in clauses
    assert {"term": {"alert.export_controls": False}} in clauses
    moment = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)
    assert Filters(since=moment).clauses() == [{"range": {"date": {"gte": moment.isoformat()}}}]
    assert Filters(until="now-1d").clauses() == [{"range": {"date": {"lte": "now-1d"}}}]
    assert Filters().clauses() == []


def test_parse_when() -> None:
    assert parse_when("7d") == "now-7d"
    assert parse_when("24h") == "now-24h"
    assert parse_when("now-2w/d") == "now-2w/d"
    assert parse_when("2026-05-01") == "2026-05-01"
    assert parse_when("2026-05-01T08:00:00+09:00") == "2026-05-01T08:00:00+09:00"
    with pytest.raises(NewsmonError, match="not a date"):
        parse_when("last tuesday")


def test_snippets_prefer_the_language_field_and_merge_adjacent_marks() -> None:
    highlight = {
        "text": ["no marks here"],
        "text.cjk": ["<em>수출</em>통제"],
        "text.ko": ["<em>수출</em><em>통제</em> 강화"],
    }
    assert _snippets(highlight) == ["<em>수출통제</em> 강화"]
    assert _snippets({"text": ["the start of the text"]}) == ["the start of the text"]
    assert _snippets({}) == []
