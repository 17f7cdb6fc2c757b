"""Stage hand-off through the inbox: bad lines are counted, never fatal."""

from __future__ import annotations

from pathlib import Path

from newsmon.models import Article
from newsmon.pipeline import pending_inbox_files, read_articles
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
