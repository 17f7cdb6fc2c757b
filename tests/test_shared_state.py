"""The crawl state and the inbox queue in a shared PostgreSQL (NEWSMON_STATE_URL), started by
the suite: what one host crawled, another does not fetch again; workers claim disjoint batches;
a batch whose worker failed stays queued."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from helpers.articles import DEMO_ARTICLES

from newsmon.alerts.ledger import Ledger, group_stories
from newsmon.alerts.sample import sample_articles
from newsmon.crawlers.demo_server import demo_sources, serve_demo
from newsmon.crawlers.store import CrawlStore, source_lock, source_lock_name, source_locks, stored_sources
from newsmon.errors import NewsmonError
from newsmon.inbox import claim, queued
from newsmon.locks import SharedLock, try_hold
from newsmon.models import Article
from newsmon.pipeline import crawl_to_inbox
from newsmon.retention import cleanup
from newsmon.settings import REPO_ROOT, load_settings
from newsmon.state import driver_url
from newsmon.state_import import import_embedded_state

pytestmark = pytest.mark.integration
RULE = "export-controls"
ARTICLE_PATH = re.compile(r"^/(?:ko/news|legacy/news|zh/a)/")


def _article(n: int, source: str = "a") -> Article:
    url = f"https://{source}.example/news/{n}"
    return Article(url=url, canonical_url=url, title=f"t{n}", text=f"body {n}", source=source)


def test_each_source_has_its_own_rows_and_its_outbox_drains_into_the_queue(state_url: str) -> None:
    a, b = CrawlStore.open_shared(state_url, "a"), CrawlStore.open_shared(state_url, "b")
    first = _article(1)
    assert a.record(first, [first.url + "?utm_source=x"]) == "new"
    assert a.record(first, [first.url]) == "unchanged"
    assert a.record(first.model_copy(update={"text": "changed"}), [first.url]) == "updated"
    a.mark_skipped(["https://a.example/tag/x"], "list_page")
    assert a.known(first.url) == "article" and a.known("https://a.example/tag/x") == "list_page"
    assert b.known(first.url) is None  # another source's marks are its own
    a.cache_put("fp", "https://a.example/rss", 200, {"ETag": ["x"]}, b"<rss/>")
    a.cache_put("fp", "https://a.example/rss", 304, {}, b"<rss/>")  # replaces it
    assert (a.cache_get("fp") or ())[:4] == ("https://a.example/rss", 304, {}, b"<rss/>")
    assert b.cache_get("fp") is None
    b.record(_article(2, "b"), [])

    assert a.drain_outbox(None) == {"new": 1, "updated": 1}
    assert a.drain_outbox(None) == {}  # moved in the same commit that emptied the outbox
    assert queued(state_url) == 2  # b's article waits in b's outbox
    with claim(state_url, 10) as rows:
        assert [Article.model_validate_json(r).text for r in rows] == ["body 1", "changed"]
    assert queued(state_url) == 0
    assert stored_sources(Path("unused"), state_url) == ["a", "b"]
    a.close()
    b.close()


def test_workers_claim_disjoint_batches_and_a_failed_batch_stays_queued(state_url: str) -> None:
    store = CrawlStore.open_shared(state_url, "a")
    for n in range(5):
        store.record(_article(n), [])
    store.drain_outbox(None)
    store.close()

    with claim(state_url, limit=3) as mine, claim(state_url, limit=3) as theirs:
        assert len(mine) == 3 and len(theirs) == 2  # SKIP LOCKED: the second skips the first's rows
        assert not set(mine) & set(theirs)
    assert queued(state_url) == 0

    store = CrawlStore.open_shared(state_url, "a")
    store.record(_article(9), [])
    store.drain_outbox(None)
    store.close()
    with pytest.raises(RuntimeError), claim(state_url, 10) as rows:
        assert len(rows) == 1
        raise RuntimeError("the analysis failed")
    assert queued(state_url) == 1  # still there for the next worker


def test_two_data_dirs_share_the_crawl_state_and_its_locks(state_url: str, tmp_path: Path) -> None:
    host_a = load_settings(data_dir=tmp_path / "a", state_url=state_url)
    host_b = load_settings(data_dir=tmp_path / "b", state_url=state_url)
    with serve_demo() as server:
        sources = demo_sources(server.url)
        first = crawl_to_inbox(host_a, sources)
        assert first.out_file is None and first.articles_new == DEMO_ARTICLES
        assert queued(state_url) == DEMO_ARTICLES
        assert not list((tmp_path / "a" / "inbox").glob("*.jsonl*"))  # the queue, not files
        fetched = sum(server.hits.values())

        again = crawl_to_inbox(host_b, sources)  # another host, another data dir
        assert again.articles_new == 0 and queued(state_url) == DEMO_ARTICLES
        articles = {p: n for p, n in server.hits.items() if ARTICLE_PATH.match(p)}
        assert articles and set(articles.values()) == {1}  # no article page fetched twice
        assert sum(server.hits.values()) > fetched  # it did look at the feeds again

        # A crawl of a source that a crawl on the other host holds leaves it to that one.
        zh = [s for s in sources if s.name == "demo-zh-tech"]
        with source_lock(host_a.data_dir, "demo-zh-tech", state_url):
            with pytest.raises(NewsmonError, match="another crawl is running for every source"):
                crawl_to_inbox(host_b, zh)
            busy = cleanup(host_b)  # housekeeping leaves a source being crawled alone, too
            assert busy.busy_sources == ["demo-zh-tech"]
    assert set(stored_sources(host_a.data_dir, state_url)) == {s.name for s in sources}


def test_crawl_command_fills_the_queue_or_the_file_asked_for(state_url: str, tmp_path: Path) -> None:
    from newsmon.index.localnode.launcher import free_port

    env = os.environ | {
        "PYTHONPATH": str(REPO_ROOT),
        "NEWSMON_STATE_URL": state_url,
        "NEWSMON_DATA_DIR": str(tmp_path / "var"),
        "NEWSMON_DEMO_PORT": str(free_port()),
    }

    def newsmon(*argv: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "newsmon.cli", *argv], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    out = tmp_path / "crawl.jsonl"
    assert f"{DEMO_ARTICLES} new" in newsmon("crawl", "--demo", "--quiet", "--out", str(out))
    assert len(out.read_text(encoding="utf-8").splitlines()) == DEMO_ARTICLES
    assert queued(state_url) == 0
    again = " ".join(newsmon("crawl", "--demo", "--quiet").split())  # unwrapped
    assert " 0 new" in again and "-> the shared inbox queue" in again


def test_state_import_moves_the_embedded_state_once(state_url: str, tmp_path: Path) -> None:
    embedded = load_settings(data_dir=tmp_path / "var")
    shared = embedded.model_copy(update={"state_url": state_url})
    with serve_demo() as server:
        sources = demo_sources(server.url)
        assert crawl_to_inbox(embedded, sources).articles_new == DEMO_ARTICLES  # an inbox file
        # One article committed but never delivered (its crawl was killed), one story mailed.
        store = CrawlStore(embedded.layout.source_state("demo-ko-tech"))
        url = f"{server.url}/ko/news/left-behind.html"
        store.record(
            Article(url=url, canonical_url=url, title="남겨진 기사", text="본문", source="demo-ko-tech"),
            [url],
        )
        store.close()
        ledger = Ledger.open(embedded.layout.alerts_ledger)
        [story] = group_stories(RULE, sample_articles()[:1])
        ledger.record_matches(RULE, [story], datetime(2026, 1, 1, tzinfo=UTC))
        ledger.mark_sending([story], "<1@x>")
        ledger.mark_sent([story])
        ledger.close()

        first = import_embedded_state(shared)
        assert first == {"sources": 3, "seen": first["seen"], "outbox": 1, "rules": 1, "stories": 1}
        assert first["seen"] > DEMO_ARTICLES
        again = import_embedded_state(shared)  # nothing doubles
        assert again["outbox"] == 0 and stored_sources(tmp_path, state_url) == stored_sources(
            embedded.data_dir
        )

        # Another host, on the shared state only: nothing is fetched or delivered twice.
        hits = sum(server.hits.values())
        other = crawl_to_inbox(shared.model_copy(update={"data_dir": tmp_path / "b"}), sources)
        assert other.articles_new == 1 and queued(state_url) == 1  # the undelivered one, once
        assert not [p for p, n in server.hits.items() if ARTICLE_PATH.match(p) and n > 1]
        assert sum(server.hits.values()) > hits
    ledger = Ledger.open_shared(state_url)
    assert ledger.states(RULE) == {story.key: "sent"}
    assert ledger.checkpoint(RULE) == datetime(2026, 1, 1, tzinfo=UTC)
    ledger.close()


def test_a_crawl_of_many_sources_does_not_drain_the_connection_pool(state_url: str) -> None:
    # A feeds poll crawls every source in one child, which opens two stores per source (the
    # spider's and the HTTP cache's): more than the pool's 5 + 10 connections, were they held.
    stores = [CrawlStore.open_shared(state_url, f"s{n}") for n in range(2 * 20)]
    try:
        for n, store in enumerate(stores):
            assert store.record(_article(n, f"s{n}"), []) == "new"
    finally:
        for store in stores:
            store.close()
    assert stored_sources(Path("unused"), state_url) == sorted(f"s{n}" for n in range(40))


def test_a_crawl_holds_all_its_source_locks_on_one_session(state_url: str, tmp_path: Path) -> None:
    engine = sa.create_engine(driver_url(state_url))

    def advisory() -> tuple[int, int]:
        with engine.connect() as conn:
            query = "SELECT count(*), count(DISTINCT pid) FROM pg_locks WHERE locktype = 'advisory'"
            row = conn.execute(sa.text(query)).one()
        return row[0], row[1]

    def settled(expected: tuple[int, int]) -> tuple[int, int]:
        """The locks once the server has seen a released session end: closing its connection
        returns before the backend exits and drops the session's locks."""
        deadline = time.monotonic() + 5.0
        while (found := advisory()) != expected and time.monotonic() < deadline:
            time.sleep(0.05)
        return found

    with source_lock(tmp_path, "b", state_url):  # another crawl holds b
        with source_locks(tmp_path, ["a", "b", "c", "d"], state_url=state_url) as (held, busy):
            assert sorted(held) == ["a", "c", "d"] and busy == ["b"]
            assert advisory() == (4, 2)  # this crawl's three on one session, the other's one
            assert try_hold(SharedLock(state_url, source_lock_name("c"))) is None
            held.pop("c").close()  # released alone, the others stay
            assert advisory() == (3, 2)
            again = try_hold(SharedLock(state_url, source_lock_name("c")))
            assert again is not None
            again.close()
            for lock in held.values():
                lock.close()
            held.clear()
        assert settled((1, 1)) == (1, 1)
    assert settled((0, 0)) == (0, 0)
    engine.dispose()


def test_articles_stuck_in_the_queue_for_days_are_reported(state_url: str, tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "var", state_url=state_url)
    store = CrawlStore.open_shared(state_url, "a")
    store.record(_article(1), [])
    store.drain_outbox(None)
    store.close()
    assert cleanup(settings).problems() == []
    later = cleanup(settings, now=time.time() + 3 * 86_400)  # nobody indexed it for three days
    assert later.problems() == ["1 articles in the shared inbox queue not indexed for days"]
