"""The Airflow DAGs, parsed by real Airflow: imports, structure, settings precedence, parse cost."""

from __future__ import annotations

import ast
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from newsmon.airflow_local import (
    CRAWL_POOL,
    CRAWL_POOL_SLOTS,
    DAGS_FOLDER,
    PASSWORDS_FILE,
    admin_password,
    airflow_env,
    airflow_settings,
    es_overrides,
    login_help,
    smtp_overrides,
)
from newsmon.errors import NewsmonError
from newsmon.settings import SmtpTls

# Airflow reads its configuration once, when first imported: point it at a scratch home
# before any test imports it, so the suite never touches ~/airflow.
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="newsmon-airflow-test-"))
atexit.register(shutil.rmtree, AIRFLOW_HOME, True)
os.environ.update(airflow_env(AIRFLOW_HOME))

DAG_IDS = {"newsmon_daily", "newsmon_feeds", "newsmon_reprocess", "newsmon_canary"}
HEAVY = ("torch", "transformers", "kiwipiepy", "scrapy", "elasticsearch", "jieba", "lingua", "trafilatura")
# The DAG processor's view: a bundle DagBag puts the dags folder on sys.path (for newsmon_tasks).
PARSE = (
    "from airflow.dag_processing.dagbag import BundleDagBag\n"
    f"bag = BundleDagBag({str(DAGS_FOLDER)!r}, bundle_path={str(DAGS_FOLDER)!r}, bundle_name='dags-folder')\n"
)


@pytest.fixture(scope="module")
def dagbag() -> Any:
    from airflow.dag_processing.dagbag import BundleDagBag

    return BundleDagBag(DAGS_FOLDER, bundle_path=DAGS_FOLDER, bundle_name="dags-folder")


def test_dags_import_without_errors_or_warnings(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert dagbag.captured_warnings == {}
    assert set(dagbag.dag_ids) == DAG_IDS


def test_common_policies(dagbag: Any) -> None:
    for dag in dagbag.dags.values():
        assert dag.catchup is False, dag.dag_id
        assert dag.max_active_runs == 1, dag.dag_id
        assert "newsmon" in dag.tags
        # A failed run mails the operators (tests/test_dag_failure_mail.py runs one).
        assert getattr(dag.on_failure_callback, "__name__", None) == "notify_failure", dag.dag_id
        for task in dag.tasks:
            assert task.execution_timeout is not None, task.task_id
            # The canary's report mails; a retry would mail twice. check_crawls has nothing to retry.
            no_retry = task.task_id in ("report", "check_crawls")
            assert task.retries >= (0 if no_retry else 1), task.task_id


def test_schedules(dagbag: Any) -> None:
    assert dagbag.dags["newsmon_feeds"].schedule == timedelta(minutes=15)
    assert dagbag.dags["newsmon_daily"].schedule == "0 21 * * *"
    assert dagbag.dags["newsmon_canary"].schedule == "0 20 * * *"
    assert dagbag.dags["newsmon_reprocess"].schedule is None


def _mapped(dag: Any, task_id: str) -> Any:
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    task = dag.get_task(task_id)
    assert isinstance(task, MappedOperator), f"{dag.dag_id}.{task_id} is not a mapped task"
    return task


def test_daily_maps_one_crawl_per_source_in_the_crawl_pool(dagbag: Any) -> None:
    dag = dagbag.dags["newsmon_daily"]
    crawl = _mapped(dag, "crawl_source")
    assert crawl.pool == CRAWL_POOL
    # Sources are crawled side by side, as many as the pool has slots (per-source locks).
    assert crawl.max_active_tis_per_dag is None and CRAWL_POOL_SLOTS > 1
    assert crawl.upstream_task_ids == {"enabled_sources"}
    # A failed source must not keep the others' articles out of the index.
    assert dag.get_task("analyze_and_index").trigger_rule == "all_done"
    assert dag.get_task("digest").upstream_task_ids == {"analyze_and_index"}
    # ... but it turns the run red: check_crawls, a leaf beside the digest, fails then.
    check = dag.get_task("check_crawls")
    assert check.trigger_rule == "all_done" and check.retries == 0
    assert check.upstream_task_ids == {"enabled_sources", "crawl_source"}
    # The scheduled rollover (clusters without ILM) follows the day's indexing, beside the digest.
    assert dag.get_task("roll_over_index").upstream_task_ids == {"analyze_and_index"}
    assert {t.task_id for t in dag.leaves} == {"digest", "check_crawls", "roll_over_index"}


def test_feeds_chain_and_demo_param(dagbag: Any) -> None:
    dag = dagbag.dags["newsmon_feeds"]
    assert dag.get_task("crawl_feeds").pool == CRAWL_POOL
    assert dag.get_task("analyze_and_index").upstream_task_ids == {"crawl_feeds"}
    assert dag.get_task("immediate_alerts").upstream_task_ids == {"analyze_and_index"}
    assert dag.params["demo"] is False
    # Feeds polls go ahead of the daily crawl's sources in the shared pool.
    daily_crawl = dagbag.dags["newsmon_daily"].get_task("crawl_source")
    assert dag.get_task("crawl_feeds").priority_weight > daily_crawl.partial_kwargs.get("priority_weight", 1)


def test_reprocess_params_and_mapping(dagbag: Any) -> None:
    dag = dagbag.dags["newsmon_reprocess"]
    assert set(dag.params) == {"since", "until", "sites"}
    assert _mapped(dag, "reprocess_site").max_active_tis_per_dag == 1


def test_canary_checks_each_site_and_reports_whatever_happened(dagbag: Any) -> None:
    dag = dagbag.dags["newsmon_canary"]
    _mapped(dag, "check_site")
    report = dag.get_task("report")
    assert report.trigger_rule == "all_done"
    assert report.upstream_task_ids == {"enabled_sources", "check_site", "housekeeping"}


def test_parsing_imports_no_heavy_modules() -> None:
    code = PARSE + (
        "import sys, json\n"
        "assert not bag.import_errors, bag.import_errors\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_dag_files_call_the_app_only() -> None:
    """The floors (ARCHITECTURE.md): a DAG task calls app functions (newsmon.pipeline, .canary,
    .retention, .health, .airflow_local, .errors), never a stage; type-only imports do not run."""
    allowed = (
        "newsmon.pipeline",
        "newsmon.canary",
        "newsmon.retention",
        "newsmon.health",
        "newsmon.airflow_local",
    )
    allowed += ("newsmon.errors", "newsmon.settings", "newsmon_tasks", "airflow", "pendulum")
    wrong = []
    for path in sorted(DAGS_FOLDER.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        type_only = {
            id(node)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
            for node in ast.walk(block)
        }
        for node in ast.walk(tree):
            if id(node) in type_only or not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "__future__":
                    continue
                if not any(name == a or name.startswith(a + ".") for a in allowed):
                    wrong.append(f"{path.name}: {name}")
    assert not wrong, wrong


@pytest.fixture
def dag_helpers() -> Any:
    """``dags/newsmon_tasks.py``, imported as the DAG files do (the dags folder on sys.path)."""
    sys.path.insert(0, str(DAGS_FOLDER))
    try:
        import newsmon_tasks
    finally:
        sys.path.remove(str(DAGS_FOLDER))
    return newsmon_tasks


def test_xcom_summary_keeps_counts_and_paths_only(dag_helpers: Any) -> None:
    class Stats:
        def __init__(self) -> None:
            self.pages = 3
            self.out_file = Path("/x/inbox/a.jsonl")
            self.errors = {"timeout": 1}
            self.error = None
            self.outbox = ["a whole message"]
            self.scrapy = {"start_time": object()}

    assert dag_helpers.summary(Stats()) == {
        "pages": 3,
        "out_file": "/x/inbox/a.jsonl",
        "errors": {"timeout": 1},
        "error": None,
    }


def test_a_crawl_fails_its_task_only_when_it_died_or_nothing_answered(dag_helpers: Any) -> None:
    from newsmon.crawlers.run import CrawlStats

    def stats(pages: int, errors: dict[str, int], exit_code: int = 0) -> CrawlStats:
        return CrawlStats(pages, 1, 0, 0, {}, errors, Path("/x/a.jsonl"), exit_code=exit_code)

    assert dag_helpers.crawl_result(stats(5, {"http_404": 2}))["errors"] == {"http_404": 2}
    assert dag_helpers.crawl_result(stats(0, {}))["pages_fetched"] == 0  # nothing new is no failure
    with pytest.raises(NewsmonError, match="exit code 1"):
        dag_helpers.crawl_result(stats(5, {"crawl_process": 1}, exit_code=1))
    with pytest.raises(NewsmonError, match="no URL answered"):
        dag_helpers.crawl_result(stats(0, {"dns": 3}))


# --- settings precedence: Airflow connection > NEWSMON_* environment > defaults ------------


def _conn(conn_type: str, **fields: Any) -> Any:
    from airflow.sdk import Connection

    extra = fields.pop("extra", None)
    return Connection(conn_id="x", conn_type=conn_type, extra=json.dumps(extra) if extra else None, **fields)


def test_es_connection_fields() -> None:
    conn = _conn(
        "http",
        host="es.internal",
        port=9243,
        schema="https",
        login="elastic",
        password="pw",
        extra={"ca_certs": "/certs/ca.crt"},
    )
    assert es_overrides(conn) == {
        "es_url": "https://es.internal:9243",
        "es_user": "elastic",
        "es_password": "pw",
        "es_ca_certs": "/certs/ca.crt",
    }
    assert es_overrides(_conn("https", host="es")) == {"es_url": "https://es:9200"}


def test_smtp_connection_follows_the_smtp_providers_tls_flags() -> None:
    assert smtp_overrides(_conn("smtp", host="mx"))["smtp_tls"] == SmtpTls.ssl
    starttls = smtp_overrides(_conn("smtp", host="mx", extra={"disable_ssl": True}))
    assert (starttls["smtp_tls"], starttls["smtp_port"]) == (SmtpTls.starttls, 587)
    plain = smtp_overrides(
        _conn(
            "smtp",
            host="mx",
            port=2525,
            login="u",
            password="p",
            extra={"disable_ssl": "true", "disable_tls": "true", "from_email": "ops@example.org"},
        )
    )
    assert plain == {
        "smtp_host": "mx",
        "smtp_port": 2525,
        "smtp_tls": SmtpTls.none,
        "smtp_user": "u",
        "smtp_password": "p",
        "alert_from": "ops@example.org",
    }


def test_connection_beats_environment_which_beats_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSMON_ES_URL", "http://env-es:9200")
    monkeypatch.setenv("NEWSMON_ES_USER", "env-user")
    monkeypatch.setenv("NEWSMON_SMTP_HOST", "env-mx")
    connections = {"newsmon_es": _conn("http", host="conn-es", port=9201)}
    settings = airflow_settings(connections.get)
    assert settings.es_url == "http://conn-es:9201"  # connection
    assert settings.es_user == "env-user"  # not in the connection: environment
    assert settings.smtp_host == "env-mx"  # no SMTP connection: environment
    assert settings.smtp_port == 25  # neither: default


def test_connections_come_from_airflow_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    smtp = {
        "conn_type": "smtp",
        "host": "mx.example",
        "port": 1025,
        "extra": {"disable_ssl": True, "disable_tls": True},
    }
    monkeypatch.setenv("AIRFLOW_CONN_NEWSMON_SMTP", json.dumps(smtp))
    monkeypatch.setenv("NEWSMON_SMTP_HOST", "env-mx")
    settings = airflow_settings()
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_tls) == ("mx.example", 1025, SmtpTls.none)
    assert settings.es_url == "http://127.0.0.1:9200"  # no newsmon_es connection anywhere


# --- local standalone ------------------------------------------------------------------------


def test_local_airflow_env_and_login_help(tmp_path: Path) -> None:
    env = airflow_env(tmp_path, port=8111)
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(DAGS_FOLDER)
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{tmp_path}/airflow.db"
    assert admin_password(tmp_path) is None
    (tmp_path / PASSWORDS_FILE).write_text('{"admin": "s3cret"}')
    assert admin_password(tmp_path) == "s3cret"
    text = login_help(tmp_path, 8111, "s3cret")
    assert "http://localhost:8111" in text and "admin" in text and "s3cret" in text
