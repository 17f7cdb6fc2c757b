"""Stage hand-off through the inbox: bad lines are counted, never fatal."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from newsmon.crawlers.registry import Source
from newsmon.crawlers.store import source_lock
from newsmon.errors import NewsmonError
from newsmon.locks import try_lock
from newsmon.models import Article
from newsmon.pipeline import (
    check_crawls,
    crawl_to_inbox,
    inbox_dir,
    pending_inbox_files,
    process_inbox,
    read_articles,
)
from newsmon.settings import load_settings


def test_bad_inbox_lines_are_counted_and_the_rest_goes_on(tmp_path: Path) -> None:
    good = Article(url="https://a.example/1", canonical_url="https://a.example/1", title="제목", text="본문")
    path = tmp_path / "x.jsonl"
    path.write_bytes(
        good.model_dump_json().encode()
        + b"\n{not json\n\n"
        + b'{"url": "\xff\xfe broken utf-8"}\n'
        + good.model_copy(update={"canonical_url": "https://a.example/2"}).model_dump_json().encode()
        + b"\n"
    )
    errors: dict[str, int] = {}
    articles = list(read_articles(path, errors))
    assert [a.canonical_url for a in articles] == ["https://a.example/1", "https://a.example/2"]
    assert articles[0].title == "제목"
    assert errors == {"bad_inbox_line": 2}


def test_only_complete_crawl_files_are_pending(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "20260101T000000-crawl.jsonl.part").write_text("")
    (inbox / "20260102T000000-crawl.jsonl").write_text("")
    (inbox / "20260101T000000-feeds.jsonl").write_text("")
    assert [p.name for p in pending_inbox_files(settings)] == [
        "20260101T000000-feeds.jsonl",
        "20260102T000000-crawl.jsonl",
    ]


def test_a_crawl_whose_sources_are_all_busy_fails_and_leaves_no_inbox_file(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    source = Source(name="x", lang="ko", feeds=["http://127.0.0.1:9/rss.xml"])
    with source_lock(tmp_path, "x"), pytest.raises(NewsmonError, match=r"every source asked for: x$"):
        crawl_to_inbox(settings, [source])
    assert list(inbox_dir(settings).iterdir()) == []


def test_the_inbox_is_processed_by_one_run_at_a_time(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    lock = try_lock(inbox_dir(settings) / "process.lock")  # another run is processing
    assert lock is not None
    with pytest.raises(NewsmonError, match="another run is processing the inbox"):
        process_inbox(settings, lock_wait=0.3)
    threading.Timer(0.5, lock.close).start()
    started = time.monotonic()
    assert process_inbox(settings).files == 0  # waited for the other run, then found nothing
    assert time.monotonic() - started >= 0.4


def test_check_crawls_names_the_sources_whose_crawl_failed() -> None:
    names = ["a", "b", "c"]
    assert check_crawls(names, [{"source": n, "articles_new": 1} for n in names]) == {
        "sources": 3,
        "failed": 0,
    }
    assert check_crawls([], [])["sources"] == 0
    with pytest.raises(NewsmonError, match=r"^2 of 3 source crawl\(s\) failed: a, c "):
        check_crawls(names, [{"source": "b", "articles_new": 0}])
