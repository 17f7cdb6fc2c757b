"""Benchmark (not a test): what recording crawl health costs a run, as a share of the run.

    .venv/bin/python bench/health.py [--runs 3] [--records 30]

Runs ``newsmon run --demo`` (``run_once``) ``--runs`` times into the index prefix
``bench-health``, then writes one run's crawl-health documents again ``--records`` times
(same ids: overwrites, the same requests a run makes) and reports the median of each and
their ratio, plus the stored bytes per document. Uses NEWSMON_ES_URL, starting a local node
if needed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from indexing import bench_settings
from rich.console import Console

from newsmon.health import record
from newsmon.index.client import es_client, runs_alias
from newsmon.pipeline import run_once


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--records", type=int, default=30)
    args = parser.parse_args()
    settings = bench_settings("bench-health")
    settings = settings.model_copy(update={"data_dir": Path(tempfile.mkdtemp(prefix="bench-health-"))})
    client = es_client(settings)
    quiet = Console(quiet=True)

    run_seconds, run_ids = [], []
    for _ in range(args.runs):
        started = time.perf_counter()
        run_ids.append(run_once(settings, demo=True, console=quiet).run_id)
        run_seconds.append(time.perf_counter() - started)
    run_id = run_ids[0]  # the run that found every demo article new: the most documents
    client.indices.refresh(index=runs_alias(settings))
    hits = client.search(index=runs_alias(settings), query={"term": {"run_id": run_id}}, size=1000)
    docs = [{"_id": h["_id"], **h["_source"]} for h in hits["hits"]["hits"]]

    record_seconds = []
    for _ in range(args.records):
        started = time.perf_counter()
        assert record(settings, docs, client=client) == 0
        record_seconds.append(time.perf_counter() - started)

    record_s = statistics.median(record_seconds)
    result = {
        "docs_of_first_run": len(docs),
        "json_bytes_per_doc": round(sum(len(json.dumps(d, ensure_ascii=False)) for d in docs) / len(docs)),
        "run_seconds": [round(s, 2) for s in run_seconds],
        "record_median_ms": round(record_s * 1000, 1),
        "record_share_of_first_run": round(record_s / run_seconds[0], 4),
        "record_share_of_fastest_run": round(record_s / min(run_seconds), 4),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
