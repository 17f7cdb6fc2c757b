"""Processes, ports, locks and logs of local nodes: is a pid file's process still our node,
who holds a data dir's ``node.lock``, which port is free, what a failed start logged, and
stopping nodes (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import socket
import time
from pathlib import Path

from newsmon.index.localnode.build import MAIN_CLASS


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pid_alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own exited child
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def is_our_node(pid: int) -> bool:
    """A live process running our launcher (guards against a reused pid)."""
    if not pid_alive(pid):
        return False
    try:
        return MAIN_CLASS.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def read_pid_file(path: Path) -> tuple[int | None, str | None]:
    """(pid, url) from a pid file ('<pid>\\n<url>\\n'); (None, None) if absent or garbled."""
    try:
        lines = path.read_text().split()
    except OSError:
        return None, None
    if not lines or not lines[0].isdigit():
        return None, None
    return int(lines[0]), (lines[1] if len(lines) > 1 else None)


def managed_pid(home: Path) -> int | None:
    """The pid of our node living in ``home``, removing a stale pid file on the way."""
    path = home / "node.pid"
    pid, _ = read_pid_file(path)
    if pid is not None and is_our_node(pid):
        return pid
    if path.exists():
        path.unlink(missing_ok=True)  # stale: the process is gone (or the pid now belongs to something else)
    return None


def port_in_use(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def lock_holder(lock: Path) -> int | None:
    """The pid holding a POSIX lock on ``lock`` (ES's node.lock), or None if it is free."""
    if not lock.exists():
        return None
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return None
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                return None
        else:
            fcntl.lockf(fd, fcntl.LOCK_UN)
            return None
        inode = os.fstat(fd).st_ino
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        for line in Path("/proc/locks").read_text().splitlines():
            parts = line.split()
            # "1: POSIX  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"
            if len(parts) >= 6 and parts[4].isdigit() and parts[5].rsplit(":", 1)[-1] == str(inode):
                return int(parts[4])
    return -1  # held, holder unknown


# The JVM's closing words after a bad option etc.; the line before them says what went wrong.
_JVM_BOILERPLATE = (
    "Error: Could not create the Java Virtual Machine.",
    "Error: A fatal exception has occurred. Program will exit.",
)


def last_log_line(*paths: Path) -> str:
    """The most telling line of a failed start: the launcher's 'failed to start', an error, else the last."""
    for path in paths:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        lines = [
            ln.strip()
            for ln in text.splitlines()
            if ln.strip()
            and not ln.startswith(("#", "\t", " "))  # our command line echo, stack frames
            and ln.strip() not in _JVM_BOILERPLATE
        ]
        if not lines:
            continue
        for ln in reversed(lines):
            if "newsmon-node: failed to start:" in ln:
                return ln.split("failed to start:", 1)[1].strip()
        for ln in reversed(lines):
            if "[ERROR]" in ln or ln.startswith(("Error", "Exception", "Caused by:")):
                return ln
        return lines[-1]
    return "(no log output)"


def terminate(pids: list[int], timeout: float) -> None:
    """SIGTERM (a node closes cleanly: flushes shards, releases node.lock), SIGKILL after ``timeout``.

    All are signalled first and then waited for, so that a cluster's nodes stop together.
    """
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(pid_alive(pid) for pid in pids):
        if time.monotonic() >= deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            kill_deadline = time.monotonic() + 10
            while any(pid_alive(pid) for pid in pids) and time.monotonic() < kill_deadline:
                time.sleep(0.1)
            return
        time.sleep(0.2)
