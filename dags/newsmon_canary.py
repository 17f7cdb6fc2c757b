"""newsmon_canary: daily health check of every site, and the data dir's housekeeping.

Per site (mapped): extract one recent article and check title, body and date; compare the
site's article count on the last complete day with its own history in the index. Broken
sites, plus data-dir warnings (inbox or spool files stuck for days), are mailed to the
operators (``NEWSMON_ALERT_TO``). Housekeeping: see ``newsmon.retention``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import TriggerRule, dag, task
from newsmon_tasks import DEFAULT_ARGS, START, TAGS, enabled_sources, log, notify_failure, summary


@task(max_active_tis_per_dag=4, execution_timeout=timedelta(minutes=10))
def check_site(name: str) -> dict[str, Any]:
    """A broken site is a result, not a task failure; only the canary's own errors fail it."""
    from newsmon.airflow_local import airflow_settings
    from newsmon.canary import check_site as check
    from newsmon.pipeline import load_sources

    settings = airflow_settings()
    (source,) = load_sources(settings, names=[name])
    return check(settings, source).to_dict()


@task(execution_timeout=timedelta(minutes=15))
def housekeeping() -> dict[str, Any]:
    from newsmon.airflow_local import airflow_settings
    from newsmon.retention import cleanup

    stats = cleanup(airflow_settings())
    return summary(stats) | {"problems": stats.problems()}


# ALL_DONE: report whatever was checked, and name the sites whose check itself failed.
@task(trigger_rule=TriggerRule.ALL_DONE, retries=0)
def report(names: list[str], checks: list[dict[str, Any]], kept: dict[str, Any] | None) -> dict[str, Any]:
    from newsmon.airflow_local import airflow_settings
    from newsmon.canary import SiteCheck, mail_operators, record_checks

    # A slice reads all results in one request (iterating probes past the end, which logs an error).
    results = [SiteCheck(**c) for c in checks[:]]
    checked = {r.source for r in results}
    results += [
        SiteCheck(source=n, problems=["the canary check itself failed: see its Airflow task log"])
        for n in names
        if n not in checked
    ]
    other = kept["problems"] if kept else ["housekeeping failed: see its Airflow task log"]
    settings = airflow_settings()
    unrecorded = record_checks(settings, results, warn=log.warning)
    mailed = mail_operators(settings, results, other)
    return {
        "sites": len(results),
        "broken": sum(not r.ok for r in results),
        "mailed": mailed,
        "health_unrecorded": unrecorded,
    }


@dag(
    dag_id="newsmon_canary",
    schedule="0 20 * * *",  # an hour before newsmon_daily: a broken site is known before the digest
    start_date=START,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    default_args=DEFAULT_ARGS,
    on_failure_callback=notify_failure,
    tags=TAGS,
    doc_md=__doc__,
)
def newsmon_canary() -> None:
    names = enabled_sources()
    report(names, check_site.expand(name=names), housekeeping())


newsmon_canary()
