"""The crawl-health index: a demo run and a canary run leave their documents on a real node;
an unreachable Elasticsearch or a refused document costs a warning and a count, never the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from newsmon.canary import SiteCheck, check_site, record_checks
from newsmon.crawlers.demo_server import demo_sources, serve_demo
from newsmon.health import MAX_PROBLEMS, MAX_TEXT, canary_docs, record, run_doc
from newsmon.index.client import es_client, runs_alias
from newsmon.index.localnode.launcher import free_port
from newsmon.index.runs import index_runs
from newsmon.index.setup import setup_index
from newsmon.pipeline import run_once
from newsmon.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(es_settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    prefix = "health-" + request.node.name.lower().replace("_", "-")[:40]
    update = {"data_dir": tmp_path / "var", "index_prefix": prefix, "demo_port": free_port()}
    return es_settings.model_copy(update=update)


def _docs(settings: Settings, **term: str) -> list[dict[str, Any]]:
    client = es_client(settings)
    client.indices.refresh(index=runs_alias(settings))
    query = {"bool": {"filter": [{"term": {k: v}} for k, v in term.items()]}}
    hits = client.search(index=runs_alias(settings), query=query, size=500)["hits"]["hits"]
    return [h["_source"] for h in hits]


def test_a_demo_run_leaves_its_run_summary(settings: Settings) -> None:
    summary = run_once(settings, demo=True)
    assert summary.error is None and summary.health_unrecorded == 0
    docs = _docs(settings, run_id=summary.run_id)
    kinds = sorted(d["kind"] for d in docs if d["kind"] != "source")
    assert kinds == ["alerts", "crawl", "process", "run"]
    by_kind = {d["kind"]: d for d in docs if d["kind"] != "source"}
    crawl, run = by_kind["crawl"], by_kind["run"]
    assert crawl["new"] == summary.crawl["articles_new"] >= 10
    assert crawl["fetched"] == summary.crawl["pages_fetched"]
    assert crawl["skipped"] == summary.crawl["skipped"]
    assert crawl["skipped_total"] == sum(summary.crawl["skipped"].values())
    assert sorted(crawl["sources"]) == sorted(s.name for s in demo_sources("http://x"))
    assert run["ok"] is True and run["seconds"] == pytest.approx(summary.seconds)
    assert by_kind["process"]["analyzed"] == summary.process.analyzed
    assert by_kind["process"]["indexed"] == summary.process.indexed
    per_source = {d["source"]: d["articles"] for d in docs if d["kind"] == "source"}
    assert sum(per_source.values()) == summary.crawl["articles_new"] + summary.crawl["articles_updated"]
    assert set(per_source) <= set(crawl["sources"]) and len(per_source) >= 2
    assert all(d["host"] and d["time"] for d in docs)

    # A second run is a second set of documents; nothing of the first is overwritten.
    again = run_once(settings, demo=True)
    assert again.run_id != summary.run_id
    assert len(_docs(settings, kind="run")) == 2
    assert [d["new"] for d in _docs(settings, run_id=again.run_id, kind="crawl")] == [0]


def test_a_canary_run_leaves_one_document_per_site(settings: Settings) -> None:
    setup_index(settings)
    with serve_demo() as server:
        sources = demo_sources(server.url)
        checks = [check_site(settings, s, pause_s=0) for s in sources]
    broken = SiteCheck(source="broken-site", problems=["feed https://x/rss: HTTP 404", "no recent article"])
    assert record_checks(settings, [*checks, broken]) == 0
    docs = {d["source"]: d for d in _docs(settings, kind="canary")}
    assert set(docs) == {s.name for s in sources} | {"broken-site"}
    assert all(docs[c.source]["ok"] is c.ok for c in checks)
    assert docs["broken-site"]["ok"] is False
    assert docs["broken-site"]["reason"] == "feed https://x/rss: HTTP 404"
    assert docs["broken-site"]["problems"] == broken.problems


def test_an_unreachable_elasticsearch_is_a_warning_and_a_count(tmp_path: Path) -> None:
    # 127.0.0.2 is not taken for the local node (which a run would start), and nothing listens there.
    settings = Settings(es_url="http://127.0.0.2:9", data_dir=tmp_path / "var", es_retries=1)
    warnings: list[str] = []
    docs = [run_doc("r1", 1.0, None, ["a"]), *canary_docs("r1", [SiteCheck(source="a")])]
    assert record(settings, docs, warn=warnings.append) == 2
    (line,) = warnings
    assert line.startswith("warning: crawl health not recorded (2 documents): cannot reach Elasticsearch")
    assert "\n" not in line
    assert record_checks(settings, [SiteCheck(source="a")], warn=warnings.append) == 1


def test_refused_documents_are_counted_and_the_rest_recorded(settings: Settings) -> None:
    """Before any setup the index is created on first use (never auto-created with guessed
    types); a document outside the strict mapping is refused alone."""
    good = run_doc("r2", 2.0, "error: boom", ["a"])
    bad = {"_id": "r2-bogus", "time": good["time"], "kind": "run", "unmapped_field": 1}
    warnings: list[str] = []
    assert record(settings, [good, bad], warn=warnings.append) == 1
    assert "1 of 2 documents refused, e.g. strict_dynamic_mapping_exception" in warnings[0]
    (stored,) = _docs(settings, run_id="r2")
    assert stored["ok"] is False and stored["error"] == "error: boom"
    client = es_client(settings)
    write = next(iter(client.indices.get_alias(name=runs_alias(settings))))
    assert write == f"{runs_alias(settings)}-000001"
    assert index_runs(settings, [good], client) == []  # the same _id again: overwritten, not doubled
    assert len(_docs(settings, run_id="r2")) == 1


def test_canary_documents_are_bounded() -> None:
    check = SiteCheck(source="noisy", problems=[f"{i}: " + "x" * 5000 for i in range(100)])
    (doc,) = canary_docs("r3", [check])
    assert len(doc["problems"]) == MAX_PROBLEMS
    assert all(len(p) == MAX_TEXT for p in doc["problems"]) and len(doc["reason"]) == MAX_TEXT
