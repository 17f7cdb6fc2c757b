"""Benchmark (not a test): latency of typical analyst queries on >= 100k articles.

    .venv/bin/python bench/search.py [--docs 100000] [--runs 30] [--reindex]

Articles are generated at run time from the real texts in ../shared/data (see
bench/indexing.py) and indexed with newsmon's indexer into ``bench-search-articles``; a later
run reuses that index when it already holds ``--docs`` documents. Each query runs a few
times to warm up, then ``--runs`` times; p50/p95 of the client-side wall time (and of ES's
own ``took``) are reported. Uses NEWSMON_ES_URL, starting a local node if needed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from indexing import bench_settings, iter_articles
from rich.progress import Progress

from newsmon.index.bulk import index_articles
from newsmon.index.client import articles_alias, es_client
from newsmon.index.search import Filters, Sort, article_stats, search_articles
from newsmon.index.setup import setup_index
from newsmon.settings import Settings

WARMUP = 3


def queries(settings: Settings) -> dict[str, Callable[[], int | None]]:
    """Label -> a call returning ES's ``took`` (ms) where the API exposes it."""

    def search(query: str, sort: Sort = "relevance", **filters: Any) -> Callable[[], int]:
        return lambda: search_articles(settings, query, Filters(**filters), sort=sort).took_ms

    def stats(query: str = "", **filters: Any) -> Callable[[], None]:
        def run() -> None:
            article_stats(settings, query, Filters(**filters))

        return run

    return {
        "ko: 반도체 수출": search("반도체 수출"),
        "ko: 삼성전자 HBM, last 30d": search("삼성전자 HBM", since="now-30d"),
        'ko: "인공지능" phrase, by date': search('"인공지능"', sort="date"),
        "zh: 芯片": search("芯片"),
        "zh: 人工智能 -手机, lang=zh": search("人工智能 -手机", lang="zh"),
        "en: export controls": search("export controls"),
        "topic=semiconductors, alerts, by date": search("", topic="semiconductors", alert=True, sort="date"),
        "site=etnews.com, last 7d, by date": search("", site="etnews.com", since="now-7d", sort="date"),
        "stats: all, by day": stats(),
        "stats: 반도체, last 30d": stats(query="반도체", since="now-30d"),
    }


def ensure_corpus(settings: Settings, docs: int, reindex: bool) -> None:
    client = es_client(settings)
    alias = articles_alias(settings)
    if not reindex and client.indices.exists_alias(name=alias):
        client.indices.refresh(index=alias)
        if client.count(index=alias)["count"] >= docs:
            print(f"reusing {alias} ({client.count(index=alias)['count']} documents)")
            return
    client.indices.delete(index=f"{alias}-v*", ignore_unavailable=True)
    setup_index(settings, client)
    started = time.perf_counter()
    with Progress() as bar:
        task = bar.add_task(f"indexing {docs} articles", total=docs)
        stats = index_articles(iter_articles(docs, seed=11), settings, client, lambda n: bar.advance(task, n))
    elapsed = time.perf_counter() - started
    print(f"indexed {stats.created} articles in {elapsed:.0f}s ({stats.created / elapsed:.0f} docs/s)")
    client.indices.refresh(index=alias)
    # One segment per shard, as a long-lived index ends up after merges: steadier latencies.
    client.options(request_timeout=3600).indices.forcemerge(index=alias, max_num_segments=1)
    size = client.indices.stats(index=alias, metric="store")["_all"]["primaries"]["store"]["size_in_bytes"]
    print(f"index size: {size / 1e6:.0f} MB ({size / docs / 1e3:.1f} kB per article)")


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--reindex", action="store_true", help="Rebuild the corpus even if present.")
    args = parser.parse_args()

    settings = bench_settings("bench-search")
    ensure_corpus(settings, args.docs, args.reindex)
    results: dict[str, dict[str, float]] = {}
    print(f"\n{'query':<42}{'p50 ms':>9}{'p95 ms':>9}{'took p50':>10}")
    for label, call in queries(settings).items():
        for _ in range(WARMUP):
            call()
        wall, took = [], []
        for _ in range(args.runs):
            started = time.perf_counter()
            server_ms = call()
            wall.append((time.perf_counter() - started) * 1000)
            if server_ms is not None:
                took.append(server_ms)
        row = {"p50_ms": percentile(wall, 50), "p95_ms": percentile(wall, 95)}
        if took:
            row["took_p50_ms"] = statistics.median(took)
        results[label] = row
        took_text = f"{row['took_p50_ms']:>10.0f}" if took else f"{'':>10}"
        print(f"{label:<42}{row['p50_ms']:>9.1f}{row['p95_ms']:>9.1f}{took_text}")
    print(json.dumps({"docs": args.docs, "runs": args.runs, "queries": results}, ensure_ascii=False))


if __name__ == "__main__":
    main()
