"""The DAGs end to end under real Airflow: ``dag.test()`` on a SQLite metadata DB, the demo
site over HTTP, the real Elasticsearch node and a real SMTP server.

Airflow runs in a child process: it reads its configuration once per process, and the
child's environment is exactly what a worker would see (NEWSMON_* variables and an
``AIRFLOW_CONN_NEWSMON_SMTP`` connection, which must win over NEWSMON_SMTP_*).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.smtpsink import HOST, ReceivedMail, SmtpSink

from newsmon.airflow_local import DAGS_FOLDER, airflow_env, prepare_airflow
from newsmon.crawlers.demo_server import DEMO_SOURCES, serve_demo
from newsmon.index.localnode.launcher import free_port
from newsmon.pipeline import pending_inbox_files
from newsmon.settings import Settings

pytestmark = pytest.mark.integration

# argv[1]: JSON [[dag_id, conf], ...]; prints one RESULT line per run.
RUN_DAGS = f"""
import json, sys, time
from airflow.dag_processing.dagbag import BundleDagBag
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session

bag = BundleDagBag({str(DAGS_FOLDER)!r}, bundle_path={str(DAGS_FOLDER)!r}, bundle_name="dags-folder")
assert not bag.import_errors, bag.import_errors
for dag_id, conf in json.loads(sys.argv[1]):
    started = time.monotonic()
    run = bag.dags[dag_id].test(run_conf=conf)
    seconds = time.monotonic() - started
    with create_session() as session:
        xcoms = {{}}
        for x in session.query(XComModel).filter_by(dag_id=dag_id, run_id=run.run_id, key="return_value"):
            xcoms.setdefault(x.task_id, []).append(x.value)
        tis = run.get_task_instances(session=session)
        states = {{f"{{ti.task_id}}[{{ti.map_index}}]": str(ti.state) for ti in tis}}
        durations = {{ti.task_id: round(ti.duration or 0, 1) for ti in tis}}
    result = dict(dag_id=dag_id, state=str(run.state), states=states, xcoms=xcoms, seconds=seconds,
                  durations=durations)
    print("RESULT " + json.dumps(result, default=str), flush=True)
"""


@pytest.fixture
def settings(es_settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    # Unique: NEWSMON_TEST_ES_URL may reuse a node that holds earlier runs' indices.
    prefix = f"e2e-{request.node.name.lower().replace('_', '-')[:30]}-{uuid.uuid4().hex[:6]}"
    return es_settings.model_copy(update={"data_dir": tmp_path / "var", "index_prefix": prefix})


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


def run_dags(
    runs: list[tuple[str, dict[str, Any]]],
    settings: Settings,
    sink: SmtpSink,
    tmp_path: Path,
    **extra_env: str,
) -> dict[str, dict[str, Any]]:
    airflow = airflow_env(tmp_path / "airflow")
    prepare_airflow(airflow)  # what `newsmon airflow` does: migrate the SQLite DB, create the pool
    smtp = {
        "conn_type": "smtp",
        "host": HOST,
        "port": sink.port,
        "extra": {"disable_ssl": True, "disable_tls": True},
    }
    env = {
        **os.environ,
        **airflow,
        "NEWSMON_ES_URL": settings.es_url,
        "NEWSMON_DATA_DIR": str(settings.data_dir),
        "NEWSMON_INDEX_PREFIX": settings.index_prefix,
        "NEWSMON_ALERT_TO": "analyst@example.org",
        "AIRFLOW_CONN_NEWSMON_SMTP": json.dumps(smtp),
        "NEWSMON_SMTP_PORT": str(free_port()),  # nothing listens there: the connection must win
        "NEWSMON_DEMO_PORT": str(free_port()),
        **extra_env,
    }
    done = subprocess.run(
        [sys.executable, "-c", RUN_DAGS, json.dumps(runs)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    log = tmp_path / "airflow-run.log"  # the whole child output, for a failing run
    log.write_text(done.stdout + done.stderr, encoding="utf-8")
    results = [
        json.loads(line.removeprefix("RESULT "))
        for line in done.stdout.splitlines()
        if line.startswith("RESULT ")
    ]
    assert done.returncode == 0 and len(results) == len(runs), f"see {log}: {done.stderr[-3000:]}"
    for result in results:
        print(f"{result['dag_id']} dag.test(): {result['seconds']:.1f} s, per task {result['durations']}")
        assert result["state"] == "success", f"see {log}: {result['states']}"
        assert set(result["states"].values()) == {"success"}, result["states"]
        # Only paths, names and counts go through XCom, never article text.
        assert all(len(json.dumps(v)) < 4000 for v in result["xcoms"].values()), result["xcoms"]
    return {r["dag_id"]: r["xcoms"] for r in results}


def _only(values: list[Any]) -> Any:
    (value,) = values
    return value


def _health_docs(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """The crawl-health documents by kind."""
    from newsmon.index.client import es_client, runs_alias

    client = es_client(settings)
    client.indices.refresh(index=runs_alias(settings))
    hits = client.search(index=runs_alias(settings), size=1000)["hits"]["hits"]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for hit in hits:
        by_kind.setdefault(hit["_source"]["kind"], []).append(hit["_source"])
    return by_kind


def test_feeds_dag_indexes_the_demo_site_and_mails_the_alert(
    settings: Settings, sink: SmtpSink, tmp_path: Path
) -> None:
    from newsmon.index.search import search_articles

    xcoms = run_dags([("newsmon_feeds", {"demo": True})], settings, sink, tmp_path)["newsmon_feeds"]
    mails = sink.wait_for(1)

    crawl, indexed, alerts = (
        _only(xcoms[t]) for t in ("crawl_feeds", "analyze_and_index", "immediate_alerts")
    )
    assert crawl["articles_new"] >= 5 and Path(crawl["out_file"]).parent == settings.data_dir / "inbox"
    assert indexed["analyzed"] == crawl["articles_new"] == indexed["indexed"]["created"]
    assert pending_inbox_files(settings) == []
    assert search_articles(settings, "", size=1).total == crawl["articles_new"]
    assert alerts["emails"] == len(mails) >= 1
    assert mails[0].rcpt_tos == ["analyst@example.org"]
    health = _health_docs(settings)
    (crawl_doc,) = health["crawl"]
    assert crawl_doc["new"] == crawl["articles_new"] and crawl["health_unrecorded"] == 0
    assert sum(d["articles"] for d in health["source"]) == crawl["articles_new"] + crawl["articles_updated"]
    assert [d["alerts"]["emails"] for d in health["alerts"]] == [alerts["emails"]]


def _mails_to(mails: list[ReceivedMail], subject_start: str) -> list[ReceivedMail]:
    return [m for m in mails if str(m.message["Subject"]).startswith(subject_start)]


def test_daily_crawl_reprocess_and_canary(settings: Settings, sink: SmtpSink, tmp_path: Path) -> None:
    from newsmon.index.search import search_articles

    # The legacy outlet's only list page is down: its crawl finds nothing, the canary says so.
    down = {"/legacy/list.html": lambda h: h.send_plain(503, b"maintenance")}
    with serve_demo(routes=down) as server:
        registry = tmp_path / "sources.yaml"
        registry.write_text(
            DEMO_SOURCES.read_text(encoding="utf-8").replace("{base}", server.url), encoding="utf-8"
        )
        reprocess = {"since": "2000-01-01", "until": "", "sites": ["demo-zh-tech"]}
        xcoms = run_dags(
            [("newsmon_daily", {}), ("newsmon_reprocess", reprocess), ("newsmon_canary", {})],
            settings,
            sink,
            tmp_path,
            NEWSMON_SOURCES=str(registry),
        )

    daily, reprocessed, canary = (xcoms[d] for d in ("newsmon_daily", "newsmon_reprocess", "newsmon_canary"))
    assert _only(daily["enabled_sources"]) == ["demo-ko-tech", "demo-ko-legacy", "demo-zh-tech"]
    crawled = daily["crawl_source"]
    assert len(crawled) == 3 and len({c["out_file"] for c in crawled}) == 3  # one mapped task, one file each
    new = sum(c["articles_new"] for c in crawled)
    assert new >= 10 and _only(daily["analyze_and_index"])["indexed"]["created"] == new
    assert search_articles(settings, "", size=1).total == new
    assert _only(daily["digest"])["emails"] == 0  # the bundled rules have no digest rule

    # Reprocess re-reads just the one site's articles; the same analysis changes nothing.
    zh = next(c["articles_new"] for c in crawled if c["out_file"].endswith("-daily-demo-zh-tech.jsonl"))
    assert _only(reprocessed["sites_to_reprocess"]) == ["demo-zh-tech"]
    assert _only(reprocessed["reprocess_site"]) == {"read": zh, "updated": 0, "unchanged": zh, "failed": 0}

    checks = {c["source"]: c for c in canary["check_site"]}
    assert [name for name, c in checks.items() if c["problems"]] == ["demo-ko-legacy"]
    assert "HTTP 503" in checks["demo-ko-legacy"]["problems"][0]
    assert _only(canary["report"]) == {"sites": 3, "broken": 1, "mailed": True, "health_unrecorded": 0}
    # The crawl-health index holds each task's summary and each site's canary verdict.
    health = _health_docs(settings)
    assert sorted(d["source"] for d in health["crawl"]) == sorted(checks)
    assert {d["source"]: d["new"] for d in health["crawl"]} == {
        c["source"]: c["articles_new"] for c in crawled
    }
    assert {d["source"]: d["ok"] for d in health["canary"]} == {
        n: not c["problems"] for n, c in checks.items()
    }
    legacy = next(d for d in health["canary"] if d["source"] == "demo-ko-legacy")
    assert legacy["reason"] == checks["demo-ko-legacy"]["problems"][0]
    assert [d["analyzed"] for d in health["process"]] == [_only(daily["analyze_and_index"])["analyzed"]]
    assert len(health["alerts"]) == 1  # the digest task
    (report,) = _mails_to(sink.wait_for(1), "[newsmon canary]")
    assert "demo-ko-legacy" in report.message.get_content()


def test_feeds_dag_on_the_shared_state_hands_off_through_the_queue(
    settings: Settings, sink: SmtpSink, tmp_path: Path, state_url: str
) -> None:
    from newsmon.alerts.ledger import Ledger
    from newsmon.inbox import queued

    runs = [("newsmon_feeds", {"demo": True})]
    xcoms = run_dags(runs, settings, sink, tmp_path, NEWSMON_STATE_URL=state_url)["newsmon_feeds"]
    mails = sink.wait_for(1)

    crawl, indexed = (_only(xcoms[t]) for t in ("crawl_feeds", "analyze_and_index"))
    assert crawl["articles_new"] >= 5 and crawl["out_file"] is None  # the queue, not a file
    assert indexed["analyzed"] == crawl["articles_new"] == indexed["indexed"]["created"]
    assert queued(state_url) == 0 and not list((settings.data_dir / "inbox").glob("*.jsonl*"))
    ledger = Ledger.open_shared(state_url)
    states = ledger.states("export-controls")
    ledger.close()
    assert mails and set(states.values()) == {"sent"} and len(states) == len(mails)
    assert not settings.layout.alerts_ledger.exists()  # the ledger is the shared one
