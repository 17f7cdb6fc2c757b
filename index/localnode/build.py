"""Building the local node and the command that runs it: ``mvn package`` of the Maven project
beside this module (once per change of its sources), which nodes to run (one, or a small
cluster on one machine) and the ``java`` command line of each (heap, JVM flags, class path)."""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from newsmon.errors import ESNodeError
from newsmon.locks import file_lock
from newsmon.settings import Settings

LOCALNODE_DIR = Path(__file__).resolve().parent  # the Maven project: pom.xml, src/
TARGET_DIR = LOCALNODE_DIR / "target"
LIB_DIR = TARGET_DIR / "lib"
STAMP_FILE = TARGET_DIR / "newsmon-build.stamp"
MAIN_CLASS = "org.elasticsearch.node.NewsmonNode"
CLUSTER_NAME = "newsmon-local"
CDS_DIR = TARGET_DIR / "cds"
HEAP_ENV = "NEWSMON_ES_HEAP"
JAVA_OPTS_ENV = "NEWSMON_ES_JAVA_OPTS"  # extra JVM flags, e.g. "-XX:TieredStopAtLevel=1"
CDS_ENV = "NEWSMON_ES_CDS"  # "0": no class-data-sharing archive
DEFAULT_HEAP = "1g"
CLUSTER_HEAP = "512m"  # per node of a local cluster: several JVMs share one small machine
MAX_NODES = 9
# A cluster node's transport port is its HTTP port + 100, as ES's own 9200 / 9300 defaults.
TRANSPORT_OFFSET = 100
MIN_JAVA = 17

# Flags the ES launcher (server-cli SystemJvmOptions) passes too, minus the ones only its bootstrap uses.
_JVM_FLAGS = (
    "-XX:+UseG1GC",
    "-Xss1m",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+ExitOnOutOfMemoryError",  # die visibly rather than limp on
    "-Djava.awt.headless=true",
    "-Dfile.encoding=UTF-8",
    "-Djava.locale.providers=CLDR",
    "-Djna.nosys=true",  # use the JNA that ES embeds, not a system one
    "-Dio.netty.noUnsafe=true",
    "-Dio.netty.noKeySetOptimization=true",
    "-Dio.netty.recycler.maxCapacityPerThread=0",
    "-Dlog4j.shutdownHookEnabled=false",  # the launcher shuts log4j down after the node has closed
    "-Dlog4j2.disable.jmx=true",
    "-Dlog4j2.formatMsgNoLookups=true",
)


# --- build ------------------------------------------------------------------------------------


def _inputs_digest() -> str:
    """Hash of the Maven project's inputs (pom + sources): the build is redone when it changes."""
    h = hashlib.sha256()
    files = [LOCALNODE_DIR / "pom.xml", *sorted(p for p in (LOCALNODE_DIR / "src").rglob("*") if p.is_file())]
    for f in files:
        h.update(str(f.relative_to(LOCALNODE_DIR)).encode())
        h.update(b"\0")
        h.update(f.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def _is_built(digest: str) -> bool:
    try:
        return STAMP_FILE.read_text().strip() == digest and any(LIB_DIR.glob("newsmon-localnode-*.jar"))
    except OSError:
        return False


def _maven_error(output: str) -> str:
    """The most telling line of a failed Maven run (shortened to one readable line)."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    errors = [ln.removeprefix("[ERROR]").strip() for ln in lines if ln.startswith("[ERROR]")]
    # compiler errors and unresolvable artifacts name the cause; the rest is Maven boilerplate
    cause = re.compile(r"\.java:\[\d+|Could not (resolve|transfer)|Non-resolvable")
    causes = [ln for ln in errors if cause.search(ln)]
    others = [ln for ln in errors if ln and "COMPILATION ERROR" not in ln]
    line = (causes or others or lines or ["no output"])[0]
    return line if len(line) <= 400 else line[:400] + " ..."


def wait_lock(path: Path) -> contextlib.AbstractContextManager[object]:
    """An exclusive lock between processes (two test sessions building or starting at once)."""
    return file_lock(path, timeout=math.inf)


def ensure_built(progress: Callable[[str], None] | None = None) -> Path:
    """Build the node (``mvn package``) unless ``target/lib`` is up to date; returns the lib dir."""
    if not (LOCALNODE_DIR / "pom.xml").is_file():
        raise ESNodeError(f"the local node's Maven project is missing: {LOCALNODE_DIR / 'pom.xml'}")
    digest = _inputs_digest()
    if _is_built(digest):
        return LIB_DIR
    # the lock lives outside target/ so that `mvn clean` by hand cannot pull it away
    lock = (
        Path(os.environ.get("TMPDIR", "/tmp"))
        / f"newsmon-localnode-{hashlib.sha1(bytes(LOCALNODE_DIR)).hexdigest()[:12]}.lock"
    )
    with wait_lock(lock):
        if _is_built(digest):  # another process built it while we waited
            return LIB_DIR
        find_java()  # Maven needs a JDK too; fail with the Java message first
        mvn = shutil.which("mvn")
        if not mvn:
            raise ESNodeError(
                "Maven (mvn) is not on PATH; it is needed once to build the local node (apt install maven)"
            )
        if progress:
            progress("building the local Elasticsearch node with Maven (first time downloads ~60 MB) ...")
        # Build into a fresh staging dir and swap it in: a changed ES version leaves no old jars behind, and
        # nodes running from target/lib meanwhile never see a half-filled folder.
        staging, old = TARGET_DIR / "lib.new", TARGET_DIR / "lib.old"
        for d in (staging, old, TARGET_DIR / "classes"):  # classes: no leftovers of deleted sources
            shutil.rmtree(d, ignore_errors=True)
        cmd = [mvn, "-q", "-B", "package", f"-Dlocalnode.lib={staging}"]
        try:
            proc = subprocess.run(cmd, cwd=LOCALNODE_DIR, capture_output=True, text=True, timeout=1800)
        except subprocess.TimeoutExpired:
            raise ESNodeError("building the local node timed out after 30 min (mvn package)") from None
        if proc.returncode != 0:
            raise ESNodeError(
                f"building the local node failed (mvn package in {LOCALNODE_DIR}): "
                f"{_maven_error(proc.stdout + proc.stderr)}"
            )
        if not any(staging.glob("newsmon-localnode-*.jar")):
            raise ESNodeError(f"mvn package succeeded but {staging} has no newsmon-localnode jar")
        if LIB_DIR.exists():
            LIB_DIR.rename(old)
        staging.rename(LIB_DIR)
        shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(CDS_DIR, ignore_errors=True)  # archives name the old jars; they are rebuilt on demand
        STAMP_FILE.write_text(digest + "\n")
        if progress:
            progress("local Elasticsearch node built")
    return LIB_DIR


# --- java -------------------------------------------------------------------------------------


def find_java() -> tuple[str, int]:
    """The java to use (``$JAVA_HOME/bin/java`` if set, else ``java`` on PATH) and its feature version."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        java = str(Path(java_home) / "bin" / "java")
        if not os.access(java, os.X_OK):
            raise ESNodeError(f"JAVA_HOME={java_home} has no bin/java")
    else:
        found = shutil.which("java")
        if not found:
            raise ESNodeError(
                f"Java {MIN_JAVA}+ is needed for the local Elasticsearch node; no java on PATH "
                "(apt install openjdk-17-jdk-headless, or set JAVA_HOME)"
            )
        java = found
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ESNodeError(f"cannot run {java} -version: {exc}") from None
    version = parse_java_version(out.stderr + out.stdout)
    if version is None:
        raise ESNodeError(f"cannot tell the version of {java}")
    if version < MIN_JAVA:
        raise ESNodeError(
            f"{java} is Java {version}; the local Elasticsearch node needs Java {MIN_JAVA}+ (set JAVA_HOME)"
        )
    return java, version


def parse_java_version(text: str) -> int | None:
    """Feature version from ``java -version`` output: '1.8.0_392' -> 8, '17.0.15' -> 17, '25' -> 25."""
    m = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


def parse_heap(value: str) -> int:
    """JVM size like '1g', '768m', '2048' (bytes as in -Xmx) -> bytes; ESNodeError if malformed."""
    m = re.fullmatch(r"\s*(\d+)\s*([kKmMgG]?)\s*", value)
    if not m or int(m.group(1)) == 0:
        raise ESNodeError(f"{HEAP_ENV}={value!r}: expected a size such as 1g or 768m")
    return int(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2).lower()]


def heap_flags(heap: str | None = None, default: str = DEFAULT_HEAP) -> list[str]:
    """-Xms/-Xmx: max from NEWSMON_ES_HEAP, else ``default``; the initial heap stays small (512m)."""
    heap = (heap if heap is not None else os.environ.get(HEAP_ENV) or default).strip()
    size = parse_heap(heap)
    xms = heap if size < 512 << 20 else "512m"
    return [f"-Xms{xms}", f"-Xmx{heap}"]


# --- nodes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalNode:
    """One local node: its home (data, logs, config, tmp, pid file), HTTP address and the
    ``-E`` settings that make it a cluster member (none for the single node)."""

    name: str
    home: Path
    url: str
    host: str
    http_port: int
    es_settings: tuple[str, ...] = ()
    default_heap: str = DEFAULT_HEAP

    @property
    def pid_file(self) -> Path:
        return self.home / "node.pid"

    @property
    def stdout_log(self) -> Path:
        return self.home / "logs" / "stdout.log"

    @property
    def node_log(self) -> Path:
        return self.home / "logs" / f"{CLUSTER_NAME}.log"  # log4j names it after the cluster


def local_nodes(settings: Settings, count: int = 1) -> list[LocalNode]:
    """The nodes of a local cluster of ``count`` (1: today's single node under ``<data>/es``).

    Several nodes live under ``<data>/es-cluster/node-<i>``; node ``i`` serves HTTP on
    NEWSMON_ES_URL's port + i - 1 (node 1 *is* NEWSMON_ES_URL) and transport on that + 100.
    All are master-eligible data nodes that find each other through every transport port.
    """
    host, port = settings.es_host, settings.es_port
    if count == 1:
        return [LocalNode(CLUSTER_NAME, settings.layout.es, settings.es_url, host, port)]
    if not 2 <= count <= MAX_NODES:
        raise ESNodeError(f"a local cluster has 1 to {MAX_NODES} nodes, not {count}")
    addr = f"[{host}]" if ":" in host else host  # IPv6 literal
    names = [f"{CLUSTER_NAME}-{i}" for i in range(1, count + 1)]
    seeds = ",".join(f"{addr}:{port + i + TRANSPORT_OFFSET}" for i in range(count))
    nodes = []
    for i, name in enumerate(names):
        home = settings.layout.es_cluster / f"node-{i + 1}"
        es_settings = [
            "discovery.type=multi-node",
            f"discovery.seed_hosts={seeds}",
            f"transport.port={port + i + TRANSPORT_OFFSET}",
        ]
        # Only a node that has never joined the cluster gets the bootstrap list: ES asks for it to be
        # left out once the cluster has formed (a restarted node finds the others through the seeds).
        # https://www.elastic.co/guide/en/elasticsearch/reference/8.18/modules-discovery-bootstrap-cluster.html
        if not (home / "data" / "_state").exists():
            es_settings.append(f"cluster.initial_master_nodes={','.join(names)}")
        nodes.append(
            LocalNode(
                name,
                home,
                f"http://{addr}:{port + i}",
                host,
                port + i,
                tuple(es_settings),
                CLUSTER_HEAP,
            )
        )
    return nodes


def java_command(
    node: LocalNode,
    java: str,
    java_version: int,
    lib_dir: Path,
    watch_pid: int | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    home = node.home
    cmd = [
        java,
        *heap_flags(default=node.default_heap),
        *_JVM_FLAGS,
        f"-Djava.io.tmpdir={home / 'tmp'}",
        f"-XX:ErrorFile={home / 'logs' / 'hs_err_pid%p.log'}",
    ]
    if java_version >= 21:
        # Lucene / ES native access from the classpath (the ES launcher names its modules; we are unnamed)
        cmd.append("--enable-native-access=ALL-UNNAMED")
    if watch_pid:
        cmd.append(f"-Dnewsmon.watch.pid={watch_pid}")
    cmd += [*extra, *shlex.split(os.environ.get(JAVA_OPTS_ENV, ""))]
    cmd += [
        "-cp",
        f"{lib_dir}/*",
        MAIN_CLASS,
        f"-Epath.home={home}",
        f"-Epath.data={home / 'data'}",
        f"-Epath.logs={home / 'logs'}",
        f"-Ecluster.name={CLUSTER_NAME}",
        f"-Enode.name={node.name}",
        f"-Enetwork.host={node.host}",
        f"-Ehttp.port={node.http_port}",
        *(f"-E{setting}" for setting in node.es_settings),
    ]
    return cmd
