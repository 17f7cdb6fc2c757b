"""Advisory locks that processes coordinate through: ``flock``ed files under the data dir (one
host), or, with ``NEWSMON_STATE_URL``, PostgreSQL advisory locks that every host sees.

Used for the per-source crawl locks, the alert run lock, the inbox processing lock and
in-progress inbox files. A lock lives as long as its open file (or database session): a process
that dies releases its locks, so a lock is never stale. Two opens of the same file conflict
even within one process, as two sessions do.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from newsmon.errors import NewsmonError


@dataclass(frozen=True)
class SharedLock:
    """The advisory lock ``name`` in the shared state database at ``url``."""

    url: str = field(repr=False)  # it may hold a password
    name: str = ""

    def __str__(self) -> str:  # never the URL: it may hold a password
        return f"the shared lock {self.name!r}"


class Held(Protocol):
    """A held lock: closing it releases it; a child process given ``fileno()`` keeps it held."""

    def fileno(self) -> int: ...

    def close(self) -> None: ...


def lock_at(path: Path, state_url: str | None, name: str) -> Path | SharedLock:
    """Where the lock ``name`` lives: the file ``path`` under this host's data dir, or with a
    shared state database (``state_url``) the advisory lock of that name there."""
    return SharedLock(state_url, name) if state_url else path


def try_hold(where: Path | SharedLock, *, exclusive: bool = True) -> Held | None:
    """``try_lock`` for a file or a shared lock."""
    if isinstance(where, SharedLock):
        from newsmon.state import try_advisory_lock

        return try_advisory_lock(where.url, where.name, exclusive=exclusive)
    return try_lock(where, exclusive=exclusive)


def try_lock(path: Path, *, create: bool = True, exclusive: bool = True) -> IO[str] | None:
    """Lock ``path`` without waiting: the open file holding the lock (close it to release), or
    None when another open file holds it (or, with ``create=False``, when ``path`` is gone).
    ``exclusive=False``: a lock that other such ones may hold too, but no exclusive one."""
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fh = path.open("a" if create else "r", encoding="utf-8")  # "a": never truncates
    except FileNotFoundError:
        if create:
            raise
        return None
    try:
        fcntl.flock(fh, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
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
def file_lock(
    path: Path | SharedLock,
    *,
    timeout: float = 0.0,
    busy: str = "",
    poll: float = 0.2,
    exclusive: bool = True,
) -> Iterator[Held]:
    """Hold the lock on ``path`` (a file, or a shared lock), waiting up to ``timeout`` seconds
    (``exclusive=False``: alongside other non-exclusive holders).

    Raises NewsmonError (``busy``, or a generic line naming the lock) when it stays taken.
    """
    deadline = time.monotonic() + timeout
    while (fh := try_hold(path, exclusive=exclusive)) is None:
        if time.monotonic() >= deadline:
            waited = f" (waited {timeout:g} s)" if timeout else ""
            raise NewsmonError((busy or f"{path} is locked by another process") + waited)
        time.sleep(poll)
    try:
        yield fh
    finally:
        fh.close()  # releases the lock
