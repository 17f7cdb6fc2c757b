"""Long-running child processes of a test (servers, Airflow components): each in a session of its
own with its output in a log file, and stopped with every descendant when the test ends, passed
or failed, so no orphan outlives the test."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

import psutil

STOP_GRACE_S = 15  # SIGTERM, then this long to exit (a Celery worker's warm shutdown), then SIGKILL


class Services:
    """Start with ``start``; ``close`` (a fixture's finalizer) stops them all, newest first."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: Sequence[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(
                list(argv), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs[name] = proc
        return proc

    def dead(self) -> list[str]:
        """The services that have exited."""
        return [name for name, proc in self.procs.items() if proc.poll() is not None]

    def tail(self, name: str, chars: int = 3000) -> str:
        return (self.logs / f"{name}.log").read_text(encoding="utf-8", errors="replace")[-chars:]

    def tails(self, chars: int = 1500) -> str:
        """Every service's last output, for a failing test's message."""
        return "\n".join(
            f"--- {name} (exit {p.poll()}):\n{self.tail(name, chars)}" for name, p in self.procs.items()
        )

    def close(self) -> None:
        for proc in reversed(list(self.procs.values())):
            _stop(proc)
        self.procs.clear()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process's session (its process group) and to each descendant that left it,
    then SIGKILL to whatever is still alive after the grace time."""
    try:
        family = [root := psutil.Process(proc.pid), *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    for member in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.terminate()
    _, alive = psutil.wait_procs(family, timeout=STOP_GRACE_S)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    for member in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    proc.wait(timeout=STOP_GRACE_S)
