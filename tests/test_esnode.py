"""The local Elasticsearch node: pure helpers (fast) and a real node (integration).

The integration tests share the session node from conftest (``es_settings``); the stop/start
tests run one extra short-lived node of their own.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest
from esfixture import es_client, start_test_node, stop_test_node

from newsmon.errors import ESNodeError
from newsmon.index.localnode import build
from newsmon.index.localnode import launcher as esnode
from newsmon.index.localnode.launcher import free_port
from newsmon.settings import Settings

# --- helpers (no node) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('java version "1.8.0_392"', 8),
        ('openjdk version "25" 2025-09-16', 25),
        ('openjdk version "21.0.2-ea"', 21),
        ("garbage", None),
    ],
)
def test_parse_java_version(text: str, expected: int | None) -> None:
    assert build.parse_java_version(text) == expected


def test_heap_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSMON_ES_HEAP", raising=False)
    assert build.heap_flags() == ["-Xms512m", "-Xmx1g"]
    monkeypatch.setenv("NEWSMON_ES_HEAP", "2g")
    assert build.heap_flags() == ["-Xms512m", "-Xmx2g"]
    assert build.heap_flags("256m") == ["-Xms256m", "-Xmx256m"]
    assert build.parse_heap("768M") == 768 << 20
    for bad in ("", "lots", "0", "1.5g", "-1g"):
        with pytest.raises(ESNodeError, match="NEWSMON_ES_HEAP"):
            build.heap_flags(bad)


def test_read_pid_file(tmp_path: Path) -> None:
    p = tmp_path / "node.pid"
    assert esnode.read_pid_file(p) == (None, None)
    p.write_text("1234\nhttp://127.0.0.1:9200\n")
    assert esnode.read_pid_file(p) == (1234, "http://127.0.0.1:9200")
    p.write_text("1234")
    assert esnode.read_pid_file(p) == (1234, None)
    p.write_text("not a pid\n")
    assert esnode.read_pid_file(p) == (None, None)


def test_last_log_line(tmp_path: Path) -> None:
    out = tmp_path / "stdout.log"
    out.write_text(
        "# java ...\n"
        "newsmon-node: failed to start: java.net.BindException: Address already in use\n"
        "\tat sun.nio.ch.Net.bind0(Native Method)\n"
    )
    assert esnode.last_log_line(out) == "java.net.BindException: Address already in use"
    out.write_text(
        "# java -XX:+Bogus ...\nUnrecognized VM option 'Bogus'\n"
        "Error: Could not create the Java Virtual Machine.\n"
        "Error: A fatal exception has occurred. Program will exit.\n\n"
    )
    assert esnode.last_log_line(out) == "Unrecognized VM option 'Bogus'"
    assert esnode.last_log_line(tmp_path / "missing.log") == "(no log output)"


def test_maven_error_picks_the_cause() -> None:
    output = (
        "[ERROR] COMPILATION ERROR : \n"
        "[ERROR] /x/Foo.java:[15,48] cannot find symbol\n"
        "[ERROR] Failed to execute goal org.apache.maven.plugins:maven-compiler-plugin ...\n"
    )
    assert build._maven_error(output) == "/x/Foo.java:[15,48] cannot find symbol"
    assert (
        build._maven_error("[ERROR] Failed to execute goal x\n[ERROR] -> [Help 1]")
        == "Failed to execute goal x"
    )


def test_java_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSMON_ES_HEAP", raising=False)
    s = Settings(es_url="http://localhost:9311", data_dir=tmp_path)
    (node,) = build.local_nodes(s)
    cmd = build.java_command(node, "/usr/bin/java", 17, Path("/lib"))
    home = tmp_path.resolve() / "es"
    assert cmd[0] == "/usr/bin/java" and "-Xmx1g" in cmd
    assert cmd[cmd.index("-cp") + 1] == "/lib/*"
    assert cmd[cmd.index("-cp") + 2] == build.MAIN_CLASS
    assert f"-Epath.data={home / 'data'}" in cmd
    assert "-Ehttp.port=9311" in cmd and "-Enetwork.host=localhost" in cmd
    assert not any("native-access" in c for c in cmd)
    assert "--enable-native-access=ALL-UNNAMED" in build.java_command(node, "java", 21, Path("/lib"))
    monkeypatch.setenv("NEWSMON_ES_JAVA_OPTS", "-XX:TieredStopAtLevel=1 -Dx='a b'")
    cmd = build.java_command(node, "java", 17, Path("/lib"), extra=["-XX:SharedArchiveFile=/a.jsa"])
    flags = cmd[: cmd.index("-cp")]
    assert flags[-3:] == ["-XX:SharedArchiveFile=/a.jsa", "-XX:TieredStopAtLevel=1", "-Dx=a b"]


def test_local_nodes_single_and_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSMON_ES_HEAP", raising=False)
    s = Settings(es_url="http://127.0.0.1:9400", data_dir=tmp_path)
    (single,) = build.local_nodes(s)
    assert (single.home, single.url, single.es_settings) == (tmp_path.resolve() / "es", s.es_url, ())
    assert "-Xmx1g" in build.java_command(single, "java", 17, Path("/lib"))

    nodes = build.local_nodes(s, 3)
    assert [n.url for n in nodes] == [f"http://127.0.0.1:{p}" for p in (9400, 9401, 9402)]
    assert [n.home for n in nodes] == [tmp_path.resolve() / "es-cluster" / f"node-{i}" for i in (1, 2, 3)]
    assert len({n.pid_file for n in nodes}) == 3
    cmd = build.java_command(nodes[1], "java", 17, Path("/lib"))
    assert "-Xmx512m" in cmd and "-Enode.name=newsmon-local-2" in cmd and "-Ehttp.port=9401" in cmd
    assert "-Etransport.port=9501" in cmd and "-Ediscovery.type=multi-node" in cmd
    assert "-Ediscovery.seed_hosts=127.0.0.1:9500,127.0.0.1:9501,127.0.0.1:9502" in cmd
    boot = "-Ecluster.initial_master_nodes=newsmon-local-1,newsmon-local-2,newsmon-local-3"
    assert boot in cmd
    # once a node has joined (its cluster state is on disk) it is started without the bootstrap list
    (nodes[1].home / "data" / "_state").mkdir(parents=True)
    again = build.local_nodes(s, 3)
    assert boot not in build.java_command(again[1], "java", 17, Path("/lib"))
    assert boot in build.java_command(again[0], "java", 17, Path("/lib"))
    for bad in (0, 10):
        with pytest.raises(ESNodeError, match="1 to 9 nodes"):
            build.local_nodes(s, bad)


def test_cds_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSMON_ES_CDS", "0")
    assert esnode.ensure_cds_archive("/usr/bin/java", 17, Path("/lib")) is None


def test_stale_pid_file_is_removed(tmp_path: Path) -> None:
    s = Settings(es_url=f"http://127.0.0.1:{free_port()}", data_dir=tmp_path)
    pidf = esnode.pid_file(s)
    pidf.parent.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    for stale in (dead.pid, os.getpid()):  # a gone process, and a live one that is not our node
        pidf.write_text(f"{stale}\n{s.es_url}\n")
        st = esnode.status(s)
        assert (st.running, st.managed, st.pid) == (False, False, None)
        assert not pidf.exists()
    pidf.write_text(f"{dead.pid}\n")
    assert esnode.stop(s) is False and not pidf.exists()


def test_remote_url_is_not_started(tmp_path: Path) -> None:
    s = Settings(es_url="http://es.example.org:9200", data_dir=tmp_path)
    assert esnode.ensure_running(s) is False
    with pytest.raises(ESNodeError, match="not on this machine"):
        esnode.start(s)


def test_ensure_running_leaves_a_taken_port_alone(tmp_path: Path) -> None:
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        s = Settings(es_url=f"http://127.0.0.1:{srv.getsockname()[1]}", data_dir=tmp_path)
        assert esnode.ensure_running(s) is False


# --- a real node --------------------------------------------------------------------------------


def _tokens(settings: Settings, body: dict, index: str | None = None) -> list[str]:
    es = es_client(settings)
    resp = es.indices.analyze(index=index, **body)
    return [t["token"] for t in resp["tokens"]]


@pytest.mark.integration
def test_port_taken_by_another_program(tmp_path: Path) -> None:
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        s = Settings(es_url=f"http://127.0.0.1:{srv.getsockname()[1]}", data_dir=tmp_path)
        with pytest.raises(ESNodeError, match=r"port \d+ on 127.0.0.1 is already in use by another program"):
            esnode.start(s, timeout=30)
    assert not esnode.pid_file(s).exists()


@pytest.mark.integration
def test_java_exiting_early_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "_JVM_FLAGS", (*build._JVM_FLAGS, "-XX:+NoSuchNewsmonFlag"))
    s = Settings(es_url=f"http://127.0.0.1:{free_port()}", data_dir=tmp_path)
    with pytest.raises(ESNodeError, match=r"exited during startup.*Unrecognized VM option 'NoSuchNewsmon"):
        esnode.start(s, timeout=60)
    assert not esnode.pid_file(s).exists()


@pytest.mark.integration
def test_health_and_status(es_settings: Settings) -> None:
    st = esnode.status(es_settings)
    assert st.running and st.health in ("yellow", "green")
    assert st.version and st.version.startswith("8.19.")
    info = es_client(es_settings).info()  # GET / (served by our root plugin) works for the client
    assert info["version"]["number"] == st.version
    if not os.environ.get("NEWSMON_TEST_ES_URL"):
        assert st.managed and st.pid


@pytest.mark.integration
def test_nori_analyzer(es_settings: Settings) -> None:
    tokens = _tokens(es_settings, {"analyzer": "nori", "text": "수출통제를 강화했다"})
    assert "수출" in tokens and ("통제" in tokens or "강화" in tokens)
    assert "를" not in tokens  # particles are dropped by nori's default stoptags


@pytest.mark.integration
def test_nori_tokenizer_settings(es_settings: Settings) -> None:
    es = es_client(es_settings)
    index = "newsmon-test-nori-settings"
    es.indices.create(
        index=index,
        settings={
            "analysis": {
                "tokenizer": {
                    "ko_mixed": {
                        "type": "nori_tokenizer",
                        "decompound_mode": "mixed",
                        "user_dictionary_rules": ["반도체장비 반도체 장비"],
                    },
                },
                "filter": {"ko_pos": {"type": "nori_part_of_speech", "stoptags": ["J", "E"]}},
                "analyzer": {
                    "ko": {"tokenizer": "ko_mixed", "filter": ["ko_pos", "nori_readingform", "lowercase"]}
                },
            }
        },
    )
    try:
        tokens = _tokens(es_settings, {"analyzer": "ko", "text": "반도체장비를 수출했다"}, index=index)
        # mixed: the compound and its parts
        assert {"반도체장비", "반도체", "장비"} <= set(tokens)
        assert "를" not in tokens
    finally:
        es.indices.delete(index=index)


@pytest.mark.integration
def test_smartcn_analyzer(es_settings: Settings) -> None:
    tokens = _tokens(es_settings, {"analyzer": "smartcn", "text": "美国商务部加强出口管制"})
    assert "出口" in tokens and "管制" in tokens
    tokens = _tokens(
        es_settings, {"tokenizer": "smartcn_tokenizer", "filter": ["smartcn_stop"], "text": "出口管制的"}
    )
    assert tokens[:2] == ["出口", "管制"]


@pytest.mark.integration
def test_cjk_bigram_in_custom_analyzer(es_settings: Settings) -> None:
    es = es_client(es_settings)
    index = "newsmon-test-cjk"
    es.indices.create(
        index=index,
        settings={
            "analysis": {
                "filter": {
                    "bigram_uni": {
                        "type": "cjk_bigram",
                        "ignored_scripts": ["hangul"],
                        "output_unigrams": True,
                    }
                },
                "analyzer": {
                    "cjk_text": {"tokenizer": "standard", "filter": ["cjk_width", "lowercase", "cjk_bigram"]},
                    "cjk_uni": {"tokenizer": "standard", "filter": ["bigram_uni"]},
                },
            }
        },
    )
    try:
        assert _tokens(es_settings, {"analyzer": "cjk_text", "text": "出口管制 ＡＢＣ"}, index=index) == [
            "出口",
            "口管",
            "管制",
            "abc",
        ]
        uni = _tokens(es_settings, {"analyzer": "cjk_uni", "text": "出口"}, index=index)
        assert {"出", "口", "出口"} <= set(uni)
        assert _tokens(es_settings, {"analyzer": "cjk", "text": "出口管制"}) == ["出口", "口管", "管制"]
    finally:
        es.indices.delete(index=index)


@pytest.mark.integration
def test_index_and_search_roundtrip(es_settings: Settings) -> None:
    es = es_client(es_settings)
    index = "newsmon-test-roundtrip"
    es.indices.create(
        index=index,
        mappings={
            "properties": {
                "title_ko": {"type": "text", "analyzer": "nori"},
                "title_zh": {"type": "text", "analyzer": "smartcn"},
                "lang": {"type": "keyword"},
            }
        },
    )
    try:
        es.index(index=index, id="1", document={"title_ko": "정부, 반도체 수출통제를 강화했다", "lang": "ko"})
        es.index(index=index, id="2", document={"title_zh": "美国商务部加强出口管制", "lang": "zh"})
        es.indices.refresh(index=index)
        hits = es.search(index=index, query={"match": {"title_ko": "수출 통제"}})["hits"]["hits"]
        assert [h["_id"] for h in hits] == ["1"]
        hits = es.search(index=index, query={"match": {"title_zh": "出口管制"}})["hits"]["hits"]
        assert [h["_id"] for h in hits] == ["2"]
        assert es.count(index=index, query={"term": {"lang": "zh"}})["count"] == 1
    finally:
        es.indices.delete(index=index)


@pytest.mark.integration
def test_stop_start_keeps_data_and_guards_the_data_dir(tmp_path: Path) -> None:
    if os.environ.get("NEWSMON_TEST_ES_URL"):
        pytest.skip("NEWSMON_TEST_ES_URL: no nodes of our own")
    settings = start_test_node(tmp_path)
    try:
        es = es_client(settings)
        es.index(index="newsmon-test-persist", id="a", document={"t": "수출통제"}, refresh=True)
        assert esnode.stop(settings) is True
        assert not esnode.pid_file(settings).exists()
        assert esnode.status(settings).running is False

        # a stale pid file from a crashed run must not block the next start
        dead = subprocess.Popen(["true"])
        dead.wait()
        esnode.pid_file(settings).write_text(f"{dead.pid}\n{settings.es_url}\n")
        st = esnode.start(settings)
        assert st.managed and st.pid != dead.pid
        assert es_client(settings).count(index="newsmon-test-persist")["count"] == 1
        # start again: the same node, no second JVM
        assert esnode.start(settings).pid == st.pid
        # a cluster on the same data dir would take the single node's port: refused, no JVM started
        with pytest.raises(ESNodeError, match=rf"the single local node \(pid {st.pid}\) runs"):
            esnode.start(settings, nodes=3)
        assert esnode.cluster_members(settings) == []

        # the same data dir on another port: refused with a clear message, before any JVM starts
        other = Settings(es_url=f"http://127.0.0.1:{free_port()}", data_dir=tmp_path)
        with pytest.raises(ESNodeError, match="already runs on"):
            esnode.start(other)
        # ... and even without our pid file, ES's node.lock gives it away
        esnode.pid_file(settings).unlink()
        with pytest.raises(ESNodeError, match=rf"is locked by process {st.pid}"):
            esnode.start(other)
        esnode.pid_file(settings).write_text(f"{st.pid}\n{settings.es_url}\n")
    finally:
        stop_test_node(settings)
    assert esnode.status(settings).running is False
