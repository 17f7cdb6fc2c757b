"""Tasks and defaults the newsmon DAGs share (not a DAG file: listed in ``.airflowignore``).

Every task is a thin call into the library the ``newsmon`` CLI uses too. Library modules
are imported inside the callables so that parsing the DAG files stays cheap (no Scrapy,
Elasticsearch client or NLP models in the DAG processor), and tasks hand each other file
paths and counts only: article bodies travel through files under ``NEWSMON_DATA_DIR``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import TriggerRule, task

if TYPE_CHECKING:
    from newsmon.alerts.rules import Mode
    from newsmon.crawlers.run import CrawlStats

log = logging.getLogger("newsmon.dags")

START = datetime(2025, 1, 1, tzinfo=UTC)
TAGS = ["newsmon"]
DEFAULT_ARGS: dict[str, Any] = {
    "owner": "newsmon",
    "retries": 2,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": 2.0,  # 2, 4 min: enough for a site or Elasticsearch hiccup
    "max_retry_delay": timedelta(minutes=30),
    "execution_timeout": timedelta(minutes=30),
}


def notify_failure(context: Any) -> None:
    """Every DAG's on_failure_callback: mail the operators (NEWSMON_ALERT_TO, over the alert
    SMTP settings) that a run failed, so a red run is never silent. Airflow runs it once per
    failed run, and logs what it raises."""
    from newsmon.airflow_local import airflow_settings
    from newsmon.canary import mail_run_failure

    ti = context.get("ti")
    mail_run_failure(
        airflow_settings(),
        dag_id=context["dag"].dag_id,
        run_id=str(context["run_id"]),
        reason=str(context.get("reason") or ""),
        task_id=getattr(ti, "task_id", None),
    )


def summary(stats: Any) -> dict[str, Any]:
    """The XCom-sized part of a stats object: numbers, short strings, paths and count maps."""
    out: dict[str, Any] = {}
    for key, value in vars(stats).items():
        if value is None or isinstance(value, bool | int | float | str):
            out[key] = value
        elif isinstance(value, Path):
            out[key] = str(value)
        elif isinstance(value, dict) and all(isinstance(v, int) for v in value.values()):
            out[key] = dict(value)
    return out


def crawl_result(stats: CrawlStats) -> dict[str, Any]:
    """Fail the task (and so retry it) when the crawl process died or no URL answered at all.

    Either way what was crawled is in the inbox already; errors of single pages are counts.
    """
    from newsmon.errors import NewsmonError

    if stats.errors.get("crawl_process"):
        raise NewsmonError(f"crawl process failed (exit code {stats.exit_code}); log: {stats.log_file}")
    if not stats.pages_fetched and stats.errors:
        raise NewsmonError(f"no URL answered: {stats.errors}; log: {stats.log_file}")
    return summary(stats)


@task
def enabled_sources() -> list[str]:
    """Names only: each mapped task reloads its source from the registry."""
    from newsmon.airflow_local import airflow_settings
    from newsmon.pipeline import load_sources

    return [s.name for s in load_sources(airflow_settings())]


# ALL_DONE: whatever the crawls that did succeed put in the inbox gets indexed.
@task(trigger_rule=TriggerRule.ALL_DONE, execution_timeout=timedelta(minutes=45))
def analyze_and_index() -> dict[str, Any]:
    from newsmon.airflow_local import airflow_settings
    from newsmon.health import record_stage_health
    from newsmon.pipeline import index_inbox

    settings = airflow_settings()
    stats = index_inbox(settings, progress=log.info)
    return summary(stats) | {"health_unrecorded": record_stage_health(settings, stats, warn=log.warning)}


@task(execution_timeout=timedelta(minutes=15))
def send_alerts(mode: Mode) -> dict[str, Any]:
    """Run the ``mode`` alert rules; an SMTP failure fails the task so Airflow retries it.

    Unsent stories stay pending in the alert ledger, so the retry sends exactly those.
    """
    from newsmon.airflow_local import airflow_settings
    from newsmon.errors import NewsmonError
    from newsmon.health import record_stage_health
    from newsmon.pipeline import alert_run

    settings = airflow_settings()
    stats = alert_run(settings, mode=mode, progress=log.info)
    record_stage_health(settings, stats, warn=log.warning)
    if stats.error:
        raise NewsmonError(stats.error)
    return summary(stats)
