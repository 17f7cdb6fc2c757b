"""Kibana saved objects: every field they use exists in the mapping with a fitting type,
and ``kibana_import`` sends what Kibana's ``_import`` API expects. Kibana itself cannot run
here, so the import is checked against a small local HTTP endpoint (request shape only)."""

from __future__ import annotations

import json
import re
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers.mapping import FIELDS_BY_VIEW
from helpers.smtpsink import self_signed_cert, server_context

from newsmon.errors import NewsmonError
from newsmon.index.kibana import kibana_import, saved_objects, tls_context

OBJECTS = saved_objects()
REPO = Path(__file__).resolve().parents[1]
NUMERIC = {"float", "integer", "long", "double"}
AGGREGATABLE = {"keyword", "boolean", "date", *NUMERIC}
FORMAT_TYPES = {"url": {"keyword"}, "number": NUMERIC, "date": {"date"}, "truncate": {"text", "keyword"}}
_KQL_FIELD = re.compile(r'(?<!["\w.])([A-Za-z_][\w.]*)\s*(:|>=|<=|>|<)')


def _of_type(kind: str) -> list[dict[str, Any]]:
    return [o for o in OBJECTS if o["type"] == kind]


def _search_source(obj: dict[str, Any]) -> dict[str, Any]:
    return json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])


def _fields(obj: dict[str, Any]) -> dict[str, str]:
    """Field types of the index behind the data view that ``obj`` shows (its own, for a view)."""
    if obj["type"] == "index-pattern":
        return FIELDS_BY_VIEW[obj["id"]]
    (view,) = [r["id"] for r in obj["references"] if r["type"] == "index-pattern"]
    return FIELDS_BY_VIEW[view]


def _check_kql(title: str, query: str, fields: dict[str, str]) -> None:
    for name, op in _KQL_FIELD.findall(query):
        assert name in fields, (title, name)
        if op != ":":
            assert fields[name] in {"date", *NUMERIC}, (title, name)


def test_the_issue_objects_are_there() -> None:
    titles = {o["type"]: [] for o in OBJECTS}
    for o in OBJECTS:
        titles[o["type"]].append(o["attributes"]["title"])
    assert titles["index-pattern"] == ["newsmon-articles", "newsmon-runs"]
    assert "Export controls: last 7 days" in titles["search"]
    assert {"Korean articles", "Chinese articles", "English articles"} <= set(titles["search"])
    assert titles["dashboard"] == ["newsmon overview", "newsmon crawl health"]
    # Crawl health (the runs index): recent runs, canary failures, articles per source per day.
    assert {"Crawl health: recent runs", "Crawl health: canary failures"} <= set(titles["search"])
    assert {
        "Crawl health: new articles per source per day",
        "Crawl health: canary failures by site",
    } <= set(titles["visualization"])
    # Event stories: a saved search of reports by story and a table of each story's coverage.
    assert "Event stories: reports by story" in titles["search"]
    assert "Event stories: outlets and languages" in titles["visualization"]


def test_one_saved_search_per_taxonomy_topic() -> None:
    taxonomy = yaml.safe_load((REPO / "nlp" / "data" / "topics.yaml").read_text(encoding="utf-8"))
    queries = {_search_source(s)["query"]["query"] for s in _of_type("search")}
    assert {f'topics:"{label}"' for label in taxonomy["topics"]} <= queries


def test_data_view_fields_and_formats() -> None:
    views = _of_type("index-pattern")
    assert {v["id"] for v in views} == set(FIELDS_BY_VIEW)
    for view in views:
        fields = _fields(view)
        assert fields[view["attributes"]["timeFieldName"]] == "date"
        for name, fmt in json.loads(view["attributes"]["fieldFormatMap"]).items():
            assert fields.get(name) in FORMAT_TYPES[fmt["id"]], (view["id"], name, fmt)


def test_saved_searches_use_mapped_fields() -> None:
    for search in _of_type("search"):
        attrs, fields = search["attributes"], _fields(search)
        for column in attrs["columns"]:
            assert column in fields, (attrs["title"], column)
        for name, _direction in attrs["sort"]:
            assert fields.get(name) in AGGREGATABLE, (attrs["title"], name)
        _check_kql(attrs["title"], _search_source(search)["query"]["query"], fields)


def test_visualizations_aggregate_on_fitting_fields() -> None:
    seen: dict[str, set[str]] = {view: set() for view in FIELDS_BY_VIEW}
    for vis in _of_type("visualization"):
        state, fields = json.loads(vis["attributes"]["visState"]), _fields(vis)
        _check_kql(state["title"], _search_source(vis)["query"]["query"], fields)
        for agg in state["aggs"]:
            field = agg["params"].get("field")
            if agg["type"] == "date_histogram":
                assert fields.get(field) == "date"
            elif agg["type"] == "terms":
                assert fields.get(field) in AGGREGATABLE, (state["title"], field)
            elif agg["type"] in {"sum", "avg"}:
                assert fields.get(field) in NUMERIC, (state["title"], field)
            elif agg["type"] in {"max", "min"}:
                assert fields.get(field) in {"date", *NUMERIC}, (state["title"], field)
            seen[vis["references"][0]["id"]].add(field)
    assert {"date", "topics", "site", "entities", "cluster_id"} <= seen["newsmon-articles"]
    assert {"time", "source", "articles", "reason"} <= seen["newsmon-runs"]


def test_every_reference_resolves() -> None:
    ids = {(o["type"], o["id"]) for o in OBJECTS}
    for obj in OBJECTS:
        for ref in obj.get("references", []):
            assert (ref["type"], ref["id"]) in ids, (obj["id"], ref)
        if "kibanaSavedObjectMeta" in obj["attributes"] and obj["type"] != "dashboard":
            ref_name = _search_source(obj)["indexRefName"]
            assert ref_name in {r["name"] for r in obj["references"]}
    for dashboard in _of_type("dashboard"):
        panels = json.loads(dashboard["attributes"]["panelsJSON"])
        assert {p["panelRefName"] for p in panels} == {r["name"] for r in dashboard["references"]}
        assert {r["type"] for r in dashboard["references"]} == {"visualization", "search"}
        assert dashboard["attributes"]["timeRestore"] is True


# Kibana's documented saved-object formats, as 8.19 imports them:
# - exports since 8.8 carry `coreMigrationVersion` (the last core transform, 8.8.0) and a
#   per-type `typeMigrationVersion`; the older `migrationVersion: {type: version}` must not be
#   mixed in (core would skip the transform that reads it);
# - a type version is a legacy migration version (registered up to 8.10.0; Kibana runs every
#   later migration of the type on import) or a model version "10.N.0" (8.10+), which an older
#   Kibana refuses: the files ship legacy versions only, so any 8.10-8.19 Kibana takes them;
# - these types are importable and exportable in 8.19.
# https://www.elastic.co/guide/en/kibana/current/saved-objects-api-import.html and Kibana's model
# version API notes (legacy migrations end with 8.10.0; versions 10.N.0 after).
LAST_CORE_MIGRATION = (8, 8, 0)
LAST_LEGACY_MIGRATION = (8, 10, 0)
IMPORTABLE_TYPES = {"index-pattern", "search", "visualization", "dashboard", "query", "lens"}


def _semver(value: str) -> tuple[int, int, int]:
    match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", value)
    assert match, f"not a x.y.z version: {value!r}"
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


def test_migration_versions_are_valid_for_kibana_8_19() -> None:
    for obj in OBJECTS:
        where = (obj["type"], obj["id"])
        assert obj["type"] in IMPORTABLE_TYPES, where
        assert "migrationVersion" not in obj, where
        assert _semver(obj["coreMigrationVersion"]) == LAST_CORE_MIGRATION, where
        assert _semver(obj["typeMigrationVersion"]) <= LAST_LEGACY_MIGRATION, where
    assert len({(o["type"], o["id"]) for o in OBJECTS}) == len(OBJECTS), "duplicate ids"


def test_saved_searches_open_on_a_time_range() -> None:
    """Without timeRestore Discover opens a saved search on its global default (15 minutes)."""
    ranges = {}
    for search in _of_type("search"):
        attrs = search["attributes"]
        assert attrs["timeRestore"] is True, attrs["title"]
        assert re.fullmatch(r"now-\d+[dwMy]", attrs["timeRange"]["from"]), attrs["title"]
        assert attrs["timeRange"]["to"] == "now", attrs["title"]
        ranges[attrs["title"]] = attrs["timeRange"]["from"]
    assert ranges["Export controls: last 7 days"] == "now-7d"


def test_saved_query_for_export_control_alerts() -> None:
    (query,) = _of_type("query")
    attrs = query["attributes"]
    assert attrs["query"] == {"query": "alert.export_controls:true", "language": "kuery"}
    assert attrs["filters"] == [] and attrs["title"]
    for name, _op in _KQL_FIELD.findall(attrs["query"]["query"]):
        assert FIELDS_BY_VIEW["newsmon-articles"][name] == "boolean"


def test_prefix_renames_the_data_view_everywhere() -> None:
    objects = saved_objects("acme")
    refs = [r for o in objects for r in o.get("references", []) if r["type"] == "index-pattern"]
    assert refs
    assert {r["id"] for r in refs} == {"acme-articles", "acme-runs"}
    views = [o for o in objects if o["type"] == "index-pattern"]
    assert [(v["id"], v["attributes"]["title"]) for v in views] == [
        ("acme-articles", "acme-articles"),
        ("acme-runs", "acme-runs"),
    ]


class _Kibana(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]] = []  # noqa: RUF012 -- filled by the server thread, read by the test
    answer: tuple[int, dict[str, Any]] = (200, {})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.requests.append({"path": self.path, "headers": self.headers, "body": body})
        status, answer = self.answer
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def _serve(tls: ssl.SSLContext | None = None) -> Iterator[tuple[str, type[_Kibana]]]:
    handler = type("Handler", (_Kibana,), {"requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def kibana() -> Iterator[tuple[str, type[_Kibana]]]:
    with _serve() as served:
        yield served


def test_import_request_shape(kibana: tuple[str, type[_Kibana]]) -> None:
    url, handler = kibana
    handler.answer = (200, {"success": True, "successCount": len(OBJECTS), "successResults": []})
    answer = kibana_import(url + "/", "analysts", prefix="acme", user="elastic", password="pw")
    assert answer["successCount"] == len(OBJECTS)
    (req,) = handler.requests
    assert req["path"] == "/s/analysts/api/saved_objects/_import?overwrite=true"
    assert req["headers"]["kbn-xsrf"]
    assert req["headers"]["Authorization"] == "Basic ZWxhc3RpYzpwdw=="
    head = f"Content-Type: {req['headers']['Content-Type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + req["body"])
    (part,) = message.iter_parts()
    assert part.get_param("name", header="content-disposition") == "file"
    assert part.get_filename().endswith(".ndjson")
    sent = [json.loads(line) for line in part.get_payload(decode=True).decode().splitlines()]
    assert sent == saved_objects("acme")


def test_import_to_the_default_space_without_overwrite(kibana: tuple[str, type[_Kibana]]) -> None:
    url, handler = kibana
    handler.answer = (200, {"success": True, "successCount": 0})
    kibana_import(url, overwrite=False)
    (req,) = handler.requests
    assert req["path"] == "/api/saved_objects/_import"
    assert req["headers"].get("Authorization") is None


def test_import_failures_are_one_line_errors(kibana: tuple[str, type[_Kibana]]) -> None:
    url, handler = kibana
    handler.answer = (
        200,
        {
            "success": False,
            "successCount": 3,
            "errors": [{"id": "x", "type": "search", "error": {"type": "conflict"}}],
        },
    )
    with pytest.raises(NewsmonError, match=r"refused 1, e\.g\. search x"):
        kibana_import(url)
    handler.answer = (401, {"message": "unauthorized"})
    with pytest.raises(NewsmonError, match="HTTP 401"):
        kibana_import(url)
    with pytest.raises(NewsmonError, match="cannot reach Kibana"):
        kibana_import("http://127.0.0.1:1", timeout=2)


def test_cli_import(kibana: tuple[str, type[_Kibana]], monkeypatch: pytest.MonkeyPatch) -> None:
    import typer
    from typer.testing import CliRunner

    from newsmon.index.cli import kibana_app
    from newsmon.settings import get_settings

    monkeypatch.setenv("NEWSMON_INDEX_PREFIX", "acme")
    monkeypatch.setenv("NEWSMON_ES_USER", "analyst")
    get_settings.cache_clear()
    url, handler = kibana
    handler.answer = (200, {"success": True, "successCount": len(OBJECTS)})
    app = typer.Typer()
    app.add_typer(kibana_app, name="kibana")  # as newsmon.cli mounts it
    result = CliRunner().invoke(app, ["kibana", "import", "--url", url, "--space", "ops"])
    assert result.exit_code == 0, result.output
    assert f"imported {len(OBJECTS)} saved objects" in result.output
    (req,) = handler.requests
    assert req["path"] == "/s/ops/api/saved_objects/_import?overwrite=true"
    assert req["headers"]["Authorization"].startswith("Basic ")
    assert b"acme-articles" in req["body"]


def test_tls_keeps_the_system_trust_store_and_adds_the_es_ca(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kibana behind a certificate the system trusts (here: a CA named by SSL_CERT_FILE, which
    the default trust store reads) and Kibana behind the Elasticsearch CA both import."""
    (tmp_path / "system").mkdir()
    (tmp_path / "es").mkdir()
    system_cert, system_key = self_signed_cert(tmp_path / "system", "system ca")
    es_ca, es_key = self_signed_cert(tmp_path / "es", "es ca")
    monkeypatch.setenv("SSL_CERT_FILE", str(system_cert))
    assert tls_context(es_ca).cert_store_stats()["x509_ca"] == (
        ssl.create_default_context().cert_store_stats()["x509_ca"] + 1
    )
    ok = {"success": True, "successCount": len(OBJECTS)}
    for cert, key in ((system_cert, system_key), (es_ca, es_key)):
        with _serve(server_context(cert, key)) as (url, handler):
            handler.answer = (200, ok)
            assert kibana_import(url, ca_certs=es_ca)["successCount"] == len(OBJECTS)
            assert len(handler.requests) == 1
    # A certificate neither trusts is still refused, as one line.
    (tmp_path / "other").mkdir()
    with _serve(server_context(*self_signed_cert(tmp_path / "other", "other ca"))) as (url, _handler):
        with pytest.raises(NewsmonError, match=r"cannot reach Kibana.*CERTIFICATE_VERIFY_FAILED"):
            kibana_import(url, ca_certs=es_ca, timeout=5)
