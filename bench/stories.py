"""Cost of event-story assignment per article as stories accumulate (nlp.stories).

    .venv/bin/python bench/stories.py [--per-day 1000] [--days 30] [--max-active 20000]

A synthetic stream at ``--per-day`` articles a day: random unit embeddings (so nearly every
article starts a story of its own, the worst case for the index), entities, numbers and
keywords drawn from fixed pools. Prints the mean assignment time per article for each day,
the active stories, and the ratio of the last day's cost to the first full window's: a cost
bounded by the window (and ``--max-active``) keeps it near 1 however long the stream runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path[0] = str(Path(__file__).resolve().parents[1])

from newsmon.nlp.stories import PARTS, STORY_DIMENSIONS, EventStories, Report, StoryModel  # noqa: E402


def stream(per_day: int, days: int, seed: int = 1) -> list[Report]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((per_day * days, STORY_DIMENSIONS)).astype(np.float32)
    for start, end in PARTS:
        vectors[:, start:end] /= np.linalg.norm(vectors[:, start:end], axis=1, keepdims=True)

    def some(prefix: str, pool: int, k: int) -> frozenset[str]:
        return frozenset(f"{prefix}{i}" for i in rng.integers(0, pool, k))

    return [
        Report(
            doc_id=f"a{n}",
            lang=("ko", "zh", "en")[n % 3],
            day=n / per_day,
            embedding=vectors[n],
            entities=some("org:", 300, 3),
            numbers=some("", 500, 2),
            keywords=some("kw", 20_000, 10),
        )
        for n in range(per_day * days)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-day", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--max-active", type=int, default=20_000)
    args = parser.parse_args()
    model = StoryModel.load()
    stories = EventStories(model=model, max_active=args.max_active)
    reports = stream(args.per_day, args.days)
    per_day: list[float] = []
    print(f"window {model.window_days:g} days; {args.per_day} articles a day for {args.days} days")
    print("| day | µs per article | active stories |\n|---|---|---|")
    for day in range(args.days):
        batch = reports[day * args.per_day : (day + 1) * args.per_day]
        start = time.perf_counter()
        for report in batch:
            stories.assign(report)
        per_day.append((time.perf_counter() - start) / len(batch) * 1e6)
        print(f"| {day + 1} | {per_day[-1]:.0f} | {len(stories)} |")
    full = min(args.days - 1, int(2 * model.window_days))  # the horizon is full from here on
    print(f"\nlast day / day {full + 1} (first with a full horizon): {per_day[-1] / per_day[full]:.2f}")


if __name__ == "__main__":
    main()
