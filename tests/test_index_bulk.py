"""The indexer's decisions, against an in-memory stand-in for Elasticsearch that speaks
just enough of mget/bulk (seq_no conditions, create conflicts, item errors, outages).
The real node is exercised in test_index_integration.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import ConnectionError as ESConnectionError
from helpers.articles import make_article

from newsmon.index.bulk import IndexStats, _chunks, index_articles
from newsmon.index.ops import Retry
from newsmon.index.spool import DeadLetters, Spool
from newsmon.models import Article
from newsmon.settings import Settings

ALIAS = "t-articles"
INDEX = "t-articles-v1-000001"
FAST = Retry(attempts=3, backoff_s=0)


class FakeES:
    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self.seq = 0
        self.down = False
        self.before_bulk: Callable[[], None] | None = None  # a concurrent writer, once
        self.item_error: Callable[[str], dict[str, Any] | None] = lambda _id: None
        self.lose_answer = False  # apply the next bulk, then fail as if its node died (once)
        self.indices = self  # indices.get_alias / indices.exists_alias

    def _check(self) -> None:
        if self.down:
            raise ESConnectionError("connection refused")

    def options(self, **_: Any) -> FakeES:
        return self

    def exists_alias(self, name: str) -> bool:
        self._check()
        return name == ALIAS

    def get_alias(self, name: str) -> dict[str, Any]:
        self._check()
        return {INDEX: {"aliases": {ALIAS: {"is_write_index": True}}}}

    def put(self, id_: str, source: dict[str, Any]) -> None:
        self.seq += 1
        self.docs[(INDEX, id_)] = (self.seq, source)

    def mget(self, docs: list[dict[str, str]], source_includes: list[str] | None = None) -> dict[str, Any]:
        self._check()
        out = []
        for ref in docs:
            found = self.docs.get((ref["_index"], ref["_id"]))
            if found is None:
                out.append({**ref, "found": False})
            else:
                src = {k: v for k, v in found[1].items() if source_includes is None or k in source_includes}
                out.append({**ref, "found": True, "_seq_no": found[0], "_primary_term": 1, "_source": src})
        return {"docs": out}

    def bulk(self, operations: list[dict[str, Any]], filter_path: str | None = None) -> dict[str, Any]:
        self._check()
        if self.before_bulk:
            hook, self.before_bulk = self.before_bulk, None
            hook()
        items = []
        for meta, doc in zip(operations[::2], operations[1::2], strict=True):
            ((op, m),) = meta.items()
            index = INDEX if m["_index"] == ALIAS else m["_index"]
            current = self.docs.get((index, m["_id"]))
            error = self.item_error(m["_id"])
            if error:
                items.append({op: {"status": error.pop("status"), "error": error}})
            elif (op == "create" and current) or (op == "index" and (current or (0,))[0] != m["if_seq_no"]):
                items.append({op: {"status": 409, "error": {"type": "version_conflict_engine_exception"}}})
            else:
                self.put(m["_id"], doc)
                items.append(
                    {
                        op: {
                            "status": 201 if current is None else 200,
                            "_index": index,
                            "result": "created" if current is None else "updated",
                        }
                    }
                )
        if self.lose_answer:
            self.lose_answer = False
            raise ESConnectionError("connection reset")
        return {"items": items}


@pytest.fixture
def fake() -> FakeES:
    return FakeES()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(index_prefix="t", data_dir=tmp_path / "var")


def run(articles: list[Article], settings: Settings, fake: FakeES, **kw: Any) -> IndexStats:
    return index_articles(articles, settings, client=fake, retry=FAST, **kw)  # type: ignore[arg-type]


def test_create_then_unchanged_then_update_keeps_first_seen(settings: Settings, fake: FakeES) -> None:
    articles = [make_article(i) for i in range(5)]
    assert run(articles, settings, fake) == IndexStats(created=5)
    first_seen = fake.docs[(INDEX, articles[0].id)][1]["first_seen"]
    assert run(articles, settings, fake) == IndexStats(unchanged=5)
    changed = articles[0].model_copy(
        update={"text": "수정된 본문", "fetched": articles[0].fetched.replace(day=9)}
    )
    assert run([changed, *articles[1:]], settings, fake) == IndexStats(updated=1, unchanged=4)
    stored = fake.docs[(INDEX, changed.id)][1]
    assert stored["text"] == "수정된 본문"
    assert stored["first_seen"] == first_seen
    assert stored["last_seen"].startswith("2026-05-09")
    assert len(fake.docs) == 5


def test_a_concurrent_update_is_not_overwritten_blindly(settings: Settings, fake: FakeES) -> None:
    article = make_article(1)
    run([article], settings, fake)
    other = article.model_copy(update={"text": "다른 수집기가 쓴 본문"})
    mine = article.model_copy(update={"text": "내 본문"})
    # Another writer lands between our read and our write: our conditional write gets 409,
    # the article goes round again with a fresh read, and then ours is written over theirs.
    fake.before_bulk = lambda: fake.put(article.id, {"content_hash": other.content_hash, "first_seen": "x"})
    assert run([mine], settings, fake) == IndexStats(updated=1)
    assert fake.docs[(INDEX, article.id)][1]["text"] == "내 본문"
    assert fake.docs[(INDEX, article.id)][1]["first_seen"] == "x"


def test_a_concurrent_create_of_the_same_article_is_unchanged(settings: Settings, fake: FakeES) -> None:
    article = make_article(1)
    fake.before_bulk = lambda: fake.put(article.id, {"content_hash": article.content_hash})
    assert run([article], settings, fake) == IndexStats(unchanged=1)
    assert len(fake.docs) == 1


def test_a_write_whose_answer_was_lost_counts_as_written(settings: Settings, fake: FakeES) -> None:
    # The bulk lands but its answer does not; the retry gets 409s and the fresh read finds our
    # own stamp: created, not "unchanged" (and a changed article: updated).
    articles = [make_article(i) for i in range(3)]
    fake.lose_answer = True
    assert run(articles, settings, fake) == IndexStats(created=3)
    changed = articles[0].model_copy(update={"text": "수정된 본문"})
    fake.lose_answer = True
    assert run([changed, *articles[1:]], settings, fake) == IndexStats(updated=1, unchanged=2)
    assert len(fake.docs) == 3


def test_rejected_documents_go_to_the_dead_letter_file(settings: Settings, fake: FakeES) -> None:
    articles = [make_article(i) for i in range(3)]
    bad = articles[1].id
    fake.item_error = lambda id_: (
        {"status": 400, "type": "document_parsing_exception", "reason": "failed to parse [published]"}
        if id_ == bad
        else None
    )
    assert run(articles, settings, fake) == IndexStats(created=2, failed=1)
    (dead_file,) = (settings.data_dir / "deadletter").glob("*.jsonl")
    (record,) = [json.loads(line) for line in dead_file.read_text().splitlines()]
    assert record["id"] == bad
    assert record["status"] == 400
    assert "document_parsing_exception: failed to parse [published]" in record["reason"]
    assert Article.model_validate(record["article"]) == articles[1]


def test_outage_spools_and_the_next_run_replays(settings: Settings, fake: FakeES) -> None:
    articles = [make_article(i) for i in range(7)]
    fake.down = True
    done: list[int] = []
    assert run(articles, settings, fake, chunk_size=3, progress=done.append) == IndexStats(spooled=7)
    assert sum(done) == 7
    fake.down = False
    assert run([make_article(7)], settings, fake) == IndexStats(created=8, replayed=7)
    assert len(fake.docs) == 8
    assert not list((settings.data_dir / "spool").glob("*.jsonl"))
    assert run([], settings, fake) == IndexStats()


def test_throttled_items_are_retried_then_spooled(settings: Settings, fake: FakeES) -> None:
    articles = [make_article(i) for i in range(4)]
    fake.item_error = lambda id_: {"status": 429, "type": "es_rejected_execution_exception"}
    stats = run(articles, settings, fake, chunk_size=2)
    assert stats == IndexStats(spooled=4)
    fake.item_error = lambda id_: None
    assert run([], settings, fake) == IndexStats(created=4, replayed=4)


def test_endless_conflicts_spool_that_article_but_the_run_goes_on(settings: Settings, fake: FakeES) -> None:
    articles = [make_article(i) for i in range(3)]
    hot = articles[0].id
    fake.item_error = lambda id_: (
        {"status": 409, "type": "version_conflict_engine_exception"} if id_ == hot else None
    )
    assert run(articles, settings, fake, chunk_size=1, concurrency=1) == IndexStats(created=2, spooled=1)


def test_chunks_split_at_a_repeated_article_so_the_later_version_wins() -> None:
    a, b = make_article(1), make_article(2)
    a2 = a.model_copy(update={"text": "새 버전"})
    assert [[x.text for x in c] for c in _chunks([a, b, a2, b], 10)] == [
        [a.text, b.text],
        ["새 버전", b.text],
    ]
    assert [len(c) for c in _chunks([make_article(i) for i in range(5)], 2)] == [2, 2, 1]


def test_spool_files_are_claimed_by_one_run_only(settings: Settings) -> None:
    with Spool(settings) as writing:
        writing.add([make_article(1)])
        with Spool(settings) as other:
            assert list(other.claim()) == []  # still being written (locked)
    with Spool(settings) as first, Spool(settings) as second:
        (claim,) = first.claim()
        assert list(second.claim()) == []  # held by the first
        assert [a.id for a in claim.articles(DeadLetters(settings))] == [make_article(1).id]
        claim.remove()
    with Spool(settings) as later:
        assert list(later.claim()) == []


def test_a_crashed_runs_spool_is_replayed_and_bad_lines_are_dead_lettered(
    settings: Settings, fake: FakeES
) -> None:
    spool_dir = settings.data_dir / "spool"
    spool_dir.mkdir(parents=True)
    good = make_article(1)
    (spool_dir / "20260101T000000000000-1-dead.jsonl").write_text(good.model_dump_json() + '\n{"url": tru\n')
    assert run([], settings, fake) == IndexStats(created=1, replayed=1)
    (dead_file,) = (settings.data_dir / "deadletter").glob("*.jsonl")
    assert "unreadable spool line" in dead_file.read_text()
