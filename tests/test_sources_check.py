"""``check_sources`` against the demo site (real HTTP on 127.0.0.1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsmon.crawlers.check import check_sources, http_fetcher
from newsmon.crawlers.demo_server import DemoServer, demo_sources, serve_demo
from newsmon.crawlers.registry import Source
from newsmon.settings import load_settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo() -> DemoServer:
    with serve_demo() as server:
        yield server


def test_demo_sources_pass_the_check(demo: DemoServer, tmp_path: Path) -> None:
    seen = []
    results = check_sources(
        demo_sources(demo.url), load_settings(data_dir=tmp_path), progress=seen.append, pause_s=0
    )
    assert [r.name for r in seen] == ["demo-ko-tech", "demo-ko-legacy", "demo-zh-tech"]
    for result in results:
        assert result.ok, result
        assert all(p.status == 200 for p in result.pages if p.kind != "article"), result.pages
    ko, legacy, zh = results
    assert [(p.kind, p.links) for p in ko.pages[:3]] == [("feed", 5), ("sitemap", 5), ("list", 5)]
    assert ko.sample_url and ko.sample_url.endswith("/ko/news/1004.html?utm_source=rss&utm_medium=feed")
    assert ko.newest and ko.newest.isoformat() == "2025-03-08T02:20:00+00:00"
    assert (
        legacy.title == "정부, 반도체 수출통제 대응 TF 가동…기업 애로 접수 창구 개설"
    )  # EUC-KR page, site rule
    assert zh.pages[1].note.startswith("index of 1 sitemaps")


def test_broken_source_is_reported(demo: DemoServer, tmp_path: Path) -> None:
    source = Source(
        name="broken",
        lang="zh",
        feeds=[f"{demo.url}/zh/missing.xml", f"{demo.url}/zh/list/chips.html"],
        list_pages=[f"{demo.url}/private/list.html"],
    )
    (result,) = check_sources([source], load_settings(data_dir=tmp_path), pause_s=0)
    missing, not_a_feed, private = result.pages[:3]
    assert missing.status == 404 and missing.error == "HTTP 404"
    assert not_a_feed.status == 200 and not_a_feed.error.startswith("bad_feed")
    assert private.status is None and private.error == "disallowed by robots.txt"
    assert not result.ok


def test_unreachable_host() -> None:
    got = http_fetcher("newsmon-test")("http://127.0.0.1:9/nothing-listens-here")
    assert got.status is None and got.error
