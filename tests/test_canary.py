"""The site canary: extraction checks against a real HTTP server, the collapse rule, the mail."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from helpers.smtpsink import SmtpSink

from newsmon.canary import (
    SiteCheck,
    check_site,
    collapse,
    compose_report,
    extraction_problems,
    mail_operators,
)
from newsmon.crawlers.check import check_source, http_fetcher
from newsmon.crawlers.demo_server import DemoServer, demo_sources, serve_demo
from newsmon.crawlers.registry import Source
from newsmon.errors import NewsmonError
from newsmon.index.localnode.launcher import free_port
from newsmon.settings import Settings, load_settings

DAY = date(2026, 5, 20)
# Long enough for the extractor's minimum body (CJK characters weigh 3).
BODY = "반도체 수출통제 강화로 장비 업체들의 중국 매출 비중이 빠르게 줄고 있다. " * 8


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "var", alert_to=["ops@example.org"])


@pytest.fixture
def demo() -> Iterator[DemoServer]:
    with serve_demo() as server:
        yield server


def _problems(source: Source, settings: Settings) -> list[str]:
    return extraction_problems(check_source(source, http_fetcher(settings.user_agent), pause_s=0))


def _page(body: str):
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_plain(200, body.encode(), "text/html; charset=utf-8")  # type: ignore[attr-defined]

    return route


def test_every_demo_site_passes(demo: DemoServer, settings: Settings) -> None:
    for source in demo_sources(demo.url):
        assert _problems(source, settings) == [], source.name


def test_a_dead_feed_is_reported_even_when_the_site_still_yields_articles(settings: Settings) -> None:
    gone = {"/ko/rss.xml": lambda h: h.send_plain(404, b"gone")}
    with serve_demo(routes=gone) as server:
        source = next(s for s in demo_sources(server.url) if s.name == "demo-ko-tech")
        assert _problems(source, settings) == [f"feed {server.url}/ko/rss.xml: HTTP 404"]


def test_missing_date_and_disallowed_pages(settings: Settings) -> None:
    title = "<title>수출통제 여파</title>"
    undated = f"<html><head>{title}</head><body><h1>수출통제 여파</h1><p>{BODY}</p></body></html>"
    routes = {
        "/list.html": _page('<html><body><a href="/news/123456.html">기사</a></body></html>'),
        "/news/123456.html": _page(undated),
    }
    with serve_demo(routes=routes) as server:
        undated_site = Source(name="undated", lang="ko", feeds=[], list_pages=[f"{server.url}/list.html"])
        private = Source(
            name="private", lang="ko", feeds=[], list_pages=[f"{server.url}/private/drafts.html"]
        )
        assert _problems(undated_site, settings) == [f"article {server.url}/news/123456.html: no date"]
        assert _problems(private, settings) == [
            f"list {server.url}/private/drafts.html: disallowed by robots.txt",
            "no recent article could be extracted",
        ]


def test_an_unreachable_site(settings: Settings) -> None:
    feed = f"http://127.0.0.1:{free_port()}/rss.xml"  # nothing listens there
    problems = _problems(Source(name="down", lang="zh", feeds=[feed]), settings)
    assert problems[0].startswith(f"feed {feed}: ") and "refused" in problems[0]
    assert problems[1:] == ["no recent article could be extracted"]


def test_collapse_rule() -> None:
    steady = {DAY - timedelta(days=i): 20 for i in range(1, 15)}
    assert collapse(steady | {DAY: 15}, DAY) == (20.0, None)
    baseline, problem = collapse(steady | {DAY: 2}, DAY)
    assert baseline == 20.0 and problem and "2 on 2026-05-20" in problem
    # Too small a site to judge, and a new site without history: no alarm.
    assert collapse({DAY - timedelta(days=i): 2 for i in range(1, 15)}, DAY)[1] is None
    assert collapse({DAY - timedelta(days=1): 30}, DAY) == (0.0, None)


def test_report_mail_reaches_the_operators(settings: Settings) -> None:
    ok = SiteCheck(source="fine")
    broken = SiteCheck(source="etnews", article_url="https://etnews.com/1", problems=["article x: no date"])
    assert compose_report(settings, [ok], []) is None
    with SmtpSink() as sink:
        smtp = settings.model_copy(update=sink.settings())
        assert mail_operators(smtp, [ok, broken], ["spool file not replayed for days: a.jsonl"])
        assert not mail_operators(smtp, [ok], [])
        (mail,) = sink.wait_for(1)
    assert mail.rcpt_tos == ["ops@example.org"]
    assert mail.message["Subject"] == "[newsmon canary] 1 of 2 sites broken, 1 data-dir warnings"
    text = mail.message.get_content()
    assert "etnews" in text and "no date" in text and "a.jsonl" in text and "fine" not in text
    with pytest.raises(NewsmonError, match="NEWSMON_ALERT_TO"):
        mail_operators(settings.model_copy(update={"alert_to": []}), [broken], [])


@pytest.mark.integration
def test_check_site_compares_the_index_history(
    es_settings: Settings, tmp_path: Path, demo: DemoServer
) -> None:
    from newsmon.index.bulk import index_articles
    from newsmon.index.client import articles_alias, es_client
    from newsmon.models import Article

    settings = es_settings.model_copy(update={"data_dir": tmp_path / "var", "index_prefix": "canary-history"})
    now = datetime(2026, 5, 21, 8, tzinfo=UTC)
    articles = [
        Article(
            url=f"https://collapsing.example/{d}-{n}",
            canonical_url=f"https://collapsing.example/{d}-{n}",
            source="demo-zh-tech",
            title=f"t{d}-{n}",
            text=BODY,
            published=now - timedelta(days=d, hours=2),
        )
        for d in range(2, 16)
        for n in range(6)
    ]
    index_articles(articles, settings)
    es_client(settings).indices.refresh(index=articles_alias(settings))
    source = next(s for s in demo_sources(demo.url) if s.name == "demo-zh-tech")
    check = check_site(settings, source, pause_s=0, now=now)
    assert (check.day, check.count, check.baseline) == ("2026-05-20", 0, 6.0)
    assert check.article_url and len(check.problems) == 1 and "collapsed" in check.problems[0]
