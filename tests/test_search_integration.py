"""search_articles / article_stats and the typer commands against a real local node."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import typer
from helpers.articles import isolated, make_article
from typer.testing import CliRunner

from newsmon.cli import index_command, reprocess_command
from newsmon.index.bulk import index_articles
from newsmon.index.cli import kibana_app, search_command, stats_command
from newsmon.index.client import articles_alias, es_client
from newsmon.index.search import Filters, Sort, article_stats, search_articles, search_stories
from newsmon.models import AlertDecision, Article, Topic
from newsmon.settings import Settings, get_settings

pytestmark = pytest.mark.integration


def _article(n: int, lang: str, site: str, day: int, title: str, text: str, **kw: object) -> Article:
    return make_article(
        n,
        lang=lang,
        site=site,
        source=site.split(".")[0],
        title=title,
        text=text,
        published=datetime(2026, 5, day, 9, 0, tzinfo=UTC),
        **kw,
    )


def corpus() -> list[Article]:
    no_alert = AlertDecision()
    chips = [Topic(label="semiconductors", score=0.9)]
    return [
        _article(1, "ko", "etnews.com", 1, "정부, 반도체 장비 수출통제 대응책 발표",
                 "정부가 미국의 반도체 장비 수출통제에 대응해 지원책을 내놓았다.", topics=chips,
                 entities=["산업통상자원부"], story_id="s-controls"),
        _article(2, "ko", "zdnet.co.kr", 3, "삼성전자 HBM 공급 확대",
                 "삼성전자가 고대역폭메모리 HBM 공급을 늘린다. 반도체가 실적을 이끌었다.", topics=chips,
                 entities=["삼성전자"], alert=no_alert, story_id="s-hbm"),
        _article(3, "ko", "zdnet.co.kr", 5, "생성형 AI 서비스 경쟁",
                 "국내 포털들이 생성형 인공지능 서비스를 잇달아 출시했다.",
                 topics=[Topic(label="ai", score=0.8)], entities=["네이버"], alert=no_alert),
        _article(4, "zh", "36kr.com", 2, "美国升级芯片出口管制",
                 "美国商务部宣布升级对先进芯片的出口管制，多家企业被列入实体清单。", topics=chips,
                 entities=["美国商务部"], story_id="s-controls"),
        _article(5, "zh", "ithome.com", 4, "国产大模型发布新版本",
                 "多家公司发布了新一代大模型，人工智能竞争加剧。",
                 topics=[Topic(label="ai", score=0.7)], entities=["百度"], alert=no_alert),
        _article(6, "en", "example.com", 6, "TSMC expands advanced packaging",
                 "TSMC said it will expand CoWoS advanced packaging capacity next year.", topics=chips,
                 entities=["TSMC"], alert=no_alert),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def indexed(es_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings = isolated(es_settings, tmp_path_factory.mktemp("search"))
    index_articles(corpus(), settings)
    client = es_client(settings)
    client.indices.refresh(index=articles_alias(settings))
    yield settings
    client.indices.delete(index=f"{articles_alias(settings)}-v*")
    client.indices.delete_index_template(name=articles_alias(settings))


def ids(
    settings: Settings, query: str, *, sort: Sort = "relevance", size: int = 10, **filters: Any
) -> list[str]:
    hits = search_articles(settings, query, Filters(**filters), sort=sort, size=size).hits
    return [h.url.rsplit("/", 1)[1] for h in hits]


def test_korean_queries_match_inflected_forms(indexed: Settings) -> None:
    assert sorted(ids(indexed, "반도체를")) == ["1", "2"]  # 반도체를 / 반도체가: one stem
    assert ids(indexed, "수출통제 대응") == ["1"]  # words ANDed; nori splits 수출통제 like the text
    assert ids(indexed, "인공지능") == ["3"]


def test_chinese_and_english_queries(indexed: Settings) -> None:
    assert ids(indexed, "出口管制") == ["4"]
    assert ids(indexed, "芯片 -实体清单") == []
    assert ids(indexed, "人工智能") == ["5"]
    assert ids(indexed, "packaging TSMC") == ["6"]
    assert ids(indexed, '"advanced packaging"') == ["6"]


def test_hits_carry_metadata_and_highlighted_snippets(indexed: Settings) -> None:
    result = search_articles(indexed, "出口管制")
    assert result.total == 1
    (hit,) = result.hits
    assert (hit.site, hit.lang, hit.topics, hit.alert) == ("36kr.com", "zh", ["semiconductors"], True)
    assert hit.published == datetime(2026, 5, 2, 9, 0, tzinfo=UTC)
    assert hit.score and hit.score > 0
    assert hit.id == corpus()[3].id
    assert any("<em>出口管制</em>" in s or "<em>出口</em>" in s for s in hit.snippets)


def test_filters_and_sorting(indexed: Settings) -> None:
    assert ids(indexed, "", sort="date", size=3) == ["6", "3", "5"]
    assert ids(indexed, "", lang="zh", sort="date") == ["5", "4"]
    assert ids(indexed, "", topic="ai", sort="date") == ["3", "5"]
    assert ids(indexed, "", site="zdnet", sort="date") == ["3", "2"]  # a source name
    assert ids(indexed, "", site="zdnet.co.kr", sort="date") == ["3", "2"]  # or a host
    assert ids(indexed, "", entity="TSMC") == ["6"]
    assert ids(indexed, "", alert=True, sort="date") == ["4", "1"]
    assert ids(indexed, "", since="2026-05-02", until="2026-05-03", sort="date") == ["2", "4"]
    assert ids(indexed, "반도체", alert=False) == ["2"]


def test_stats(indexed: Settings) -> None:
    stats = article_stats(indexed)
    assert stats.total == 6
    assert {b.key: b.count for b in stats.topics} == {"semiconductors": 4, "ai": 2}
    assert {b.key: b.count for b in stats.langs} == {"ko": 3, "zh": 2, "en": 1}
    assert stats.sites[0].key == "zdnet.co.kr"
    assert [(b.key, b.count) for b in stats.days] == [(f"2026-05-0{d}", 1) for d in range(1, 7)]
    assert article_stats(indexed, "芯片", interval="month").days[0].count == 1


def test_stories_group_their_reports_across_languages(indexed: Settings) -> None:
    found = search_stories(indexed, "")
    assert found.total == 2  # articles without a story (indexed before stories) are left out
    assert [s.id for s in found.stories] == ["s-hbm", "s-controls"]  # latest report first
    by_id = {s.id: s for s in found.stories}
    story = by_id["s-controls"]
    assert story.articles == 2 and sorted(story.langs) == ["ko", "zh"]
    assert sorted(story.sites) == ["36kr.com", "etnews.com"]
    assert {t.lang: t.title for t in story.titles} == {
        "ko": "정부, 반도체 장비 수출통제 대응책 발표",
        "zh": "美国升级芯片出口管制",
    }
    assert story.first_seen == datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    assert story.last_seen == datetime(2026, 5, 2, 9, 0, tzinfo=UTC)
    assert story.alert_articles == 2 and by_id["s-hbm"].alert_articles == 0
    # A query selects stories by their reports; the story still shows only what matched.
    assert [s.id for s in search_stories(indexed, "出口管制").stories] == ["s-controls"]


@pytest.fixture
def cli(indexed: Settings, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setenv("NEWSMON_ES_URL", indexed.es_url)
    monkeypatch.setenv("NEWSMON_INDEX_PREFIX", indexed.index_prefix)
    get_settings.cache_clear()
    app = typer.Typer()
    for name, command in [("index", index_command), ("search", search_command), ("stats", stats_command)]:
        app.command(name)(command)
    app.command("reprocess")(reprocess_command)
    app.add_typer(kibana_app, name="kibana")
    return app


def test_cli_search_and_stats(cli: typer.Typer) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["search", "반도체", "--sort", "date", "--json"])
    assert result.exit_code == 0, result.output
    assert [h["site"] for h in json.loads(result.output)["hits"]] == ["zdnet.co.kr", "etnews.com"]
    table = runner.invoke(cli, ["search", "出口管制", "--since", "2026-05-01"])
    assert table.exit_code == 0, table.output
    assert "美国升级芯片出口管制" in table.output
    stats = runner.invoke(cli, ["stats", "--lang", "ko", "--json"])
    assert json.loads(stats.output)["total"] == 3
    listed = runner.invoke(cli, ["search", "--stories", "--json"])
    assert listed.exit_code == 0, listed.output
    assert {s["id"]: s["articles"] for s in json.loads(listed.output)["stories"]} == {
        "s-controls": 2,
        "s-hbm": 1,
    }
    table = runner.invoke(cli, ["search", "--stories"])
    assert "2 stories" in table.output and "s-controls" in table.output
    bad = runner.invoke(cli, ["search", "x", "--since", "someday"])
    assert bad.exit_code != 0


def test_cli_index_analyses_and_reprocess_writes_back_nothing_new(
    cli: typer.Typer, indexed: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`newsmon index FILES` takes the run's path (analysis, then indexing), into an index of its own."""
    fresh = isolated(indexed, tmp_path)
    monkeypatch.setenv("NEWSMON_INDEX_PREFIX", fresh.index_prefix)
    monkeypatch.setenv("NEWSMON_DATA_DIR", str(fresh.data_dir))
    get_settings.cache_clear()
    runner = CliRunner()
    raw = [a.model_copy(update={"topics": [], "alert": AlertDecision()}) for a in corpus()]
    jsonl = tmp_path / "articles.jsonl"
    jsonl.write_text("".join(a.model_dump_json() + "\n" for a in raw) + "not json\n")
    try:
        result = runner.invoke(cli, ["index", str(jsonl), "--setup", "--json"])
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["setup"]["created"] is True
        assert (report["index"]["analyzed"], report["index"]["created"]) == (6, 6)
        assert report["index"]["bad_inbox_line"] == 1
        client = es_client(fresh)
        client.indices.refresh(index=articles_alias(fresh))
        stored = [h["_source"] for h in client.search(index=articles_alias(fresh), size=10)["hits"]["hits"]]
        assert all(doc["analyzer"] for doc in stored)  # nothing indexed unanalysed
        assert any(doc["topics"] for doc in stored)
        again = runner.invoke(cli, ["reprocess", "--site", "etnews.com", "--json"])
        assert again.exit_code == 0, again.output
        # The same analyzer over the same text: nothing to write back.
        assert json.loads(again.output) == {"read": 1, "updated": 0, "unchanged": 1, "failed": 0}
    finally:
        client = es_client(fresh)
        client.indices.delete(index=f"{articles_alias(fresh)}-v*", ignore_unavailable=True)
        client.options(ignore_status=404).indices.delete_index_template(name=articles_alias(fresh))
    nothing = runner.invoke(cli, ["index"])
    assert nothing.exit_code != 0
