"""Throughput of the transformers topic backend (shipped tech-relevance model) on CPU.

    .venv/bin/python bench/classifier.py [--n 2000] [--batch-size 32] [--threads 1] [--model DIR]

Reads headlines from ../shared/data (or $NEWSMON_SHARED_DATA) when present, else repeats a few
of its own; prints the one-off load time and articles per second for title-only input (the
default, what the model was trained on) and for title + the first 400 characters of body.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repository, not bench/

from newsmon.models import Article  # noqa: E402  (needs the path above)

FALLBACK = [
    "삼성전자, 차세대 인공지능 반도체 양산 시작",
    "국회 본회의, 내년도 예산안 의결",
    "华为发布新一代手机芯片",
    "国足客场战平对手 积分榜排名不变",
]


def headlines(n: int) -> list[str]:
    shared = Path(
        os.environ.get("NEWSMON_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    titles: list[str] = []
    thuc = shared / "thucnews_titles_zh" / "dev.txt"
    ynat = shared / "klue_ynat_ko" / "ynat_train.tsv"
    if ynat.is_file() and thuc.is_file():
        ko = [line.split("\t", 1)[1].strip() for line in ynat.read_text(encoding="utf-8").splitlines()[1:]]
        zh = [line.rsplit("\t", 1)[0] for line in thuc.read_text(encoding="utf-8").splitlines()]
        titles = [t for pair in zip(ko, zh, strict=False) for t in pair]  # alternate ko/zh
    titles = titles or FALLBACK
    return [titles[i % len(titles)] for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="articles per mode")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--model", default=None, help="model folder (default: the shipped one)")
    args = ap.parse_args()

    import torch

    from newsmon.nlp.transformers_backend import DEFAULT_MODEL_DIR, TransformersBackend

    if args.threads:
        torch.set_num_threads(args.threads)
    body = "。".join(["这是一段用于测试的正文内容"] * 40)
    results: dict[str, dict[str, float]] = {}
    for mode in ("title", "title+text"):
        backend = TransformersBackend(
            args.model or DEFAULT_MODEL_DIR, batch_size=args.batch_size, text_mode=mode
        )
        t0 = time.perf_counter()
        backend.predict(["warm up"])
        load_s = time.perf_counter() - t0
        arts = [
            Article(
                url=f"https://b.test/{i}", canonical_url=f"https://b.test/{i}", title=f"{t} {i}", text=body
            )
            for i, t in enumerate(headlines(args.n))  # "{i}": unique texts, so the cache never hits
        ]
        t0 = time.perf_counter()
        backend.relevance(arts)
        secs = time.perf_counter() - t0
        results[mode] = {
            "articles": args.n,
            "seconds": round(secs, 2),
            "articles_per_s": round(args.n / secs, 1),
        }
        results[mode]["load_s"] = round(load_s, 2)
    print(
        json.dumps({"threads": torch.get_num_threads(), "batch_size": args.batch_size, **results}, indent=2)
    )


if __name__ == "__main__":
    main()
