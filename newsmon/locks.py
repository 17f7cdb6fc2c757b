"""Advisory file locks (``flock``) that processes sharing one data dir coordinate through.

Used for the per-source crawl locks, the inbox processing lock and in-progress inbox files.
A lock lives as long as its open file: a process that dies releases its locks, so a lock is
never stale. Two opens of the same file conflict even within one process.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from newsmon.errors import NewsmonError


def try_lock(path: Path, *, create: bool = True) -> IO[str] | None:
    """Lock ``path`` without waiting: the open file holding the lock (close it to release), or
    None when another open file holds it (or, with ``create=False``, when ``path`` is gone)."""
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fh = path.open("a" if create else "r", encoding="utf-8")  # "a": never truncates
    except FileNotFoundError:
        if create:
            raise
        return None
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    return fh


def is_same_file(path: Path, fh: IO[str]) -> bool:
    """Whether ``path`` still names the file ``fh`` has open (not renamed or replaced since)."""
    try:
        return os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino
    except FileNotFoundError:
        return False


@contextmanager
def file_lock(path: Path, *, timeout: float = 0.0, busy: str = "", poll: float = 0.2) -> Iterator[IO[str]]:
    """Hold the lock on ``path``, waiting up to ``timeout`` seconds for it.

    Raises NewsmonError (``busy``, or a generic line naming the lock file) when it stays taken.
    """
    deadline = time.monotonic() + timeout
    while (fh := try_lock(path)) is None:
        if time.monotonic() >= deadline:
            waited = f" (waited {timeout:g} s)" if timeout else ""
            raise NewsmonError((busy or f"{path} is locked by another process") + waited)
        time.sleep(poll)
    try:
        yield fh
    finally:
        fh.close()  # releases the lock
