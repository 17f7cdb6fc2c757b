"""newsmon_daily: the full crawl (feeds, news sitemaps and list pages) of every enabled
source, one mapped task per source so one broken site never stops the others; then
analyse and index everything the crawls delivered, and mail the daily digest.

Runs at 21:00 UTC, i.e. 06:00 in Seoul and 05:00 in Beijing: the digest is waiting at the
start of the working day.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import dag, task
from newsmon_tasks import (
    DEFAULT_ARGS,
    START,
    TAGS,
    analyze_and_index,
    crawl_result,
    enabled_sources,
    log,
    send_alerts,
)

from newsmon.airflow_local import CRAWL_POOL


# One crawl per data dir at a time (crawlers.store.crawl_lock): the pool serialises the
# crawls of all DAGs, and max_active_tis_per_dag keeps this DAG to one source at a time even
# if the pool is enlarged. Scrapy's per-domain delays do the politeness within a crawl.
@task(pool=CRAWL_POOL, max_active_tis_per_dag=1, execution_timeout=timedelta(hours=1))
def crawl_source(name: str) -> dict[str, Any]:
    from crawlers.registry import select_sources
    from newsmon.airflow_local import airflow_settings
    from newsmon.pipeline import crawl_to_inbox, load_sources

    settings = airflow_settings()
    sources = select_sources(load_sources(settings), [name])
    stats = crawl_to_inbox(settings, sources, tag=f"daily-{name}", progress=log.info)
    return crawl_result(stats)


@dag(
    dag_id="newsmon_daily",
    schedule="0 21 * * *",
    start_date=START,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=12),
    default_args=DEFAULT_ARGS,
    tags=TAGS,
    doc_md=__doc__,
)
def newsmon_daily() -> None:
    crawled = crawl_source.expand(name=enabled_sources())
    indexed = analyze_and_index()
    crawled >> indexed >> send_alerts.override(task_id="digest")("digest")


newsmon_daily()
