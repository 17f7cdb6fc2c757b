"""The walking skeleton, for real: demo site over HTTP -> Scrapy -> NLP -> Elasticsearch -> search."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from newsmon.index.localnode.launcher import free_port
from newsmon.pipeline import pending_inbox_files, run_once
from newsmon.settings import REPO_ROOT, Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def demo_settings(es_settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    prefix = "e2e-" + request.node.name.lower().replace("_", "-")[:40]
    # A free demo port: two suites on one machine must not collide on the default one.
    update = {"data_dir": tmp_path / "var", "index_prefix": prefix, "demo_port": free_port()}
    return es_settings.model_copy(update=update)


def test_demo_run_makes_articles_searchable_once(demo_settings: Settings) -> None:
    from newsmon.index.search import Filters, search_articles

    first = run_once(demo_settings, demo=True)
    assert first.crawl["articles_new"] >= 10
    assert first.process.analyzed == first.crawl["articles_new"]
    assert first.process.indexed.get("created", 0) == first.crawl["articles_new"]
    assert pending_inbox_files(demo_settings) == []

    ko = search_articles(demo_settings, "수출통제", Filters(lang="ko"))
    zh = search_articles(demo_settings, "出口管制", Filters(lang="zh"))
    assert ko.hits and all(hit.lang == "ko" for hit in ko.hits)
    assert zh.hits and all(hit.lang == "zh" for hit in zh.hits)
    assert any("수출" in " ".join(hit.snippets) for hit in ko.hits)

    # Nothing new on the site: no article page is fetched again, nothing is re-created.
    second = run_once(demo_settings, demo=True)
    assert second.crawl["articles_new"] == 0
    assert second.process.indexed.get("created", 0) == 0
    total = search_articles(demo_settings, "", size=100).total
    assert total == first.crawl["articles_new"]


def test_the_installed_package_runs_the_main_job_then_searches(es_settings: Settings, tmp_path: Path) -> None:
    """`pip install .` puts one top-level package, newsmon, and the main job runs from that
    install (its data, models, demo site and DAGs inside it), not from the checkout."""
    site = tmp_path / "site"
    install = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-deps",
        "--no-compile",
        "--target",
        str(site),
    ]
    done = subprocess.run([*install, str(REPO_ROOT)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert {p.name for p in site.iterdir()} - {"bin"} == {"newsmon", "newsmon-0.1.0.dist-info"}
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "NEWSMON_ES_URL": es_settings.es_url,
        "NEWSMON_DATA_DIR": str(tmp_path / "var"),
        "NEWSMON_INDEX_PREFIX": "e2e-cli",
        "NEWSMON_DEMO_PORT": str(free_port()),
    }
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import newsmon.crawlers.run as m, newsmon.airflow_local as a; print(m.__file__, a.DAGS_FOLDER)",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert where.returncode == 0 and all(p.startswith(str(site)) for p in where.stdout.split()), where
    newsmon = [sys.executable, "-m", "newsmon.cli"]
    run = subprocess.run(
        [*newsmon, "run", "--demo"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "articles new" in run.stdout
    found = subprocess.run(
        [*newsmon, "search", "出口管制", "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert found.returncode == 0, found.stderr[-2000:]
    hits = json.loads(found.stdout)["hits"]
    assert hits and all(h["lang"] == "zh" for h in hits)
    assert any("出口" in h["title"] + " ".join(h["snippets"]) for h in hits)


BRIEF = (
    "<html><head><title>Hanoi lab orders quantum sensors</title></head><body>"
    "<nav><a href='/'>Home</a> <a href='/news'>News</a></nav>"
    "<h1>Hanoi lab orders quantum sensors</h1>"
    "<p>A Hanoi research lab said on Monday it had ordered twelve quantum magnetometers from a "
    "Danish maker, its first purchase of such sensors, for a geology survey due to start in May.</p>"
    "<p>The lab did not disclose the price. Deliveries are expected within eight weeks.</p>"
    "<ul><li><a href='/news/1'>Other story one</a></li><li><a href='/news/2'>Other story two</a></li>"
    "<li><a href='/news/3'>Other story three</a></li></ul></body></html>"
)


def test_a_short_brief_announced_by_a_feed_is_indexed(es_settings: Settings, tmp_path: Path) -> None:
    """A one-paragraph news brief is an article: the feed says so, and no gate may drop it."""
    from newsmon.crawlers.demo_server import serve_demo
    from newsmon.index.search import search_articles

    def respond(body: str, ctype: str):  # type: ignore[no-untyped-def]
        return lambda handler: handler.send_plain(200, body.encode(), ctype, {})

    settings = es_settings.model_copy(update={"data_dir": tmp_path / "var", "index_prefix": "e2e-brief"})
    routes = {"/news/brief-1.html": respond(BRIEF, "text/html")}
    with serve_demo(root=tmp_path, routes=routes) as server:
        link = f"{server.url}/news/brief-1.html"
        routes["/feed.xml"] = respond(  # the server reads this same dict
            "<?xml version='1.0'?><rss version='2.0'><channel><title>t</title><item>"
            f"<title>Hanoi lab orders quantum sensors</title><link>{link}</link>"
            "<pubDate>Mon, 30 Nov 2026 08:00:00 GMT</pubDate></item></channel></rss>",
            "application/rss+xml",
        )
        registry = tmp_path / "sources.yaml"
        registry.write_text(
            f"sources:\n  - name: briefs\n    lang: en\n    homepage: {server.url}/\n"
            f"    feeds: ['{server.url}/feed.xml']\n",
            encoding="utf-8",
        )
        summary = run_once(settings, sources_path=registry)
    assert summary.error is None and summary.crawl["articles_new"] == 1
    found = search_articles(settings, "magnetometers")
    assert found.total == 1 and found.hits[0].title == "Hanoi lab orders quantum sensors"
