"""Benchmark (not a test): newsmon's indexer vs raw ``elasticsearch.helpers`` bulk.

    .venv/bin/python bench/indexing.py [--docs 5000] [--rounds 3]

Same documents, same index template and chunk size for all three: ``index_articles`` (mget
+ conditional create, spool/dead-letter bookkeeping, CONCURRENCY chunks in flight) against
``streaming_bulk`` (one in flight) and ``parallel_bulk`` (CONCURRENCY threads), both fed the
ready-made documents. Each round indexes into
fresh indices; the median and best docs/s per method are reported, with newsmon's ratio
(goal >= 0.9).

Articles are generated at run time from the real texts in ../shared/data (titles and
sentences of KLUE-YNAT, sci-news-sum-kr-50, THUCNews, TNEWS and the English AEB set); nothing
from there is stored in the repository. Uses NEWSMON_ES_URL, starting a local node if needed.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.helpers import parallel_bulk, streaming_bulk

from newsmon.index.bulk import CHUNK_SIZE, CONCURRENCY, index_articles
from newsmon.index.client import articles_alias, es_client
from newsmon.index.docs import to_doc
from newsmon.index.localnode import launcher as esnode
from newsmon.index.setup import setup_index
from newsmon.models import AlertDecision, Article, Topic
from newsmon.settings import Settings, load_settings

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TOPICS = ["semiconductors", "ai", "telecom", "batteries", "policy", "displays", "mobile", "cloud"]
ENTITIES = {
    "ko": [
        "삼성전자",
        "SK하이닉스",
        "LG에너지솔루션",
        "네이버",
        "카카오",
        "과학기술정보통신부",
        "산업통상자원부",
    ],
    "zh": ["华为", "中芯国际", "百度", "阿里巴巴", "腾讯", "商务部", "工信部"],
    "en": ["TSMC", "Nvidia", "Intel", "ASML", "BIS", "Micron", "Apple"],
}
SITES = {
    "ko": ["etnews.com", "zdnet.co.kr", "ddaily.co.kr", "bloter.net", "inews24.com"],
    "zh": ["36kr.com", "ithome.com", "huxiu.com", "tmtpost.com", "jiqizhixin.com"],
    "en": ["theregister.com", "arstechnica.com", "tomshardware.com"],
}
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


@cache
def texts() -> dict[str, tuple[list[str], list[str]]]:
    """Per language: (titles, sentences) from ../shared/data."""
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED} is missing: the benchmarks build their articles from it")
    # Whatever splits are present (some are held back for independent evaluation).
    ko_titles = []
    for path in sorted((SHARED / "klue_ynat_ko").glob("*.tsv")):
        with path.open(encoding="utf-8") as fh:
            ko_titles += [
                row[1] for row in csv.reader(fh, delimiter="\t") if len(row) == 2 and row[0] != "label"
            ]
    ko_sentences = []
    for path in sorted((SHARED / "sci_news_sum_kr50" / "data").glob("*.json")):
        ko_sentences += json.loads(path.read_text(encoding="utf-8"))["sentences"]
    zh_titles = []
    for path in sorted((SHARED / "thucnews_titles_zh").glob("*.txt")):
        lines = path.read_text(encoding="utf-8").splitlines()
        zh_titles += [line.split("\t")[0] for line in lines if "\t" in line]
    for path in (SHARED / "tnews_fewclue_zh").glob("*.json"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip().startswith("{") and "sentence" in line:
                zh_titles.append(json.loads(line)["sentence"])
    bodies = json.loads((SHARED / "aeb_en" / "ground-truth.json").read_text(encoding="utf-8")).values()
    en_sentences = [s for b in bodies for s in _SENTENCE_END.split(b["articleBody"]) if 40 < len(s) < 400]
    return {
        "ko": (ko_titles, ko_sentences + ko_titles),
        "zh": (zh_titles, zh_titles),
        "en": ([s for s in en_sentences if len(s) < 120], en_sentences),
    }


def iter_articles(n: int, seed: int = 5, days: int = 90) -> Iterator[Article]:
    """``n`` analysed-looking articles in ko/zh/en (45/40/15%), dated over the last ``days``."""
    rnd = random.Random(seed)
    now = datetime.now(UTC)
    pool = texts()
    for i in range(n):
        lang = rnd.choices(["ko", "zh", "en"], weights=[45, 40, 15])[0]
        titles, sentences = pool[lang]
        sep = " " if lang != "zh" else "。"
        site = rnd.choice(SITES[lang])
        published = now - timedelta(minutes=rnd.randrange(days * 24 * 60))
        labels = rnd.sample(TOPICS, rnd.choice([0, 1, 1, 2]))
        alert = rnd.random() < 0.05
        url = f"https://{site}/news/{seed}-{i}"
        yield Article(
            url=url,
            canonical_url=url,
            source=site.split(".")[0],
            site=site,
            title=rnd.choice(titles),
            text=sep.join(rnd.choices(sentences, k=rnd.randint(4, 10))),
            published=published,
            fetched=published + timedelta(minutes=30),
            lang=lang,
            extractor="bench",
            entities=rnd.sample(ENTITIES[lang], rnd.randint(0, 3)),
            topics=[Topic(label=label, score=round(rnd.uniform(0.5, 1), 2)) for label in labels],
            relevance=round(rnd.random(), 3),
            alert=AlertDecision(export_controls=alert, score=round(rnd.uniform(0.6, 1), 2) if alert else 0.0),
            cluster_id=f"c{rnd.randrange(n // 5 + 1)}",
            analyzer="bench",
        )


def bench_settings(prefix: str) -> Settings:
    settings = load_settings(index_prefix=prefix)
    if settings.es_is_local and esnode.ensure_running(settings):
        print(f"started a local node at {settings.es_url}")
    return settings


def _fresh(settings: Settings, client: Elasticsearch) -> None:
    client.indices.delete(index=f"{articles_alias(settings)}-v*", ignore_unavailable=True)
    setup_index(settings, client)


def _raw_actions(articles: list[Article], alias: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        {"_op_type": "create", "_index": alias, "_id": a.id, **to_doc(a, first_seen=None, indexed=now)}
        for a in articles
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    settings = bench_settings("bench-indexing")
    client = es_client(settings)
    alias = articles_alias(settings)
    articles = list(iter_articles(args.docs))
    actions = _raw_actions(articles, alias)
    mb = sum(len(a.title) + len(a.text) for a in articles) * 3 / 1e6
    print(f"{args.docs} articles (~{mb:.0f} MB of text) into {settings.es_url}, {args.rounds} rounds")

    def run_newsmon() -> None:
        stats = index_articles(articles, settings, client)
        assert stats.created == len(articles), stats

    def run_streaming() -> None:
        for ok, item in streaming_bulk(client, actions, chunk_size=CHUNK_SIZE, raise_on_error=True):
            assert ok, item

    def run_parallel() -> None:
        for ok, item in parallel_bulk(client, actions, chunk_size=CHUNK_SIZE, thread_count=CONCURRENCY):
            assert ok, item

    methods: dict[str, Callable[[], None]] = {
        "newsmon index_articles": run_newsmon,
        "helpers.streaming_bulk": run_streaming,
        "helpers.parallel_bulk": run_parallel,
    }
    _fresh(settings, client)  # warm-up: JIT, analyzer dictionaries
    index_articles(iter_articles(1000, seed=99), settings, client)
    rates: dict[str, list[float]] = {name: [] for name in methods}
    for r in range(args.rounds):
        for name, fn in methods.items():
            _fresh(settings, client)
            started = time.perf_counter()
            fn()
            client.indices.refresh(index=alias)
            elapsed = time.perf_counter() - started
            assert client.count(index=alias)["count"] == len(articles)
            rates[name].append(len(articles) / elapsed)
            print(f"  round {r + 1}: {name:<24} {rates[name][-1]:8.0f} docs/s")
    started = time.perf_counter()
    again = index_articles(articles, settings, client)
    rerun = len(articles) / (time.perf_counter() - started)
    client.indices.delete(index=f"{alias}-v*")
    client.indices.delete_index_template(name=alias)

    # Other load on the machine only ever slows a round down, so the best round is the
    # steadier estimate of each method's speed; the median is shown too.
    median = {name: statistics.median(values) for name, values in rates.items()}
    best = {name: max(values) for name, values in rates.items()}
    ours = "newsmon index_articles"
    print(f"\n{'method':<26}{'median docs/s':>14}{'ratio':>7}{'best docs/s':>13}{'ratio':>7}")
    for name in rates:
        ratios = f"{median[ours] / median[name]:>7.2f}{best[name]:>13.0f}{best[ours] / best[name]:>7.2f}"
        print(f"{name:<26}{median[name]:>14.0f}{ratios}")
    print(f"{'newsmon re-run, unchanged':<26}{rerun:>14.0f}   ({again.unchanged} unchanged)")
    summary = {
        "docs": args.docs,
        "median_docs_per_s": median,
        "best_docs_per_s": best,
        "rerun_docs_per_s": rerun,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
