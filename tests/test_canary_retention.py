"""Housekeeping run by the canary DAG: what is deleted, salvaged, pruned or only reported."""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsmon.crawlers.store import CrawlStore, source_lock
from newsmon.layout import DataDir
from newsmon.locks import file_lock
from newsmon.models import Article
from newsmon.retention import DAY_S, cleanup
from newsmon.settings import Settings, load_settings

NOW = time.time()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "var")


def _file(path: Path, age_days: float, text: str = "{}\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    stamp = NOW - age_days * DAY_S
    os.utime(path, (stamp, stamp))
    return path


def test_old_dead_letters_go_and_waiting_articles_are_kept_but_reported(settings: Settings) -> None:
    data = settings.data_dir
    old_dead = _file(data / "deadletter" / "articles-20250101.jsonl", 120)
    new_dead = _file(data / "deadletter" / "articles-20260101.jsonl", 10)
    stuck_inbox = _file(data / "inbox" / "20250101T000000-feeds.jsonl", 3)
    fresh_inbox = _file(data / "inbox" / "20260101T000000-feeds.jsonl", 0.1)
    stuck_spool = _file(data / "spool" / "20250101T000000-1-ab.jsonl", 5)

    stats = cleanup(settings, now=NOW)

    assert not old_dead.exists() and new_dead.exists()
    assert stats.deleted_deadletters == [old_dead.name]
    assert stuck_inbox.exists() and fresh_inbox.exists() and stuck_spool.exists()
    assert stats.stale_inbox == [stuck_inbox.name] and stats.stale_spool == [stuck_spool.name]
    assert len(stats.problems()) == 2 and "Elasticsearch" in stats.problems()[1]


def test_an_interrupted_crawls_part_file_is_salvaged_unless_its_crawl_runs(settings: Settings) -> None:
    part = _file(settings.data_dir / "inbox" / "20260101T000000-daily-x.jsonl.part", 1)
    young = _file(settings.data_dir / "inbox" / "20260101T000001-daily-y.jsonl.part", 0)
    with file_lock(part):  # what crawl_to_inbox holds while its crawl runs
        busy = cleanup(settings, now=NOW)
    assert busy.crawl_busy and part.exists() and busy.salvaged_parts == []

    stats = cleanup(settings, now=NOW)
    assert not stats.crawl_busy and stats.salvaged_parts == [part.name]
    assert not part.exists() and part.with_suffix("").exists()  # now a pending inbox file
    assert young.exists()  # just created: its crawl may not have locked it yet


def _old_state(settings: Settings, source: str) -> Article:
    store = CrawlStore(DataDir(settings.data_dir).source_state(source))
    article = Article(url="https://a.example/1", canonical_url="https://a.example/1", title="t", text="x")
    store.record(article, [article.url])
    store.mark_skipped(["https://a.example/tag/ai"], "list_page")
    store.cache_put("fp-new", "https://a.example/rss", 200, {}, b"<rss/>")
    store.close()
    old = datetime.fromtimestamp(NOW - 200 * DAY_S, UTC).isoformat()
    with sqlite3.connect(DataDir(settings.data_dir).source_state(source)) as db:
        db.execute("UPDATE seen SET seen_at = ?", (old,))  # every mark is old, the article's too
        db.execute(
            "INSERT INTO http_cache VALUES ('fp-old', 'https://a.example/old', 200, '{}', x'00', ?)",
            (NOW - 60 * DAY_S,),
        )
    db.close()
    return article


def test_crawl_state_pruning_keeps_seen_articles_and_sources_being_crawled(settings: Settings) -> None:
    article = _old_state(settings, "a")
    _old_state(settings, "b")
    _old_state(settings, "c")

    with source_lock(settings.data_dir, "b"):  # b is being crawled
        stats = cleanup(settings, now=NOW)

    assert (stats.pruned_http_cache, stats.pruned_skipped_pages) == (2, 2)  # a and c
    assert stats.busy_sources == ["b"] and stats.crawl_busy
    for source, pruned in (("a", True), ("b", False), ("c", True)):
        path = DataDir(settings.data_dir).source_state(source)
        with closing(sqlite3.connect(path)) as db:
            seen = {url for (url,) in db.execute("SELECT url FROM seen")}
        store = CrawlStore(path)
        try:
            assert (seen == {article.url}) is pruned  # the article stays known: not fetched again
            assert article.url in seen
            assert store.cache_get("fp-new") and bool(store.cache_get("fp-old")) is not pruned
        finally:
            store.close()


def test_cleanup_of_a_fresh_data_dir_is_a_no_op(settings: Settings) -> None:
    stats = cleanup(settings)
    assert stats.problems() == [] and not stats.crawl_busy
    assert stats.pruned_http_cache == 0 and stats.salvaged_parts == []
