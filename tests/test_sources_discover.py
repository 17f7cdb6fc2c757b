"""``newsmon sources discover``: an outlet's feeds, sitemaps and list pages found from its homepage
alone, on local sites that publish them only through ``<link rel=alternate>``, ``robots.txt`` and
a link on the homepage."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from rich.table import Table
from typer.testing import CliRunner

from newsmon.crawlers.autodiscover import article_pattern, discover_outlet
from newsmon.crawlers.check import http_fetcher
from newsmon.crawlers.cli import sources_app
from newsmon.crawlers.demo_server import serve_demo
from newsmon.crawlers.registry import Source, parse_sources
from newsmon.crawlers.run import CrawlStats, crawl
from newsmon.crawlers.store import CrawlStore
from newsmon.pipeline import ProcessStats, RunSummary, summary_table
from newsmon.settings import get_settings, load_settings

ARTICLES = [f"/news/articleView.html?idxno={n}" for n in (101, 102, 103, 104)]


def _site(root: Path, feed_type: str) -> None:
    """A homepage that advertises its feed (at a path no CMS uses), a robots.txt naming a Google
    News sitemap, and a section page linked from the homepage."""
    (root / "section" / "chips").mkdir(parents=True)
    (root / "feeds").mkdir()
    (root / "maps").mkdir()
    (root / "index.html").write_text(
        "<html><head><title>Outlet</title>"
        f'<link rel="alternate" type="{feed_type}" href="/feeds/main-feed">'
        "</head><body><a href='/section/chips/'>반도체</a> <a href='/about.html'>회사소개</a></body></html>",
        encoding="utf-8",
    )
    links = "".join(f"<li><a href='{path}'>기사 {i}</a></li>" for i, path in enumerate(ARTICLES))
    (root / "section" / "chips" / "index.html").write_text(
        f"<html><body><main><ul>{links}</ul></main></body></html>", encoding="utf-8"
    )
    (root / "robots.txt").write_text(
        "User-agent: *\nAllow: /\nSitemap: /maps/google-news\n", encoding="utf-8"
    )


def _fill(root: Path, base: str, feed_type: str) -> None:
    urls = [base + path for path in ARTICLES]
    if feed_type.endswith("atom+xml"):
        entries = "".join(
            f"<entry><title>기사 {i}</title><id>{u}</id><link href='{u}'/>"
            f"<updated>2025-03-0{i + 1}T09:00:00Z</updated></entry>"
            for i, u in enumerate(urls)
        )
        feed = (
            f'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>{entries}</feed>'
        )
    else:
        items = "".join(f"<item><title>기사 {i}</title><link>{u}</link></item>" for i, u in enumerate(urls))
        feed = f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'
    (root / "feeds" / "main-feed").write_text(feed, encoding="utf-8")
    news = "".join(
        f"<url><loc>{u}</loc><news:news><news:publication_date>2025-03-01</news:publication_date>"
        f"<news:title>기사</news:title></news:news></url>"
        for u in urls
    )
    (root / "maps" / "google-news").write_text(
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        f'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">{news}</urlset>',
        encoding="utf-8",
    )
    robots = (root / "robots.txt").read_text(encoding="utf-8").replace("/maps/", f"{base}/maps/")
    (root / "robots.txt").write_text(robots, encoding="utf-8")


@pytest.mark.parametrize("feed_type", ["application/rss+xml", "application/atom+xml"])
def test_discovery_finds_feed_news_sitemap_list_page_and_pattern(tmp_path: Path, feed_type: str) -> None:
    _site(tmp_path, feed_type)
    with serve_demo(root=tmp_path) as server:
        base = server.url.rstrip("/")
        _fill(tmp_path, base, feed_type)
        found = discover_outlet(base + "/", http_fetcher("newsmon-test"))
    assert found.feeds == [f"{base}/feeds/main-feed"]
    assert found.sitemaps == found.news_sitemaps == [f"{base}/maps/google-news"]
    assert found.list_pages == [f"{base}/section/chips/"]
    assert found.article_pattern == re.escape(base.split("//")[1]) + r"/news/articleView\.html\?idxno=\d+"


def test_the_command_prints_an_entry_the_registry_accepts(tmp_path: Path) -> None:
    _site(tmp_path, "application/rss+xml")
    with serve_demo(root=tmp_path) as server:
        base = server.url.rstrip("/")
        _fill(tmp_path, base, "application/rss+xml")
        result = CliRunner().invoke(sources_app, ["discover", base + "/", "--name", "outlet", "--lang", "ko"])
    assert result.exit_code == 0, result.output
    [source] = parse_sources(result.stdout, "discovered")
    assert source.name == "outlet" and source.feeds == [f"{base}/feeds/main-feed"]
    assert source.article_pattern and source.sample_articles
    assert all(re.search(source.article_pattern, url) for url in source.sample_articles)
    assert yaml.safe_load(result.stdout)[0]["confidence"] == "guessed"


def test_pattern_generalises_ids_and_needs_a_majority() -> None:
    urls = [f"https://www.etnews.com/2025030{n}000123" for n in range(1, 5)]
    assert article_pattern(urls) == r"etnews\.com/\d+"
    assert (
        article_pattern(["https://a.example/x/1", "https://a.example/y/2", "https://a.example/z/3"]) is None
    )


ARTICLE_PAGES = [f"/a/{n}.html" for n in (101, 102, 103, 104)]


def _site_with_articles(site: Path) -> None:
    """The RSS site of ``_site``, whose feed lists four real article pages (dated, with a body)."""
    site.mkdir()
    _site(site, "application/rss+xml")
    (site / "a").mkdir()
    body = "반도체 장비 수출 허가 심사가 길어지면서 업계의 납기 차질 우려가 커지고 있다. " * 12
    for path in ARTICLE_PAGES:
        (site / path.lstrip("/")).write_text(
            f"<html><head><title>수출 허가 심사 {path}</title>"
            '<meta property="article:published_time" content="2025-03-01T09:00:00+09:00"></head>'
            f"<body><article><h1>수출 허가 심사 {path}</h1><p>{body}</p></article></body></html>",
            encoding="utf-8",
        )


def _publish_feed(site: Path, base: str) -> None:
    items = "".join(f"<item><title>기사 {p}</title><link>{base}{p}</link></item>" for p in ARTICLE_PAGES)
    (site / "feeds" / "main-feed").write_text(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>',
        encoding="utf-8",
    )


@pytest.mark.integration
@pytest.mark.parametrize(
    ("kind", "path"),
    [("feed", "/rss/gone.xml"), ("sitemap", "/maps/gone.xml"), ("sitemap", "/section/chips/")],
    ids=["feed-404", "sitemap-404", "sitemap-not-a-sitemap"],
)
def test_a_crawl_whose_feed_or_sitemap_fails_heals_through_the_homepage(
    tmp_path: Path, kind: str, path: str
) -> None:
    """The configured feed or sitemap answers 404, or the sitemap is an HTML page: the crawl
    finds the feed the homepage advertises, collects the articles through it, and its summary
    names what failed and its replacement."""
    site = tmp_path / "site"
    _site_with_articles(site)
    with serve_demo(root=site) as server:
        base = server.url.rstrip("/")
        _publish_feed(site, base)
        configured = {"feeds": [base + path]} if kind == "feed" else {"feeds": [], "sitemaps": [base + path]}
        source = Source(
            name=f"moved-{kind}",
            lang="ko",
            homepage=base + "/",
            allowed_domains=["127.0.0.1"],
            **configured,
        )
        stats = crawl([source], load_settings(data_dir=tmp_path / "var"), tmp_path / "out.jsonl")
    assert stats.articles_new == 4
    assert stats.healed == {base + path: f"{base}/feeds/main-feed"}
    rows = {row[0]: row[1] for row in _rows(summary_table(_summary(stats)))}
    assert rows[f"{kind} failed: {base}{path}"] == f"replaced by {base}/feeds/main-feed"


@pytest.mark.integration
def test_a_failed_feed_heals_through_the_sitemap_robots_txt_names(tmp_path: Path) -> None:
    """An outlet that dropped its feeds (the homepage advertises none, the common feed paths
    answer 404) but names a news sitemap in robots.txt: the crawl collects the articles through
    that sitemap, and the summary names it as the replacement."""
    site = tmp_path / "site"
    _site_with_articles(site)
    (site / "index.html").write_text("<html><body><a href='/section/chips/'>반도체</a></body></html>")
    with serve_demo(root=site) as server:
        base = server.url.rstrip("/")
        urls = "".join(f"<url><loc>{base}{path}</loc></url>" for path in ARTICLE_PAGES)
        (site / "maps" / "google-news").write_text(
            f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>',
            encoding="utf-8",
        )
        source = Source(
            name="feedless",
            lang="ko",
            homepage=base + "/",
            feeds=[base + "/rss/gone.xml"],
            allowed_domains=["127.0.0.1"],
        )
        stats = crawl([source], load_settings(data_dir=tmp_path / "var"), tmp_path / "out.jsonl")
    assert stats.articles_new == 4
    assert stats.healed == {f"{base}/rss/gone.xml": f"{base}/maps/google-news"}
    rows = {row[0]: row[1] for row in _rows(summary_table(_summary(stats)))}
    assert rows[f"feed failed: {base}/rss/gone.xml"] == f"replaced by {base}/maps/google-news"


@pytest.mark.integration
def test_a_feed_quiet_for_n_runs_heals_through_the_homepage(tmp_path: Path) -> None:
    """The configured feed still answers but stopped at one old article (the outlet moved its
    feed): after ``crawl_quiet_runs`` runs with nothing new, the next run reads the homepage and
    collects the other articles through the feed it advertises."""
    site = tmp_path / "site"
    _site_with_articles(site)
    with serve_demo(root=site) as server:
        base = server.url.rstrip("/")
        _publish_feed(site, base)
        (site / "rss").mkdir()
        (site / "rss" / "old.xml").write_text(
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>old</title>'
            f"<item><title>old</title><link>{base}{ARTICLE_PAGES[0]}</link></item></channel></rss>",
            encoding="utf-8",
        )
        source = Source(
            name="stale-feed",
            lang="ko",
            homepage=base + "/",
            feeds=[base + "/rss/old.xml"],
            allowed_domains=["127.0.0.1"],
        )
        settings = load_settings(data_dir=tmp_path / "var", crawl_quiet_runs=2)
        runs = [crawl([source], settings, tmp_path / f"out{n}.jsonl") for n in range(4)]
    # Run 1 brings the old article; runs 2 and 3 nothing (quiet 1, then 2); run 4 heals.
    assert [run.articles_new for run in runs] == [1, 0, 0, 3]
    assert [run.healed for run in runs[:3]] == [{}, {}, {}]
    assert runs[3].healed == {f"{base}/rss/old.xml": f"{base}/feeds/main-feed"}
    assert runs[3].healed_why == {f"{base}/rss/old.xml": "feed quiet for 2 runs"}


@pytest.mark.parametrize("state", ["embedded", "shared"])
def test_quiet_runs_are_counted_per_url_and_reset_by_news(
    tmp_path: Path, request: pytest.FixtureRequest, state: str
) -> None:
    """In the source's SQLite file, or its rows of the shared PostgreSQL (another source's
    counts are its own)."""

    def open_source(name: str) -> CrawlStore:
        if state == "shared":
            return CrawlStore.open_shared(request.getfixturevalue("state_url"), name)
        return CrawlStore(tmp_path / name / "state.sqlite")

    store = open_source("a")
    assert [store.note_run("https://a.example/rss", 0) for _ in range(3)] == [1, 2, 3]
    assert store.note_run("https://a.example/sitemap.xml", 0) == 1
    store.close()
    store = open_source("a")  # the counts outlive the run
    assert store.quiet_runs("https://a.example/rss") == 3
    assert store.note_run("https://a.example/rss", 2) == 0
    assert store.quiet_runs("https://a.example/sitemap.xml") == 1
    store.close()
    other = open_source("b")
    assert other.quiet_runs("https://a.example/sitemap.xml") == 0
    other.close()


@pytest.mark.integration
def test_check_fix_writes_the_corrected_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`sources check NAME --fix`: the failing entry gets what its homepage publishes, passes the
    check again, and is written back as live-checked; the file's other entries and comments stay."""
    site = tmp_path / "site"
    _site_with_articles(site)
    with serve_demo(root=site) as server:
        base = server.url.rstrip("/")
        _publish_feed(site, base)
        registry = tmp_path / "sources.yaml"
        registry.write_text(
            "# our outlets\nsources:\n"
            f"  - name: moved\n    lang: ko\n    homepage: {base}/\n    feeds: ['{base}/rss/gone.xml']\n"
            "    allowed_domains: [127.0.0.1]\n    rate: 50\n\n"
            "  - name: other  # kept as it is\n    lang: zh\n    feeds: ['https://other.example/rss']\n",
            encoding="utf-8",
        )
        monkeypatch.setenv("NEWSMON_SOURCES", str(registry))
        get_settings.cache_clear()
        result = CliRunner().invoke(sources_app, ["check", "moved", "--fix"])
    assert result.exit_code == 0, result.output
    text = registry.read_text(encoding="utf-8")
    assert text.startswith("# our outlets") and "- name: other  # kept as it is" in text
    [moved, other] = parse_sources(text, "fixed")
    assert moved.feeds == [f"{base}/feeds/main-feed"] and moved.confidence == "live-checked"
    assert other.feeds == ["https://other.example/rss"]


def _summary(stats: CrawlStats) -> RunSummary:
    return RunSummary(crawl=vars(stats), process=ProcessStats(), alerts={}, seconds=0.0)


def _rows(table: Table) -> list[tuple[str, str]]:
    columns = [list(column.cells) for column in table.columns]
    return list(zip(*columns, strict=True))
