"""Setup, upserts, spool and re-processing against a real local Elasticsearch node."""

from __future__ import annotations

import copy
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from helpers.articles import make_article

import newsmon.index.bulk
from newsmon.errors import NewsmonError
from newsmon.index.bulk import IndexStats, index_articles
from newsmon.index.client import articles_alias, es_client
from newsmon.index.docs import mapping_spec
from newsmon.index.lifecycle import rollover
from newsmon.index.ops import Retry
from newsmon.index.reprocess import reprocess
from newsmon.index.setup import setup_index
from newsmon.models import Article, Topic
from newsmon.settings import Settings

pytestmark = pytest.mark.integration
FAST = Retry(attempts=2, backoff_s=0.2)


def stored(client: Elasticsearch, settings: Settings) -> dict[str, dict[str, Any]]:
    """Every document behind the alias, by id (asserting there are no duplicate ids)."""
    alias = articles_alias(settings)
    client.indices.refresh(index=alias)
    hits = client.search(index=alias, size=10_000, query={"match_all": {}})["hits"]["hits"]
    by_id = {h["_id"]: {**h["_source"], "_index": h["_index"]} for h in hits}
    assert len(by_id) == len(hits), "duplicate documents"
    return by_id


def test_setup_is_idempotent_with_rollover_ready_names(es: Settings, client: Elasticsearch) -> None:
    first = setup_index(es, client)
    alias = f"{es.index_prefix}-articles"
    assert (first.alias, first.write_index, first.created) == (alias, f"{alias}-v1-000001", True)
    assert first.template_updated
    again = setup_index(es, client)
    assert (again.created, again.template_updated, again.mapping_updated) == (False, False, False)
    assert again.write_index == first.write_index
    aliases = client.indices.get_alias(name=alias)
    assert aliases[first.write_index]["aliases"][alias]["is_write_index"] is True


def test_upserts_are_idempotent_and_keep_first_seen(es: Settings, client: Elasticsearch) -> None:
    articles = [make_article(i) for i in range(30)]
    assert index_articles(articles, es, client, chunk_size=7) == IndexStats(created=30)
    before = stored(client, es)
    assert index_articles(articles, es, client) == IndexStats(unchanged=30)
    changed = articles[3].model_copy(
        update={"title": "제목 수정", "fetched": articles[3].fetched.replace(day=7)}
    )
    assert index_articles([changed], es, client) == IndexStats(updated=1)
    after = stored(client, es)
    assert len(after) == 30
    assert after[changed.id]["title"] == "제목 수정"
    assert after[changed.id]["first_seen"] == before[changed.id]["first_seen"]
    assert after[changed.id]["last_seen"] > before[changed.id]["last_seen"]
    untouched = articles[4].id
    assert after[untouched]["indexed"] == before[untouched]["indexed"]  # unchanged: not rewritten


def test_a_rejected_document_is_dead_lettered_and_the_rest_indexed(
    es: Settings, client: Elasticsearch, monkeypatch: pytest.MonkeyPatch
) -> None:
    articles = [make_article(i) for i in range(5)]
    real_to_doc = newsmon.index.bulk.to_doc

    def broken(article: Article, **kw: Any) -> dict[str, Any]:
        doc = real_to_doc(article, **kw)
        return {**doc, "published": "not a date"} if article.id == articles[2].id else doc

    monkeypatch.setattr(newsmon.index.bulk, "to_doc", broken)
    assert index_articles(articles, es, client) == IndexStats(created=4, failed=1)
    (dead,) = (es.data_dir / "deadletter").glob("*.jsonl")
    assert articles[2].id in dead.read_text()
    assert "published" in dead.read_text()
    assert articles[2].id not in stored(client, es)


def test_after_rollover_old_articles_are_updated_where_they_are(es: Settings, client: Elasticsearch) -> None:
    old = [make_article(i) for i in range(4)]
    index_articles(old, es, client)
    new_index = rollover(es, client=client)
    assert new_index == f"{es.index_prefix}-articles-v1-000002"
    changed = old[0].model_copy(update={"text": "업데이트된 본문"})
    fresh = make_article(99)
    assert index_articles([changed, *old[1:], fresh], es, client) == IndexStats(
        created=1, updated=1, unchanged=3
    )
    docs = stored(client, es)
    assert len(docs) == 5
    assert docs[changed.id]["_index"].endswith("-000001")
    assert docs[changed.id]["text"] == "업데이트된 본문"
    assert docs[fresh.id]["_index"] == new_index
    assert rollover(es, max_docs=1_000_000, client=client) is None


def test_a_version_bump_copies_everything_and_switches_the_alias(es: Settings, client: Elasticsearch) -> None:
    articles = [make_article(i) for i in range(12)]
    setup_index(es, client)
    index_articles(articles, es, client)
    v2 = copy.deepcopy(mapping_spec())
    v2["version"] = 2
    v2["mappings"]["properties"]["site"] = {"type": "keyword", "normalizer": "lowercase_host"}
    v2["settings"]["analysis"]["normalizer"] = {"lowercase_host": {"type": "custom", "filter": ["lowercase"]}}
    result = setup_index(es, client, spec=v2)
    alias = articles_alias(es)
    assert result.write_index == f"{alias}-v2-000001"
    assert result.migrated_from == [f"{alias}-v1-000001"]
    assert result.copied == 12
    assert list(client.indices.get_alias(name=alias)) == [result.write_index]
    docs = stored(client, es)
    assert len(docs) == 12
    assert {d["mapping_version"] for d in docs.values()} == {2}
    blocks = client.indices.get_settings(index=f"{alias}-v1-000001")[f"{alias}-v1-000001"]["settings"]
    assert blocks["index"]["blocks"]["write"] == "true"  # the old index cannot drift any more
    again = setup_index(es, client, spec=v2)
    assert (again.migrated_from, again.copied, again.created) == ([], 0, False)
    with pytest.raises(NewsmonError, match="newer than this code"):
        setup_index(es, client)  # version 1 code against a version 2 alias


def test_mapping_changes_in_place_or_refused(es: Settings, client: Elasticsearch) -> None:
    setup_index(es, client)
    added = copy.deepcopy(mapping_spec())
    added["mappings"]["properties"]["summary"] = {"type": "text"}
    assert setup_index(es, client, spec=added).mapping_updated
    mapping = client.indices.get_mapping(index=articles_alias(es))
    assert all("summary" in m["mappings"]["properties"] for m in mapping.values())
    retyped = copy.deepcopy(mapping_spec())
    retyped["mappings"]["properties"]["site"] = {"type": "text"}
    with pytest.raises(NewsmonError, match="bump `version`"):
        setup_index(es, client, spec=retyped)


def test_a_write_block_spools_and_the_next_run_replays(es: Settings, client: Elasticsearch) -> None:
    setup_index(es, client)
    alias = articles_alias(es)
    client.indices.put_settings(index=alias, settings={"index.blocks.write": True})
    articles = [make_article(i) for i in range(6)]
    assert index_articles(articles, es, client, retry=FAST) == IndexStats(spooled=6)
    client.indices.put_settings(index=alias, settings={"index.blocks.write": False})
    assert index_articles([], es, client, retry=FAST) == IndexStats(created=6, replayed=6)
    assert len(stored(client, es)) == 6


def test_concurrent_runs_make_no_duplicates(es: Settings, client: Elasticsearch) -> None:
    setup_index(es, client)
    articles = [make_article(i) for i in range(200)]
    results: list[IndexStats] = []
    runs = [
        threading.Thread(
            target=lambda: results.append(index_articles(articles, es, es_client(es), chunk_size=50))
        )
        for _ in range(3)
    ]
    for t in runs:
        t.start()
    for t in runs:
        t.join()
    assert len(results) == 3
    assert sum(r.created for r in results) == 200
    assert sum(r.created + r.unchanged for r in results) == 600
    assert len(stored(client, es)) == 200


def test_stopping_the_node_mid_run_loses_nothing(tmp_path: Path) -> None:
    """Stop the node after the first chunk, start it again, run again: every article is
    there exactly once. A node of its own, as this one is stopped and restarted."""
    from esfixture import REUSE_ENV, start_test_node, stop_test_node

    from newsmon.index.localnode import launcher as esnode

    if os.environ.get(REUSE_ENV):
        pytest.skip(f"{REUSE_ENV} reuses a node this test must not stop")
    node = start_test_node(tmp_path / "node")
    try:
        articles = [make_article(i) for i in range(400)]

        def stop_after_first_chunk(n: int) -> None:
            esnode.stop(node)

        first = index_articles(articles, node, progress=stop_after_first_chunk, chunk_size=50, retry=FAST)
        assert first.created >= 50
        assert first.spooled > 0
        assert first.created + first.spooled >= 400  # a chunk may be applied and spooled too
        assert list((node.data_dir / "spool").glob("*.jsonl"))
        node = start_test_node(tmp_path / "node")  # same data, maybe another port
        second = index_articles([], node, retry=FAST)
        assert second.replayed == first.spooled
        assert second.created + second.unchanged == first.spooled
        client = es_client(node)
        docs = stored(client, node)
        assert set(docs) == {a.id for a in articles}
        assert not list((node.data_dir / "spool").glob("*.jsonl"))
    finally:
        stop_test_node(node)


def test_reprocess_rewrites_only_what_the_analysis_changed(es: Settings, client: Elasticsearch) -> None:
    articles = [make_article(i) for i in range(10)]
    articles += [make_article(i, site="other.example.com") for i in range(10, 13)]
    index_articles(articles, es, client)
    before = stored(client, es)
    seen: list[int] = []

    def analyze(batch: list[Article]) -> list[Article]:
        seen.append(len(batch))
        # The new model adds an "ai" topic to even-numbered articles only.
        return [
            a.model_copy(update={"topics": [*a.topics[:1], Topic(label="ai", score=0.6)]})
            if int(a.url.rsplit("/", 1)[1]) % 2 == 0
            else a
            for a in batch
        ]

    stats = reprocess(es, site="news.example.kr", analyze=analyze, client=client, batch_size=4)
    assert (stats.read, stats.updated, stats.unchanged, stats.failed) == (10, 5, 5, 0)
    assert sum(seen) == 10
    after = stored(client, es)
    for article in articles[:10]:
        doc, old = after[article.id], before[article.id]
        n = int(article.url.rsplit("/", 1)[1])
        assert doc["topics"] == (["semiconductors", "ai"] if n % 2 == 0 else ["semiconductors"])
        assert doc["first_seen"] == old["first_seen"]
        assert doc["text"] == old["text"]
    assert after[articles[10].id] == before[articles[10].id]  # another site: untouched
    again = reprocess(es, since="2026-04-01", until="2026-05-01", analyze=analyze, client=client)
    # All sites this time: only the other site's even articles (10, 12) change.
    assert (again.read, again.updated, again.unchanged) == (13, 2, 11)
