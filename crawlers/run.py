"""``crawl()``: the library entry point that the CLI, the tests and Airflow call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crawlers.registry import Source
from crawlers.scrapy_settings import scrapy_settings
from crawlers.store import NEW, UPDATED, CrawlStore, crawl_lock, store_path
from newsmon.errors import NewsmonError
from newsmon.settings import REPO_ROOT, Settings


@dataclass
class CrawlStats:
    pages_fetched: int
    articles_new: int
    articles_updated: int
    articles_unchanged: int
    skipped: dict[str, int]
    errors: dict[str, int]
    out_file: Path
    log_file: Path | None = None
    exit_code: int = 0  # of the crawl child process; non-zero: interrupted (articles so far are kept)
    scrapy: dict[str, Any] = field(default_factory=dict, repr=False)  # raw Scrapy stats


def _prefixed(stats: dict[str, Any], prefix: str) -> dict[str, int]:
    return {k.removeprefix(prefix): int(v) for k, v in sorted(stats.items()) if k.startswith(prefix)}


def crawl(
    sources: list[Source],
    settings: Settings,
    out_file: Path,
    since: datetime | None = None,
    feeds_only: bool = False,
    progress: Callable[[str], None] | None = None,
    *,
    scrapy_overrides: dict[str, Any] | None = None,
) -> CrawlStats:
    """Crawl ``sources``; append new and updated articles to ``out_file`` as JSON lines.

    Runs Scrapy in a child process. Articles are committed to the crawl store as they are
    extracted and copied to ``out_file`` at the end, so an interrupted crawl loses nothing:
    what it committed is delivered (by this call, or by the next one).
    ``scrapy_overrides`` replaces Scrapy settings (tests and benchmarks drop the politeness delay).
    """
    if not sources:
        raise NewsmonError("no sources to crawl")
    say = progress or (lambda line: None)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    work = settings.data_dir / "crawl"
    work.mkdir(parents=True, exist_ok=True)
    state, job_file, stats_file, log_file = (
        store_path(settings.data_dir),
        work / "job.json",
        work / "stats.json",
        work / "crawl.log",
    )
    with crawl_lock(settings.data_dir):
        store = CrawlStore(state)
        try:
            delivered = store.drain_outbox(out_file)  # left by an interrupted earlier crawl
        finally:
            store.close()
        if delivered:
            say(f"delivered {sum(delivered.values())} article(s) left by an interrupted crawl")
        stats_file.unlink(missing_ok=True)
        job = {
            "sources": [s.model_dump(mode="json") for s in sources],
            "since": since.isoformat() if since else None,
            "feeds_only": feeds_only,
            "store": str(state),
            "stats_file": str(stats_file),
            "scrapy": scrapy_settings(sources, settings, state, log_file) | (scrapy_overrides or {}),
        }
        job_file.write_text(json.dumps(job, ensure_ascii=False), encoding="utf-8")
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
            PYTHONUNBUFFERED="1",
        )
        with open(work / "crawl.stderr", "w", encoding="utf-8") as stderr:
            child = subprocess.Popen(
                [sys.executable, "-m", "crawlers.crawl_process", str(job_file)],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                encoding="utf-8",
                errors="replace",
                env=env,
                cwd=REPO_ROOT,
            )
            say(f"crawl process pid={child.pid} log={log_file}")
            try:
                assert child.stdout is not None
                for line in child.stdout:
                    say(line.rstrip("\n"))
            finally:
                exit_code = child.wait()
        store = CrawlStore(state)
        try:
            delivered += store.drain_outbox(out_file)
        finally:
            store.close()
    raw: dict[str, Any] = json.loads(stats_file.read_text(encoding="utf-8")) if stats_file.exists() else {}
    errors = _prefixed(raw, "newsmon/errors/")
    # Exceptions escaping our own callbacks are bugs, but they must show, not vanish into the log.
    errors |= {f"spider_{name}": n for name, n in _prefixed(raw, "spider_exceptions/").items()}
    if exit_code != 0 or not raw:
        errors["crawl_process"] = errors.get("crawl_process", 0) + 1
        say(f"crawl process exited with code {exit_code}; see {work / 'crawl.stderr'} and {log_file}")
    articles = Counter(_prefixed(raw, "newsmon/articles/"))
    return CrawlStats(
        pages_fetched=int(raw.get("downloader/response_count", 0)),
        articles_new=delivered[NEW],
        articles_updated=delivered[UPDATED],
        articles_unchanged=articles["unchanged"],
        skipped=_prefixed(raw, "newsmon/skipped/"),
        errors=errors,
        out_file=out_file,
        log_file=log_file,
        exit_code=exit_code,
        scrapy=raw,
    )
