"""A real local Elasticsearch node for development and tests, without Docker or the ES distribution.

The node is the ES 8.19 server jar from Maven Central, started by a tiny launcher
(``index/localnode``, a Maven project) with the netty4 HTTP transport and our own CJK analysis
plugin (nori / smartcn / cjk_* names, as in production). ``build`` builds it (``mvn package``
once) and composes its java command; this module starts it as a detached background JVM (with
a class-data-sharing archive for fast starts), reports its status and stops it.

Layout under ``<data_dir>/es``: ``data/`` (indices), ``logs/`` (``newsmon-local.log`` and the JVM's
``stdout.log``), ``config/`` (log4j config written by the launcher), ``tmp/``, ``node.pid``.

With NEWSMON_ES_NODES=3 (or ``newsmon es start --nodes 3``) it runs a cluster of three such
nodes instead, each its own JVM with its own home under ``<data_dir>/es-cluster/node-<i>``
(same layout, own pid file) and its own HTTP and transport ports (see ``build.local_nodes``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import ssl
import subprocess
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from newsmon.errors import ESNodeError
from newsmon.index.localnode.build import (
    CDS_DIR,
    CDS_ENV,
    LocalNode,
    ensure_built,
    find_java,
    java_command,
    local_nodes,
    wait_lock,
)
from newsmon.index.localnode.procs import (
    free_port,
    last_log_line,
    lock_holder,
    managed_pid,
    pid_alive,
    port_in_use,
    read_pid_file,
    terminate,
)
from newsmon.settings import Settings


@dataclass
class NodeStatus:
    running: bool
    pid: int | None
    url: str
    health: str | None
    version: str | None
    managed: bool  # started by us (a live pid file)
    nodes: int | None = None  # nodes in its cluster, from the cluster health


@dataclass(frozen=True)
class MemberStatus:
    """A node of a local cluster that this data dir's pid files say we started."""

    name: str
    pid: int
    url: str


# --- paths ------------------------------------------------------------------------------------


def pid_file(settings: Settings) -> Path:
    """The single node's pid file (a cluster node's is ``LocalNode.pid_file``)."""
    return local_nodes(settings)[0].pid_file


def _cluster_homes(settings: Settings) -> list[Path]:
    """The homes of every cluster node ever started under this data dir."""
    return sorted(settings.layout.es_cluster.glob("node-*"), key=lambda p: int(p.name.split("-")[1]))


def _at(settings: Settings, node: LocalNode) -> Settings:
    """``settings`` pointed at ``node``'s HTTP address (for the HTTP helpers)."""
    return settings.model_copy(update={"es_url": node.url})


# --- class-data sharing -------------------------------------------------------------------------
#
# Starting the node is mostly class loading (~15k classes). A dynamic CDS archive of those classes,
# written once per build and java by a short training run, roughly halves the CPU time of every later
# start. A stale or unusable archive is ignored by the JVM (-Xshare:auto), so this is only ever a speed-up.


def _cds_archive(java: str) -> Path:
    real = os.path.realpath(java)
    st = os.stat(real)
    key = hashlib.sha1(f"{real}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]
    return CDS_DIR / f"node-{key}.jsa"


def _request(settings: Settings, method: str, path: str, body: dict | None = None) -> None:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(settings.es_url + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=60) as resp:
        resp.read()


def ensure_cds_archive(java: str, java_version: int, lib_dir: Path) -> Path | None:
    """The class-data archive for this java and build, created by a training run if missing; None if off."""
    if os.environ.get(CDS_ENV, "1").strip() == "0":
        return None
    archive = _cds_archive(java)
    failed = archive.with_suffix(".failed")
    if archive.exists() or failed.exists():
        return archive if archive.exists() else None
    CDS_DIR.mkdir(parents=True, exist_ok=True)
    with wait_lock(CDS_DIR / "cds.lock"):
        if archive.exists() or failed.exists():
            return archive if archive.exists() else None
        tmp_archive = archive.with_suffix(f".{os.getpid()}.tmp")
        with tempfile.TemporaryDirectory(prefix="newsmon-cds-") as tmp:
            settings = Settings(es_url=f"http://127.0.0.1:{free_port()}", data_dir=Path(tmp))
            (node,) = local_nodes(settings)
            _make_home(node)
            cmd = java_command(
                node, java, java_version, lib_dir, extra=[f"-XX:ArchiveClassesAtExit={tmp_archive}"]
            )
            with open(node.stdout_log, "w") as out:
                proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            reason = ""
            try:
                reason = _train(settings, node, proc)
                proc.terminate()  # the archive is written as the JVM exits
                proc.wait(timeout=180)
            except (OSError, subprocess.TimeoutExpired) as exc:
                reason = reason or f"training run failed: {exc}"
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                    reason = reason or "training run did not exit"
            if not reason and not (tmp_archive.is_file() and tmp_archive.stat().st_size > 0):
                reason = f"no archive written: {last_log_line(node.stdout_log)}"
        if reason:
            tmp_archive.unlink(missing_ok=True)
            failed.write_text(reason + "\n")  # don't retry on every start; a rebuild clears it
            return None
        tmp_archive.rename(archive)
    return archive


def _train(settings: Settings, node: LocalNode, proc: subprocess.Popen) -> str:
    """Wait for the training node, then touch what tests and the pipeline use first; '' if all went well."""
    deadline = time.monotonic() + 300
    while _health(settings, timeout=2.0) not in ("yellow", "green"):
        if proc.poll() is not None:
            return f"training node exited: {last_log_line(node.stdout_log, node.node_log)}"
        if time.monotonic() > deadline:
            return "training node did not start within 300s"
        time.sleep(0.5)
    for analyzer, text in (("nori", "수출통제를 강화했다"), ("smartcn", "加强出口管制"), ("cjk", "出口管制")):
        _request(settings, "POST", "/_analyze", {"analyzer": analyzer, "text": text})
    _request(
        settings, "PUT", "/t", {"mappings": {"properties": {"ko": {"type": "text", "analyzer": "nori"}}}}
    )
    _request(settings, "PUT", "/t/_doc/1?refresh=true", {"ko": "반도체 수출"})
    _request(settings, "POST", "/t/_search", {"query": {"match": {"ko": "수출"}}})
    return ""


# --- HTTP -------------------------------------------------------------------------------------


def _get_json(settings: Settings, path: str, timeout: float = 3.0) -> dict | None:
    """GET ``path`` from the node; None if it does not answer with JSON."""
    req = urllib.request.Request(settings.es_url + path, headers={"Accept": "application/json"})
    if settings.es_user:
        token = base64.b64encode(f"{settings.es_user}:{settings.es_password or ''}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]  # never via $http_proxy
    if settings.es_url.startswith("https"):
        cafile = str(settings.es_ca_certs) if settings.es_ca_certs else None
        handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=cafile)))
    try:
        with urllib.request.build_opener(*handlers).open(req, timeout=timeout) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError):  # HTTPError (401, 503, ...) is an OSError too
        return None


def _cluster_health(settings: Settings, timeout: float = 5.0) -> dict:
    """The cluster health as the node at ``settings.es_url`` sees it; {} if it does not answer."""
    return _get_json(settings, "/_cluster/health", timeout=timeout) or {}


def _health(settings: Settings, timeout: float = 5.0) -> str | None:
    status = _cluster_health(settings, timeout).get("status")
    return status if isinstance(status, str) else None


def _version(settings: Settings) -> str | None:
    body = _get_json(settings, "/")
    version = body.get("version") if body else None
    return version.get("number") if isinstance(version, dict) else None


# --- public API -------------------------------------------------------------------------------


def status(settings: Settings) -> NodeStatus:
    """The node at NEWSMON_ES_URL (the single node, or node 1 of a local cluster); when that
    node of a local cluster is down, the first of its other nodes that answers."""
    pid = _url_pid(settings) if settings.es_is_local else None
    health = _cluster_health(settings)
    if not health and settings.es_is_local:
        for member in cluster_members(settings):
            other = settings.model_copy(update={"es_url": member.url})
            if health := _cluster_health(other):
                settings, pid = other, member.pid
                break
    state = health.get("status") if isinstance(health.get("status"), str) else None
    return NodeStatus(
        running=state is not None or pid is not None,
        pid=pid,
        url=settings.es_url,
        health=state,
        version=_version(settings) if state else None,
        managed=pid is not None,
        nodes=health.get("number_of_nodes"),
    )


def _url_pid(settings: Settings) -> int | None:
    """Our live node serving NEWSMON_ES_URL: the single node, else cluster node 1."""
    homes = _cluster_homes(settings)
    pid = managed_pid(settings.layout.es)
    return pid if pid is not None or not homes else managed_pid(homes[0])


def cluster_members(settings: Settings) -> list[MemberStatus]:
    """The live nodes of a local cluster under this data dir (stale pid files are removed)."""
    members = []
    for home in _cluster_homes(settings):
        pid = managed_pid(home)
        if pid is not None:
            _, url = read_pid_file(home / "node.pid")
            members.append(MemberStatus(home.name, pid, url or "?"))
    return members


def start(
    settings: Settings,
    timeout: float = 180.0,
    *,
    nodes: int | None = None,
    watch_pid: int | None = None,
) -> NodeStatus:
    """Start the local node, or a cluster of ``nodes`` (default NEWSMON_ES_NODES), in the
    background and wait until each node is yellow or green; nodes already running are kept.

    Starting a cluster again after one of its nodes died starts just that node, which rejoins.
    ``watch_pid``: the nodes stop themselves once that process is gone (test sessions).
    """
    if not settings.es_is_local:
        raise ESNodeError(
            f"NEWSMON_ES_URL={settings.es_url} is not on this machine; only a local node can be started"
        )
    if settings.es_url.startswith("https"):
        raise ESNodeError(f"NEWSMON_ES_URL={settings.es_url}: the local node serves plain http; use http://")
    count = nodes if nodes is not None else settings.es_nodes
    wanted = local_nodes(settings, count)
    _refuse_other_mode(settings, count)
    lib_dir = ensure_built()
    java, java_version = find_java()
    extra: list[str] | None = None  # JVM flags, settled when the first node is launched
    launched: list[tuple[LocalNode, int, subprocess.Popen | None]] = []
    with ExitStack() as locks:
        try:
            for node in wanted:
                _make_home(node)
                locks.enter_context(wait_lock(node.home / "start.lock"))
                pid = managed_pid(node.home)
                if pid is not None:
                    _, url = read_pid_file(node.pid_file)
                    if url and url != node.url:
                        raise ESNodeError(
                            f"a newsmon node (pid {pid}) already runs on {node.home} at {url}; "
                            "stop it first (newsmon es stop) or use another NEWSMON_DATA_DIR"
                        )
                    launched.append((node, pid, None))  # already ours: just make sure it is healthy
                    continue
                _check_free(settings, node)
                if extra is None:
                    cds = ensure_cds_archive(java, java_version, lib_dir)  # a training run after a build
                    extra = [f"-XX:SharedArchiveFile={cds}"] if cds is not None else []
                cmd = java_command(node, java, java_version, lib_dir, watch_pid=watch_pid, extra=extra)
                proc = _launch(node, cmd)
                launched.append((node, proc.pid, proc))
            # A cluster's nodes are all launched before any is waited for: none is ready without a quorum.
            deadline = time.monotonic() + timeout
            for node, pid, proc in launched:
                _wait_ready(_at(settings, node), node, pid, proc, deadline, timeout)
        except ESNodeError:
            # don't leave half-started nodes behind (ones found running are left alone)
            ours = [(node, pid) for node, pid, proc in launched if proc is not None]
            terminate([pid for _, pid in ours], 20.0)
            for node, _ in ours:
                node.pid_file.unlink(missing_ok=True)
            raise
    return status(settings)


def _make_home(node: LocalNode) -> None:
    for sub in ("data", "logs", "tmp", "config"):
        (node.home / sub).mkdir(parents=True, exist_ok=True)


def _refuse_other_mode(settings: Settings, count: int) -> None:
    """A single node and a cluster share NEWSMON_ES_URL's port: only one of them may run."""
    if count == 1:
        members = cluster_members(settings)
        if members:
            raise ESNodeError(
                f"a local cluster of {len(members)} node(s) runs on this data dir; "
                "stop it first (newsmon es stop) or start it with --nodes"
            )
    elif (pid := managed_pid(settings.layout.es)) is not None:
        raise ESNodeError(
            f"the single local node (pid {pid}) runs on this data dir; stop it first (newsmon es stop)"
        )


def _check_free(settings: Settings, node: LocalNode) -> None:
    """Refuse to start ``node`` on a taken port or a data dir locked by another process."""
    if port_in_use(node.host, node.http_port):
        is_es = _health(_at(settings, node), timeout=2.0) is not None
        what = "an Elasticsearch node not started by newsmon" if is_es else "another program"
        raise ESNodeError(
            f"port {node.http_port} on {node.host} is already in use by {what}; "
            "stop it or set NEWSMON_ES_URL to another port"
        )
    holder = lock_holder(node.home / "data" / "node.lock")
    if holder is not None:
        who = f"process {holder}" if holder > 0 else "another process"
        raise ESNodeError(
            f"the data dir {node.home / 'data'} is locked by {who} (another Elasticsearch node?); "
            "stop it first or use another NEWSMON_DATA_DIR"
        )


def _launch(node: LocalNode, cmd: list[str]) -> subprocess.Popen:
    """Start ``node``'s JVM detached (its own session: it outlives us) and write its pid file."""
    with open(node.stdout_log, "w") as out:
        out.write("# " + " ".join(cmd) + "\n")
        out.flush()
        proc = subprocess.Popen(
            cmd,
            cwd=node.home,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    node.pid_file.write_text(f"{proc.pid}\n{node.url}\n")
    return proc


def _wait_ready(
    settings: Settings,
    node: LocalNode,
    pid: int,
    proc: subprocess.Popen | None,
    deadline: float,
    timeout: float,
) -> None:
    """Wait until ``node`` (at ``settings.es_url``) answers yellow or green health."""
    while True:
        exited = proc.poll() is not None if proc is not None else not pid_alive(pid)
        if exited:
            node.pid_file.unlink(missing_ok=True)
            code = f" (exit code {proc.returncode})" if proc is not None else ""
            raise ESNodeError(
                f"Elasticsearch exited during startup{code}: "
                f"{last_log_line(node.stdout_log, node.node_log)} "
                f"[logs: {node.stdout_log.parent}]"
            )
        if _health(settings) in ("yellow", "green"):
            return
        if time.monotonic() >= deadline:
            raise ESNodeError(
                f"Elasticsearch did not become healthy within {timeout:.0f}s "
                f"(last log: {last_log_line(node.node_log, node.stdout_log)}) "
                f"[logs: {node.stdout_log.parent}]"
            )
        time.sleep(0.5)


def stop(settings: Settings, timeout: float = 60.0) -> bool:
    """Stop every node :func:`start` started on this data dir (the single node, or all nodes
    of a cluster); False if none was running (no live pid file)."""
    homes = [settings.layout.es, *_cluster_homes(settings)]
    running = {home: pid for home in homes if (pid := managed_pid(home)) is not None}
    if not running:
        return False
    terminate(list(running.values()), timeout)
    for home in running:
        (home / "node.pid").unlink(missing_ok=True)
    return True


def ensure_running(settings: Settings) -> bool:
    """Start the local node(s) if NEWSMON_ES_URL is local and nothing listens there; True if started."""
    if not settings.es_is_local or port_in_use(settings.es_host, settings.es_port):
        return False
    start(settings)
    return True
