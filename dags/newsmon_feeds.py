"""newsmon_feeds: every 15 minutes, poll the feeds of every enabled source, analyse and index
what is new, and send the immediate alerts.

Trigger with ``{"demo": true}`` to crawl the bundled offline demo site instead of the
registry (a local server runs for the duration of the crawl task).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Param, dag, task
from newsmon_tasks import (
    DEFAULT_ARGS,
    START,
    TAGS,
    analyze_and_index,
    crawl_result,
    log,
    notify_failure,
    send_alerts,
)

from newsmon.airflow_local import CRAWL_POOL


# priority_weight: in the crawl pool a feeds poll goes ahead of the daily full crawl's sources.
@task(pool=CRAWL_POOL, priority_weight=10, execution_timeout=timedelta(minutes=10))
def crawl_feeds(params: dict[str, Any] | None = None) -> dict[str, Any]:
    from contextlib import ExitStack

    from newsmon.airflow_local import airflow_settings
    from newsmon.health import record_crawl_health
    from newsmon.pipeline import crawl_sources, crawl_to_inbox

    settings = airflow_settings()
    with ExitStack() as stack:
        demo = bool(params and params.get("demo"))
        sources = crawl_sources(settings, stack, demo=demo, progress=log.info)
        stats = crawl_to_inbox(settings, sources, feeds_only=True, tag="feeds", progress=log.info)
    unrecorded = record_crawl_health(settings, stats, [s.name for s in sources], warn=log.warning)
    return crawl_result(stats) | {"health_unrecorded": unrecorded}


@dag(
    dag_id="newsmon_feeds",
    schedule=timedelta(minutes=15),
    start_date=START,
    catchup=False,
    max_active_runs=1,  # a slow poll delays the next one instead of piling up runs
    dagrun_timeout=timedelta(minutes=50),
    default_args=DEFAULT_ARGS,
    on_failure_callback=notify_failure,
    params={"demo": Param(False, type="boolean", description="Crawl the bundled offline demo site.")},
    tags=TAGS,
    doc_md=__doc__,
)
def newsmon_feeds() -> None:
    crawled = crawl_feeds()
    indexed = analyze_and_index()
    crawled >> indexed >> send_alerts.override(task_id="immediate_alerts")("immediate")


newsmon_feeds()
