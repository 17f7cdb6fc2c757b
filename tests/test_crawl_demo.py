"""Real Scrapy crawls (child process) of the offline demo site served on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers.articles import DEMO_ARTICLES

from newsmon.crawlers.crawl_process import ORPHAN_GRACE_S, ORPHAN_POLL_S
from newsmon.crawlers.demo_server import DEMO_ROOT, DemoServer, demo_sources, serve_demo
from newsmon.crawlers.registry import Source
from newsmon.crawlers.run import CrawlStats, crawl
from newsmon.crawlers.store import (
    CrawlStore,
    source_lock,
    stored_sources,
)
from newsmon.errors import NewsmonError
from newsmon.layout import DataDir
from newsmon.locks import try_lock
from newsmon.models import Article
from newsmon.pipeline import crawl_to_inbox
from newsmon.settings import REPO_ROOT, Settings, load_settings

pytestmark = pytest.mark.integration
ARTICLE_PATH = re.compile(r"^/(?:ko/news|legacy/news|zh/a)/")
FEED_HUB = "/ko/special/export-control.html"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "var")


@pytest.fixture(scope="module")
def demo() -> DemoServer:
    with serve_demo() as server:
        yield server


def read_articles(path: Path) -> list[Article]:
    if not path.exists():
        return []
    return [Article.model_validate_json(line) for line in path.read_text(encoding="utf-8").splitlines()]


def article_hits(server: DemoServer) -> dict[str, int]:
    return {p: n for p, n in server.hits.items() if ARTICLE_PATH.match(p)}


def test_demo_crawl_extracts_every_article(demo: DemoServer, settings: Settings, tmp_path: Path) -> None:
    lines: list[str] = []
    stats = crawl(demo_sources(demo.url), settings, tmp_path / "out.jsonl", progress=lines.append)
    articles = read_articles(tmp_path / "out.jsonl")
    assert stats.articles_new == len(articles) == DEMO_ARTICLES
    assert stats.errors == {} and stats.exit_code == 0
    assert stats.skipped == {"http_404": 1, "robots": 1}
    assert demo.hits["/private/a/2025/0310/9001.html"] == 0  # robots.txt disallows it
    by_url = {a.canonical_url.removeprefix(demo.url): a for a in articles}
    assert len(by_url) == DEMO_ARTICLES  # tracking parameters (utm_*, spm) stripped, no duplicates
    assert "list_like" in by_url.pop(FEED_HUB).warnings
    for article in by_url.values():
        assert article.warnings == []
        assert article.title and len(article.text) > 150 and "\n" in article.text
        assert article.published is not None and article.published.tzinfo is not None
        assert article.lang in ("ko", "zh") and article.source.startswith("demo-")
    euc_kr_wrong_charset = by_url["/legacy/news/2002.html"]
    assert euc_kr_wrong_charset.title == "수도권 데이터센터 전력 부족…지방 분산 유도책 나온다"
    assert euc_kr_wrong_charset.published == datetime(2025, 3, 6, 1, 5, tzinfo=UTC)  # KST page, no zone
    assert "저작권자" not in euc_kr_wrong_charset.text  # the site rule's drop selector
    gbk = by_url["/zh/a/2025/0306/3003.html"]
    assert gbk.title == "H20芯片出口许可收紧 国内云厂商加速转向昇腾" and "昇腾" in gbk.text
    assert by_url["/ko/news/1001.html"].authors == ["김민준"]
    assert any(line.startswith("crawl process pid=") for line in lines)
    assert any(line.startswith("new ") for line in lines)


def test_second_run_fetches_no_article_page(demo: DemoServer, settings: Settings, tmp_path: Path) -> None:
    sources = demo_sources(demo.url)
    crawl(sources, settings, tmp_path / "one.jsonl")
    before = article_hits(demo)
    stats = crawl(sources, settings, tmp_path / "two.jsonl")
    assert article_hits(demo) == before
    assert (stats.articles_new, stats.articles_updated, stats.articles_unchanged) == (0, 0, DEMO_ARTICLES)
    assert stats.scrapy["httpcache/revalidate"] >= 5  # feeds, sitemaps, list pages answered 304
    assert read_articles(tmp_path / "two.jsonl") == []


def test_new_and_updated_articles_are_noticed(settings: Settings, tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(DEMO_ROOT, site)
    with serve_demo(root=site) as server:
        sources = [s for s in demo_sources(server.url) if s.name == "demo-zh-tech"]
        first = crawl(sources, settings, tmp_path / "one.jsonl")
        assert first.articles_new == 6
        # The outlet edits one story (announced by a newer sitemap lastmod) and publishes another.
        page = site / "zh/a/2025/0309/3006.html"
        page.write_text(
            page.read_text(encoding="utf-8").replace("一千公里", "一千二百公里"), encoding="utf-8"
        )
        sitemap = site / "zh/sitemap-news.xml"
        sitemap.write_text(
            sitemap.read_text(encoding="utf-8").replace(
                "<lastmod>2025-03-09T13:45:00+08:00", "<lastmod>2025-03-10T08:00:00+08:00"
            ),
            encoding="utf-8",
        )
        fresh = site / "zh/a/2025/0310/3007.html"
        fresh.parent.mkdir(parents=True)
        fresh.write_text(
            page.read_text(encoding="utf-8")
            .replace("固态电池", "钠离子电池")
            .replace("0309/3006", "0310/3007"),
            encoding="utf-8",
        )
        chips = site / "zh/list/chips.html"
        chips.write_text(
            chips.read_text(encoding="utf-8").replace(
                '<div class="news-list">',
                '<div class="news-list"><h3><a href="/zh/a/2025/0310/3007.html">钠离子电池</a></h3>',
            ),
            encoding="utf-8",
        )
        second = crawl(sources, settings, tmp_path / "two.jsonl")
        assert (second.articles_new, second.articles_updated, second.articles_unchanged) == (1, 1, 5)
        assert server.hits["/zh/a/2025/0308/3005.html"] == 1
        changed = {a.canonical_url.removeprefix(server.url): a for a in read_articles(tmp_path / "two.jsonl")}
        assert set(changed) == {"/zh/a/2025/0309/3006.html", "/zh/a/2025/0310/3007.html"}
        assert "一千二百公里" in changed["/zh/a/2025/0309/3006.html"].text


def test_since_and_feeds_only(demo: DemoServer, settings: Settings, tmp_path: Path) -> None:
    since = datetime(2025, 3, 6, tzinfo=UTC)
    stats = crawl(demo_sources(demo.url), settings, tmp_path / "since.jsonl", since=since, feeds_only=True)
    articles = read_articles(tmp_path / "since.jsonl")
    assert articles and all(a.published and a.published >= since for a in articles)
    # feeds only: the legacy outlet has no feed, so none of its (list page) articles appear
    assert not any("/legacy/" in a.url for a in articles)
    assert stats.skipped["before_since"] >= 1
    published = sorted(a.canonical_url.rsplit("/", 1)[1] for a in articles)
    assert published == ["1003.html", "1004.html", "3003.html", "3004.html", "3005.html", "3006.html"]


def test_killed_crawl_then_rerun_loses_and_duplicates_nothing(settings: Settings, tmp_path: Path) -> None:
    with serve_demo(delay=0.3) as server:  # slow enough to be killed half-way
        sources = demo_sources(server.url)
        killed: list[int] = []

        def kill_after_two(line: str) -> None:
            if match := re.match(r"crawl process pid=(\d+)", line):
                killed.append(int(match[1]))
            elif line.startswith("new ") and len(killed) == 1:
                killed.append(0)
            elif line.startswith("new ") and len(killed) == 2:
                os.kill(killed[0], signal.SIGKILL)
                killed.append(0)

        first = crawl(sources, settings, tmp_path / "one.jsonl", progress=kill_after_two)
        assert first.exit_code == -signal.SIGKILL and first.errors.get("crawl_process") == 1
        assert 2 <= first.articles_new < DEMO_ARTICLES
        second = crawl(sources, settings, tmp_path / "two.jsonl")
    ids = [a.id for a in read_articles(tmp_path / "one.jsonl") + read_articles(tmp_path / "two.jsonl")]
    assert len(ids) == len(set(ids)) == DEMO_ARTICLES
    assert first.articles_new + second.articles_new == DEMO_ARTICLES


def test_an_extraction_worker_killed_mid_crawl_loses_no_page(settings: Settings, tmp_path: Path) -> None:
    with serve_demo(delay=0.3) as server:
        sources = demo_sources(server.url)
        crawl_pid: list[int] = []

        def kill_the_worker(line: str) -> None:
            if match := re.match(r"crawl process pid=(\d+)", line):
                crawl_pid.append(int(match[1]))
            elif line.startswith("new ") and len(crawl_pid) == 1:
                [worker] = _children(crawl_pid[0])
                os.kill(worker, signal.SIGKILL)
                crawl_pid.append(worker)

        one_worker = settings.model_copy(update={"crawl_extract_workers": 1})
        stats = crawl(sources, one_worker, tmp_path / "out.jsonl", progress=kill_the_worker)
    assert len(crawl_pid) == 2, "a worker was killed after the first article"
    assert stats.exit_code == 0 and stats.errors == {"extract_pool_broken": 1}
    ids = [a.id for a in read_articles(tmp_path / "out.jsonl")]
    assert len(ids) == len(set(ids)) == stats.articles_new == DEMO_ARTICLES


def test_redirect_into_unconfigured_private_address_is_refused(settings: Settings, tmp_path: Path) -> None:
    with serve_demo(root=tmp_path) as target:  # stands for an internal service

        def to_internal(handler) -> None:
            handler.send_plain(
                302, b"", headers={"Location": f"http://localhost:{target.url.rsplit(':', 1)[1]}/admin"}
            )

        site = tmp_path / "site"
        site.mkdir()
        (site / "list.html").write_text('<html><body><a href="/news/20250301.html">기사</a></body></html>')
        with serve_demo(root=site, routes={"/news/20250301.html": to_internal}) as public:
            source = Source(name="redirector", lang="ko", feeds=[], list_pages=[f"{public.url}/list.html"])
            stats = crawl([source], settings, tmp_path / "out.jsonl")
    assert stats.skipped == {"private_address": 1}
    assert target.hits == {}


def test_stats_json_roundtrip(demo: DemoServer, settings: Settings, tmp_path: Path) -> None:
    """CrawlStats carries the numbers the CLI prints; the child's stats file is plain JSON."""
    stats: CrawlStats = crawl(demo_sources(demo.url)[:1], settings, tmp_path / "out.jsonl", feeds_only=True)
    assert stats.pages_fetched >= 5 and stats.articles_new == 5  # 4 articles and the feed's hub page
    assert stats.run_dir and stats.log_file == stats.run_dir / "crawl.log"
    assert stats.run_dir.parent == settings.data_dir / "crawl" / "runs"
    assert json.loads((stats.run_dir / "stats.json").read_text())["finish_reason"] == "finished"


# --- one store and one lock per source ------------------------------------------------------


def test_crawls_of_two_sources_run_at_once_and_deliver_each_article_once(
    settings: Settings, tmp_path: Path
) -> None:
    with serve_demo() as server:
        by_name = {s.name: s for s in demo_sources(server.url)}
        names = ["demo-ko-tech", "demo-zh-tech"]
        both_running = threading.Barrier(len(names))
        met: list[bool] = []

        def meet(line: str) -> None:
            # Each crawl says so once its child runs, i.e. while it holds its source's lock.
            if line.startswith("crawl process pid="):
                try:
                    both_running.wait(timeout=120)
                    met.append(True)
                except threading.BrokenBarrierError:
                    met.append(False)

        def crawl_one(name: str, out: str) -> CrawlStats:
            return crawl([by_name[name]], settings, tmp_path / f"{out}-{name}.jsonl", progress=meet)

        with ThreadPoolExecutor(2) as pool:
            first = list(pool.map(crawl_one, names, ["one"] * 2))
        assert met == [True, True]  # both crawls were running at the same time
        with ThreadPoolExecutor(2) as pool:
            again = list(pool.map(crawl_one, names, ["two"] * 2))

    for name, stats in zip(names, first, strict=True):
        articles = read_articles(tmp_path / f"one-{name}.jsonl")
        assert articles and {a.source for a in articles} == {name}
        assert stats.articles_new == len(articles) and stats.errors == {} and stats.exit_code == 0
    assert first[0].run_dir != first[1].run_dir
    assert sum(s.articles_new for s in first) == 11  # the legacy outlet's 2 were not asked for
    assert [s.articles_new for s in again] == [0, 0]
    assert all(read_articles(tmp_path / f"two-{name}.jsonl") == [] for name in names)
    assert stored_sources(settings.data_dir) == names


def test_a_source_that_another_crawl_holds_is_left_to_it(
    demo: DemoServer, settings: Settings, tmp_path: Path
) -> None:
    sources = demo_sources(demo.url)
    zh = [s for s in sources if s.name == "demo-zh-tech"]
    lines: list[str] = []
    with source_lock(settings.data_dir, "demo-zh-tech"):
        with pytest.raises(NewsmonError, match=r"another crawl is running for every source .*demo-zh-tech"):
            crawl(zh, settings, tmp_path / "none.jsonl")
        others = crawl(sources, settings, tmp_path / "others.jsonl", progress=lines.append)
    assert others.sources_busy == ["demo-zh-tech"] and others.skipped["source_busy"] == 1
    assert any(line.startswith("skipping demo-zh-tech: another crawl") for line in lines)
    articles = read_articles(tmp_path / "others.jsonl")
    assert others.articles_new == len(articles) == DEMO_ARTICLES - 6
    assert not any(a.source == "demo-zh-tech" for a in articles)

    # With lock_wait, a crawl whose sources are all busy waits (here: released after a second).
    held = try_lock(DataDir(settings.data_dir).source_lock("demo-zh-tech"))
    assert held is not None
    threading.Timer(1.0, held.close).start()
    later = crawl(zh, settings, tmp_path / "later.jsonl", lock_wait=60)
    assert (later.articles_new, later.sources_busy) == (6, [])


def test_the_legacy_single_store_is_delivered_once_and_retired(settings: Settings, tmp_path: Path) -> None:
    with serve_demo() as server:
        sources = demo_sources(server.url)
        # What an older version left: one article committed but not delivered (a killed crawl).
        legacy = CrawlStore(DataDir(settings.data_dir).crawl_legacy_state)
        url = f"{server.url}/ko/news/1001.html"
        left = Article(url=url, canonical_url=url, title="남겨진 기사", text="본문", source="demo-ko-tech")
        legacy.record(left, [url])
        legacy.close()
        lines: list[str] = []
        first = crawl(sources, settings, tmp_path / "one.jsonl", progress=lines.append)
        assert server.hits[urlpath(url)] == 0  # known from the old store: not fetched again
        second = crawl(sources, settings, tmp_path / "two.jsonl")
    articles = read_articles(tmp_path / "one.jsonl")
    assert [a.title for a in articles].count("남겨진 기사") == 1
    assert first.articles_new == len(articles) == DEMO_ARTICLES and first.articles_unchanged == 1
    assert any(line.startswith("retired the single crawl store") for line in lines)
    assert any(line.startswith("demo-ko-tech: took 1 known URL") for line in lines)
    assert not DataDir(settings.data_dir).crawl_legacy_state.exists()
    assert DataDir(settings.data_dir).crawl_retired_state.exists()
    assert (second.articles_new, read_articles(tmp_path / "two.jsonl")) == (0, [])


def urlpath(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def test_a_url_first_met_without_lastmod_keeps_the_newest_announced_one(tmp_path: Path) -> None:
    # A list page (no lastmod) can get an article fetched before its sitemap entry is read;
    # the entry's lastmod must still be remembered, so a newer one later means "fetch again".
    store = CrawlStore(tmp_path / "state.sqlite")
    url = "https://news.example.cn/a/1.html"
    store.mark_skipped([url], "not_article")
    assert store.known(url) == "not_article"
    march9, march10 = datetime(2025, 3, 9, tzinfo=UTC), datetime(2025, 3, 10, tzinfo=UTC)
    store.note_lastmods({url: march10})
    store.note_lastmods({url: march9})  # never lowered
    assert store.known(url, march10) == "not_article"
    assert store.known(url, datetime(2025, 3, 11, tzinfo=UTC)) is None
    store.note_lastmods({"https://news.example.cn/never-seen.html": march9})  # no row made
    assert store.known("https://news.example.cn/never-seen.html") is None
    store.close()


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs (an exited child that nobody reaped yet does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started (its extraction workers, for a crawl process)."""
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_killing_the_parent_stops_the_crawl_child_and_the_next_run_resumes(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "var")
    with serve_demo(delay=2.0) as server:  # the whole crawl would take far longer than the grace
        sources = demo_sources(server.url)
        script = (
            "from newsmon.crawlers.demo_server import demo_sources\n"
            "from newsmon.pipeline import crawl_to_inbox\n"
            "from newsmon.settings import load_settings\n"
            f"settings = load_settings(data_dir={str(settings.data_dir)!r})\n"
            f"sources = demo_sources({server.url!r})\n"
            "crawl_to_inbox(settings, sources, progress=lambda s: print(s, flush=True))\n"
        )
        parent = subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
            env=dict(os.environ, NEWSMON_CRAWL_EXTRACT_WORKERS="1"),
        )
        assert parent.stdout is not None
        child = 0
        for line in parent.stdout:
            if match := re.match(r"crawl process pid=(\d+)", line):
                child = int(match[1])
            elif line.startswith("new ") and child:
                break
        workers = _children(child)
        assert workers, "the crawl child runs its extraction pool"
        parent.kill()  # SIGKILL: no clean-up of any kind in the parent
        parent.wait()
        deadline = time.monotonic() + ORPHAN_POLL_S + ORPHAN_GRACE_S + 2
        while _running(child) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _running(child), "the crawl child outlived its parent"
        # Its extraction workers hold copies of its descriptors, the source locks among them.
        deadline = time.monotonic() + ORPHAN_POLL_S + 2
        while any(map(_running, workers)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(map(_running, workers)), "an extraction worker outlived the crawl"
        fetched = sum(server.hits.values())
        time.sleep(2)
        assert sum(server.hits.values()) == fetched  # it stopped crawling, too
        # Its locks went with it, and it did not fill its log with broken-pipe tracebacks.
        for source in sources:
            lock = try_lock(DataDir(settings.data_dir).source_lock(source.name))
            assert lock is not None
            lock.close()
        [run] = DataDir(settings.data_dir).crawl_runs.iterdir()
        assert "BrokenPipeError" not in (run / "crawl.stderr").read_text(encoding="utf-8")
        assert (run / "crawl.stderr").stat().st_size < 20_000

        server.delay = 0.0
        second = crawl_to_inbox(settings, sources)
        assert second.exit_code == 0
    inbox = settings.data_dir / "inbox"
    ids = [a.id for f in [*inbox.glob("*.jsonl"), *inbox.glob("*.jsonl.part")] for a in read_articles(f)]
    assert len(ids) == len(set(ids)) == DEMO_ARTICLES
