"""A failed DAG run is never silent: under real Airflow (``dag.test()`` on a SQLite metadata DB),
a run whose task fails calls the newsmon DAGs' on_failure_callback, which mails the operators
through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.smtpsink import SmtpSink

from newsmon.airflow_local import airflow_env, prepare_airflow
from newsmon.canary import mail_run_failure
from newsmon.errors import NewsmonError
from newsmon.settings import load_settings

FAILING_DAG = """
from datetime import UTC, datetime

from airflow.sdk import dag, task

from newsmon.dags.newsmon_tasks import notify_failure


@task(retries=0)
def boom() -> None:
    raise RuntimeError("the site answered nonsense")


@dag(dag_id="newsmon_failing", schedule=None, start_date=datetime(2025, 1, 1, tzinfo=UTC),
     on_failure_callback=notify_failure)
def newsmon_failing() -> None:
    boom()


newsmon_failing()
"""

RUN = """
import json, sys
from airflow.dag_processing.dagbag import BundleDagBag

folder = sys.argv[1]
bag = BundleDagBag(folder, bundle_path=folder, bundle_name="dags-folder")
assert not bag.import_errors, bag.import_errors
run = bag.dags["newsmon_failing"].test()
print("RESULT " + json.dumps({"state": str(run.state), "run_id": run.run_id}), flush=True)
"""


@pytest.mark.integration
def test_a_failed_run_mails_the_operators(tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "newsmon_failing.py").write_text(FAILING_DAG, encoding="utf-8")
    airflow = airflow_env(tmp_path / "airflow") | {"AIRFLOW__CORE__DAGS_FOLDER": str(dags)}
    prepare_airflow(airflow)
    with SmtpSink() as sink:
        env = {
            **os.environ,
            **airflow,
            "NEWSMON_DATA_DIR": str(tmp_path / "var"),
            "NEWSMON_SMTP_HOST": sink.settings()["smtp_host"],
            "NEWSMON_SMTP_PORT": str(sink.port),
            "NEWSMON_ALERT_TO": "ops@example.org",
        }
        done = subprocess.run(
            [sys.executable, "-c", RUN, str(dags)], env=env, capture_output=True, text=True, timeout=600
        )
        results = [
            json.loads(x.removeprefix("RESULT ")) for x in done.stdout.splitlines() if x.startswith("RESULT ")
        ]
        assert done.returncode == 0 and results, done.stderr[-3000:]
        (result,) = results
        assert result["state"] == "failed"
        (mail,) = sink.wait_for(1)
    assert mail.rcpt_tos == ["ops@example.org"]
    assert mail.message["Subject"] == "[newsmon] newsmon_failing run failed"
    body = mail.message.get_content()
    assert result["run_id"] in body and "boom" in body


def test_no_recipients_is_a_one_line_error() -> None:
    with pytest.raises(NewsmonError, match="newsmon_daily: a run failed but NEWSMON_ALERT_TO is empty"):
        mail_run_failure(load_settings(alert_to=[]), "newsmon_daily", "manual__1", "task_failure")
