"""Benchmark (not a test): how long Airflow takes to parse newsmon's DAG files.

    .venv/bin/python bench/dagbag.py [--rounds 5]

Each round parses, in a fresh Python process (imports are most of the cost, and the DAG
processor parses in fresh processes too), first a folder holding one bare two-task TaskFlow
DAG, then this repository's ``dags/`` folder, the way the DAG processor does (a bundle
DagBag). Airflow itself is imported before the clock starts, so the figures are the DAG
files' own cost. Prints the medians and the ratio ours / bare (total and per DAG).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from newsmon.airflow_local import DAGS_FOLDER, airflow_env

BARE_DAG = """
from datetime import datetime
from airflow.sdk import dag, task

@dag(schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def bare():
    @task
    def first() -> int:
        return 1

    @task
    def second(x: int) -> int:
        return x + 1

    second(first())

bare()
"""

PARSE = """
import json, sys, time
import airflow.sdk  # Airflow's own import cost is not the DAG files'
from airflow.dag_processing.dagbag import BundleDagBag

folder = sys.argv[1]
started = time.perf_counter()
bag = BundleDagBag(folder, bundle_path=folder, bundle_name="dags-folder")
seconds = time.perf_counter() - started
assert not bag.import_errors, bag.import_errors
print(json.dumps({"seconds": seconds, "dags": len(bag.dags)}))
"""


def parse_once(folder: Path, env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", PARSE, str(folder)], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="newsmon-bench-dagbag-") as tmp:
        bare = Path(tmp, "bare")
        bare.mkdir()
        (bare / "bare_dag.py").write_text(BARE_DAG, encoding="utf-8")
        env = {**os.environ, **airflow_env(Path(tmp, "airflow"))}
        times: dict[str, list[float]] = {"bare": [], "newsmon": []}
        dags = {"bare": 1.0, "newsmon": 1.0}
        for _ in range(args.rounds):
            for name, folder in (("bare", bare), ("newsmon", DAGS_FOLDER)):
                result = parse_once(folder, env)
                times[name].append(result["seconds"])
                dags[name] = result["dags"]
    bare_s, ours_s = (statistics.median(times[n]) for n in ("bare", "newsmon"))
    print(f"bare DAG file:      {bare_s * 1000:7.1f} ms  (1 DAG, median of {args.rounds})")
    print(f"newsmon dags/:      {ours_s * 1000:7.1f} ms  ({dags['newsmon']:.0f} DAGs)")
    print(
        f"ratio:              {ours_s / bare_s:7.2f}x total, {ours_s / dags['newsmon'] / bare_s:.2f}x per DAG"
    )


if __name__ == "__main__":
    main()
