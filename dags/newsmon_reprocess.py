"""newsmon_reprocess (manual): re-run the analysis on stored articles, e.g. after a model or
taxonomy change, through ``newsmon.pipeline.reprocess_stored`` (what ``newsmon reprocess`` runs).

Params: ``since`` / ``until`` (an ISO date, a time ago such as ``7d``, or ES date math;
``until`` empty: up to now) and ``sites`` (registry names or hosts; empty: all sites).
Each site is its own mapped task, one at a time, so a failure can be retried on its own.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Param, dag, task
from newsmon_tasks import DEFAULT_ARGS, START, TAGS, log, notify_failure, summary


@task
def sites_to_reprocess(params: dict[str, Any] | None = None) -> list[str | None]:
    # None: one task over all sites.
    return list((params or {}).get("sites") or [None])


@task(max_active_tis_per_dag=1, execution_timeout=timedelta(hours=6))
def reprocess_site(site: str | None, params: dict[str, Any] | None = None) -> dict[str, Any]:
    from newsmon.airflow_local import airflow_settings
    from newsmon.pipeline import reprocess_stored

    params = params or {}
    since, until = params.get("since") or None, params.get("until") or None
    log.info("reprocessing %s from %s to %s", site or "all sites", since, until or "now")
    stats = reprocess_stored(
        airflow_settings(), since, until, site, progress=lambda n: log.info("reprocessed %d more", n)
    )
    return summary(stats)


@dag(
    dag_id="newsmon_reprocess",
    schedule=None,
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    on_failure_callback=notify_failure,
    params={
        "since": Param("7d", type="string", description="From: 2026-05-01, 7d, 24h or now-..."),
        "until": Param("", type="string", description="To (empty: now)."),
        "sites": Param([], type="array", items={"type": "string"}, description="Empty: all sites."),
    },
    tags=TAGS,
    doc_md=__doc__,
)
def newsmon_reprocess() -> None:
    reprocess_site.expand(site=sites_to_reprocess())


newsmon_reprocess()
