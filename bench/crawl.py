"""Crawl throughput benchmark (not a test): pages/s and peak memory on a local server.

Serves N copies of the demo articles from 127.0.0.1 and measures, each in its own process:

  newsmon          crawl(): Scrapy fetch + extraction + crawl store, as in production
  newsmon-inline   the same with NEWSMON_CRAWL_EXTRACT_WORKERS=0: pages extracted between downloads
  scrapy-fetch     raw Scrapy fetching the same URLs, no processing
  newsmon-extract  extract_article() on the pages from disk, no network
  trafilatura      plain trafilatura.extract() on the pages from disk

    python -m bench.crawl [--pages 300] [--concurrency 8] [--rounds 3]

Each mode runs ``--rounds`` times, each in a fresh process; the table shows its best round (the
fastest pages/s), so a busy moment of the machine does not decide a ratio.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from newsmon.settings import REPO_ROOT

DEMO = REPO_ROOT / "crawlers" / "demo_site"


def build_site(root: Path, pages: int) -> list[str]:
    """``pages`` article pages (demo articles under new URLs) plus a sitemap; returns their paths."""
    originals = sorted(
        p for p in DEMO.rglob("*.html") if re.match(r"(ko|legacy)/news/|zh/a/", str(p.relative_to(DEMO)))
    )
    (root / "a").mkdir(parents=True)
    paths = []
    for i in range(pages):
        source = originals[i % len(originals)]
        old_path = "/" + source.relative_to(DEMO).as_posix()
        new_path = f"/a/{i}.html"
        # A fresh canonical URL per copy, so that every copy is a distinct article.
        (root / new_path.lstrip("/")).write_bytes(
            source.read_bytes().replace(old_path.encode(), new_path.encode())
        )
        paths.append(new_path)
    urls = "".join(f"<url><loc>{{base}}{p}</loc></url>" for p in paths)
    (root / "sitemap.xml").write_text(
        f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>',
        encoding="utf-8",
    )
    (root / "robots.txt").write_text("User-agent: *\nAllow: /\n", encoding="utf-8")
    return paths


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_newsmon(site: Path, base: str, concurrency: int, extract_workers: int = -1) -> dict[str, Any]:
    from newsmon.crawlers.registry import Source
    from newsmon.crawlers.run import crawl
    from newsmon.settings import load_settings

    with tempfile.TemporaryDirectory() as tmp:
        source = Source(name="bench", lang="ko", feeds=[], sitemaps=[f"{base}/sitemap.xml"])
        stats = crawl(
            [source],
            load_settings(data_dir=Path(tmp), crawl_extract_workers=extract_workers),
            Path(tmp) / "out.jsonl",
            scrapy_overrides={"CONCURRENT_REQUESTS_PER_DOMAIN": concurrency},
        )
    return {
        "pages": stats.articles_new,
        "seconds": stats.scrapy["elapsed_time_seconds"],
        "peak_mb": stats.scrapy.get("memusage/max", 0) / 2**20,
    }


def worker_scrapy(site: Path, base: str, concurrency: int) -> dict[str, Any]:
    from scrapy import Request, Spider
    from scrapy.crawler import CrawlerProcess

    urls = [f"{base}/a/{file.name}" for file in sorted((site / "a").iterdir())]

    class FetchOnly(Spider):
        name = "fetch-only"

        async def start(self):  # type: ignore[no-untyped-def]
            for url in urls:
                yield Request(url, callback=self.parse)

        def parse(self, response):  # type: ignore[no-untyped-def]
            return None

    process = CrawlerProcess(
        {
            "LOG_LEVEL": "ERROR",
            "ROBOTSTXT_OBEY": True,
            "TELNETCONSOLE_ENABLED": False,
            "REMOTE_CONTROL_ENABLED": False,
            "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
        }
    )
    crawler = process.create_crawler(FetchOnly)
    process.crawl(crawler)
    process.start()
    stats = crawler.stats.get_stats() if crawler.stats else {}
    return {
        "pages": stats.get("response_received_count", 0) - 1,  # minus robots.txt
        "seconds": stats["elapsed_time_seconds"],
        "peak_mb": stats.get("memusage/max", 0) / 2**20,
    }


def _from_disk(site: Path, extract: Any) -> dict[str, Any]:
    files = sorted((site / "a").iterdir())
    started = time.perf_counter()
    ok = sum(1 for file in files if extract(file.read_bytes(), f"http://bench.example/a/{file.name}"))
    return {"pages": ok, "seconds": time.perf_counter() - started, "peak_mb": _peak_mb()}


def worker_newsmon_extract(site: Path, base: str, concurrency: int) -> dict[str, Any]:
    from newsmon.crawlers.extract import extract_article

    return _from_disk(site, lambda data, url: extract_article(data, url).is_article)


def worker_trafilatura(site: Path, base: str, concurrency: int) -> dict[str, Any]:
    import trafilatura

    return _from_disk(site, lambda data, url: trafilatura.extract(data, url=url))


WORKERS = {
    "newsmon": worker_newsmon,
    "newsmon-inline": lambda site, base, concurrency: worker_newsmon(site, base, concurrency, 0),
    "scrapy-fetch": worker_scrapy,
    "newsmon-extract": worker_newsmon_extract,
    "trafilatura": worker_trafilatura,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight to the server")
    parser.add_argument("--rounds", type=int, default=3, help="runs per mode; the best one counts")
    parser.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)  # internal: one measurement
    parser.add_argument("--site", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args.site, args.base, args.concurrency)))
        return 0

    from newsmon.crawlers.demo_server import serve_demo

    with tempfile.TemporaryDirectory() as tmp, serve_demo(root=Path(tmp)) as server:
        build_site(Path(tmp), args.pages)
        print(
            f"{args.pages} pages from {server.url}, concurrency {args.concurrency}, "
            f"best of {args.rounds} runs per mode, one process per run"
        )
        print(f"{'mode':<16}{'pages':>6}{'seconds':>9}{'pages/s':>9}{'peak MB':>9}")
        for name in WORKERS:
            best: dict[str, Any] | None = None
            failure = ""
            for _ in range(max(1, args.rounds)):
                # A fresh interpreter per run: Twisted's reactor runs once, and peak RSS is per process.
                done = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "bench.crawl",
                        "--worker",
                        name,
                        "--site",
                        tmp,
                        "--base",
                        server.url,
                        "--concurrency",
                        str(args.concurrency),
                    ],
                    capture_output=True,
                    text=True,
                    cwd=REPO_ROOT,
                    check=False,
                )
                if done.returncode != 0:
                    failure = str(done.stderr.strip().splitlines()[-1:])
                    continue
                r = json.loads(done.stdout.strip().splitlines()[-1])
                if best is None or r["pages"] / r["seconds"] > best["pages"] / best["seconds"]:
                    best = r
            if best is None:
                print(f"{name:<16} failed: {failure}")
                continue
            rate = best["pages"] / best["seconds"]
            print(f"{name:<16}{best['pages']:>6}{best['seconds']:>9.2f}{rate:>9.1f}{best['peak_mb']:>9.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
