"""newsmon_daily: the full crawl (feeds, news sitemaps and list pages) of every enabled
source, one mapped task per source so one broken site never stops the others; then
analyse and index everything the crawls delivered, mail the daily digest, and roll the
index over when it is due (on clusters without an ILM policy on it).

The source crawls run side by side on the workers, as many at once as the pool
``newsmon_crawl`` has slots. A source whose crawl failed (after its retries) turns the run
red through ``check_crawls``; the other sources' articles are indexed and the digest is
sent all the same.

Runs at 21:00 UTC, i.e. 06:00 in Seoul and 05:00 in Beijing: the digest is waiting at the
start of the working day.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import TriggerRule, dag, task
from newsmon_tasks import (
    DEFAULT_ARGS,
    START,
    TAGS,
    analyze_and_index,
    crawl_result,
    enabled_sources,
    log,
    notify_failure,
    send_alerts,
)

from newsmon.airflow_local import CRAWL_POOL

# The pool bounds how many crawls run at once, over all DAGs; each crawl locks its sources'
# stores (crawlers.store.source_locks), so sources run side by side and one source never
# twice at once. Scrapy's per-domain delays do the politeness within a crawl.
# LOCK_WAIT: a feeds poll that holds this source's lock is done within its 10-minute timeout.
LOCK_WAIT = timedelta(minutes=10)


@task(pool=CRAWL_POOL, execution_timeout=timedelta(hours=1))
def crawl_source(name: str) -> dict[str, Any]:
    from newsmon.airflow_local import airflow_settings
    from newsmon.health import record_crawl_health
    from newsmon.pipeline import crawl_to_inbox, load_sources

    settings = airflow_settings()
    sources = load_sources(settings, names=[name])
    stats = crawl_to_inbox(
        settings, sources, tag=f"daily-{name}", progress=log.info, lock_wait=LOCK_WAIT.total_seconds()
    )
    unrecorded = record_crawl_health(settings, stats, [name], warn=log.warning)
    return crawl_result(stats) | {"source": name, "health_unrecorded": unrecorded}


# ALL_DONE: once every crawl has finished, fail (the run) if one of them failed. No retries:
# there is nothing to retry, the crawls have had theirs.
@task(trigger_rule=TriggerRule.ALL_DONE, retries=0, execution_timeout=timedelta(minutes=5))
def check_crawls(names: list[str], crawled: list[dict[str, Any]]) -> dict[str, Any]:
    from newsmon.pipeline import check_crawls as check

    # A slice reads all results in one request; a failed crawl has none.
    return check(names, crawled[:])


# Where the cluster has no ILM policy on the index (the local node), start a new index
# generation once the current one is old or big enough; with ILM this only reports so.
@task(execution_timeout=timedelta(minutes=5))
def roll_over_index() -> dict[str, Any]:
    from newsmon.airflow_local import airflow_settings
    from newsmon.pipeline import roll_over_index as roll_over

    return roll_over(airflow_settings())


@dag(
    dag_id="newsmon_daily",
    schedule="0 21 * * *",
    start_date=START,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=12),
    default_args=DEFAULT_ARGS,
    on_failure_callback=notify_failure,
    tags=TAGS,
    doc_md=__doc__,
)
def newsmon_daily() -> None:
    names = enabled_sources()
    crawled = crawl_source.expand(name=names)
    indexed = analyze_and_index()
    crawled >> indexed >> send_alerts.override(task_id="digest")("digest")
    indexed >> roll_over_index()  # after the day's indexing, beside the digest
    # A leaf beside the digest: a run is red when either fails, and one never hides the other.
    check_crawls(names, crawled)


newsmon_daily()
