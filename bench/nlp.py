"""Throughput of the NLP pipeline against raw Kiwi tokenization of the same Korean documents.

    .venv/bin/python bench/nlp.py [--docs 300] [--rounds 3] [--cores 2] [--topics signal]

Each mode runs in a fresh child process pinned to the same cores, so load times and peak
memory are its own. Reads the Korean articles in ../shared/data (or $NEWSMON_SHARED_DATA).
Prints documents per second for both, their ratio (goal >= 0.6) and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

# This file is itself called nlp.py: put the repository, not bench/, first on the path.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from newsmon.nlp.training.devset import long_texts, shared_data_dir  # noqa: E402  (needs the path above)


def korean_docs(n: int) -> list[tuple[str, str]]:
    base = [(d.title, d.text) for _, d in long_texts(shared_data_dir()) if d.lang == "ko"]
    if not base:
        sys.exit(f"no Korean articles under {shared_data_dir()}")
    return [base[i % len(base)] for i in range(n)]


def run_mode(mode: str, n: int, rounds: int, topics: str = "signal") -> dict[str, float]:
    docs = korean_docs(n)
    if mode == "raw":
        from kiwipiepy import Kiwi

        kiwi = Kiwi(num_workers=-1)
        kiwi.tokenize("준비")
        texts = [f"{title}\n{text}" for title, text in docs]

        def once() -> None:
            for _ in kiwi.tokenize(texts):
                pass
    else:
        from newsmon.models import Article
        from newsmon.nlp.cluster import StoryClusters
        from newsmon.nlp.pipeline import Analyzer

        articles = [
            Article(url=f"bench:{i}", canonical_url=f"bench:{i}", title=title, text=text)
            for i, (title, text) in enumerate(docs)
        ]
        analyzer = Analyzer(topic_backend=topics, clusters=StoryClusters())
        analyzer.analyze_batch(articles[:2])  # load Kiwi, jieba, lingua and the rules

        def once() -> None:
            analyzer.clusters = StoryClusters()  # every round sees the documents as new
            for _ in analyzer.analyze(articles):
                pass

    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        once()
        best = min(best, time.perf_counter() - start)
    return {"docs_per_s": n / best, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument(
        "--topics", default="signal", help="topic backend: signal, rules, transformers, ensemble"
    )
    parser.add_argument("--mode", choices=("raw", "analyze"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.docs, args.rounds, args.topics)))
        return
    cores = sorted(os.sched_getaffinity(0))[: args.cores]
    results = {}
    for mode in ("raw", "analyze"):
        cmd = [
            sys.executable,
            __file__,
            "--mode",
            mode,
            "--docs",
            str(args.docs),
            "--rounds",
            str(args.rounds),
            "--topics",
            args.topics,
        ]
        child = subprocess.run(
            cmd, check=True, capture_output=True, text=True, preexec_fn=lambda: os.sched_setaffinity(0, cores)
        )
        results[mode] = json.loads(child.stdout.strip().splitlines()[-1])
    raw, ours = results["raw"], results["analyze"]
    chars = sum(len(t) + len(x) for t, x in korean_docs(args.docs)) / args.docs
    print(f"{args.docs} Korean documents (mean {chars:.0f} chars), best of {args.rounds}, cores {cores}")
    print(f"raw Kiwi tokenize : {raw['docs_per_s']:7.1f} docs/s   peak RSS {raw['peak_rss_mb']:6.0f} MB")
    print(f"topic backend     : {args.topics}")
    print(f"newsmon analyze   : {ours['docs_per_s']:7.1f} docs/s   peak RSS {ours['peak_rss_mb']:6.0f} MB")
    print(f"ratio analyze/raw : {ours['docs_per_s'] / raw['docs_per_s']:.2f}   (goal >= 0.6)")


if __name__ == "__main__":
    main()
