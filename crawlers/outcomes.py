"""Naming and counting what happened to each URL: skips (expected, by reason) and errors (transient).

Counts live in Scrapy's stats under ``newsmon/skipped/<reason>`` and ``newsmon/errors/<kind>``;
``crawlers.run`` turns them into ``CrawlStats``. Each outcome is also a progress line on stdout,
which the parent process forwards to the caller's ``progress`` callback.
"""

from __future__ import annotations

import gzip
import logging
import os
import sys
import zlib
from typing import TYPE_CHECKING

from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.defer import CancelledError

from newsmon.crawlers.middlewares import BlockedRequest

if TYPE_CHECKING:
    from scrapy.statscollectors import StatsCollector
    from twisted.python.failure import Failure

logger = logging.getLogger("newsmon.crawl")
SKIPPED, ERRORS = "skipped", "errors"
# Skip reasons for which an article URL is remembered and never fetched again.
PERMANENT_SKIPS = {
    "http_404",
    "http_410",
    "robots",
    "private_address",
    "redirect_loop",
    "too_large",
    "binary",
    "not_html",
    "list_page",
    "error_page",
    "too_short",
    "no_title",
    "empty",
    "broken_gzip",
}


def progress(line: str) -> None:
    """One progress line for the parent process (stdout is reserved for these).

    Once the parent is gone (a broken pipe), stdout goes to /dev/null: the crawl is being
    stopped (crawl_process.stop_with_parent), and every later line would raise again.
    """
    try:
        sys.stdout.write(line.replace("\n", " ") + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def note(stats: StatsCollector, bucket: str, reason: str, url: str, detail: str = "") -> None:
    """Count one skip or error, log it and report it as progress."""
    stats.inc_value(f"newsmon/{bucket}/{reason}")
    level = logging.WARNING if bucket == ERRORS else logging.INFO
    logger.log(level, "%s %s: %s %s", bucket, reason, url, detail)
    progress(
        f"{'skip' if bucket == SKIPPED else 'error'} {reason} {url}" + (f" ({detail})" if detail else "")
    )


def classify_failure(failure: Failure) -> tuple[str, str]:
    """(bucket, reason) for a failed request."""
    exc = failure.value
    if isinstance(exc, HttpError):
        status = exc.response.status
        return (ERRORS if status >= 500 or status == 429 else SKIPPED), f"http_{status}"
    if isinstance(exc, BlockedRequest):
        return SKIPPED, exc.reason
    if isinstance(exc, IgnoreRequest):
        message = str(exc)
        if "robots.txt" in message:
            return SKIPPED, "robots"
        if "max redirections" in message:
            return SKIPPED, "redirect_loop"
        if "DOWNLOAD_MAXSIZE" in message:
            return SKIPPED, "too_large"
        return SKIPPED, "ignored"
    if isinstance(exc, DownloadCancelledError | CancelledError):
        return SKIPPED, "too_large"  # the downloader cancels bodies over DOWNLOAD_MAXSIZE
    if isinstance(exc, gzip.BadGzipFile | zlib.error | EOFError):
        return SKIPPED, "broken_gzip"
    if isinstance(exc, DownloadTimeoutError | TimeoutError):
        return ERRORS, "timeout"
    if isinstance(exc, CannotResolveHostError):
        return ERRORS, "dns"
    if isinstance(exc, DownloadConnectionRefusedError | ConnectionRefusedError):
        return ERRORS, "connection_refused"
    if isinstance(exc, ResponseDataLossError | DownloadFailedError | ConnectionError):
        return ERRORS, "connection"
    return ERRORS, type(exc).__name__
