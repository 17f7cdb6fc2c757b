"""analyze_jsonl and the `newsmon analyze` command function."""

from __future__ import annotations

import io
import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from newsmon.nlp.cli import analyze_command
from newsmon.nlp.cluster import StoryClusters
from newsmon.nlp.jsonl import analyze_jsonl
from newsmon.nlp.pipeline import Analyzer
from newsmon.nlp.stories import EventStories

GOOD_KO = {
    "id": "ko-1",
    "title": "中 상무부, 갈륨·게르마늄 수출통제 발표",
    "text": "중국 상무부는 반도체 소재인 갈륨과 게르마늄 관련 품목에 대해 수출허가제를 시행한다고 밝혔다.",
    "site": "example.kr",
    "published": "2025-07-03T09:00:00+09:00",
}
GOOD_ZH = {
    "title": "英伟达发布新款芯片",
    "text": "英伟达在发布会上推出新一代数据中心GPU。",
    "url": "https://example.cn/a",
}
COPY = {**GOOD_KO, "id": "ko-2", "title": "[속보] 중국, 갈륨 수출통제", "site": "other.kr"}


def _lines(*records: object) -> list[str]:
    return [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]


def test_good_and_bad_lines(tmp_path: Path) -> None:
    src = "\n".join(_lines(GOOD_KO, "{not json", GOOD_ZH, {"title": 3, "text": ""}, "", "[1]", COPY)) + "\n"
    out = io.StringIO()
    stats = analyze_jsonl(io.StringIO(src), out, analyzer=Analyzer(clusters=StoryClusters(tmp_path)))
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(rows) == 6  # the blank line is skipped
    ko, bad_json, zh, bad_title, bad_array, copy = rows
    assert ko["id"] == "ko-1" and ko["site"] == "example.kr" and ko["lang"] == "ko"
    assert ko["alert"]["export_controls"] is True and ko["alert"]["score"] > 0.5
    assert {"label", "score", "evidence"} <= set(ko["topics"][0])
    assert {"tokens", "keywords", "entities", "relevance", "cluster_id", "analyzer"} <= set(ko)
    assert bad_json["line"] == 2 and bad_json["error"].startswith("invalid JSON")
    assert zh["lang"] == "zh" and zh["id"] and zh["url"] == "https://example.cn/a"
    assert bad_title == {"line": 4, "error": "'title' must be a string"}
    assert bad_array == {"line": 6, "error": "a line must hold a JSON object"}
    assert copy["cluster_id"] == ko["cluster_id"]
    # The alert count is the analysed lines flagged (whatever the model decides for each).
    flagged = sum(bool(r.get("alert", {}).get("export_controls")) for r in rows)
    assert ko["alert"]["export_controls"] and copy["alert"]["export_controls"]
    assert (stats.lines, stats.analysed, stats.errors, stats.alerts) == (6, 3, 3, flagged)
    assert len(stats.clusters) == 2
    assert (tmp_path / "clusters.npz").is_file()


def test_ids_and_clusters_are_stable_across_runs(tmp_path: Path) -> None:
    def run() -> list[dict[str, object]]:
        out = io.StringIO()
        src = io.StringIO("\n".join(_lines({k: v for k, v in GOOD_KO.items() if k != "id"}, COPY)))
        analyzer = Analyzer(clusters=StoryClusters(tmp_path), stories=EventStories(tmp_path))
        analyze_jsonl(src, out, analyzer=analyzer)
        return [json.loads(line) for line in out.getvalue().splitlines()]

    first, second = run(), run()
    assert [r["id"] for r in first] == [r["id"] for r in second]
    assert [r["cluster_id"] for r in first] == [r["cluster_id"] for r in second]
    assert first[0]["cluster_id"] == first[0]["id"]  # cluster id = id of its first member
    # The copy is in its original's event story, and both keep it on the second run.
    assert first[0]["story_id"] == first[1]["story_id"] == first[0]["id"]
    assert [r["story_id"] for r in first] == [r["story_id"] for r in second]
    assert (tmp_path / "stories.npz").is_file()


def test_the_command_reads_and_writes_files_and_stdio(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command("analyze")(analyze_command)
    app.command("noop")(lambda: None)  # two commands, so typer keeps the command name
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(_lines(GOOD_KO, "oops")) + "\n", encoding="utf-8")
    dst = tmp_path / "out.jsonl"
    state = ["--state-dir", str(tmp_path / "state")]
    result = CliRunner().invoke(app, ["analyze", "--in", str(src), "--out", str(dst), *state])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in dst.read_text(encoding="utf-8").splitlines()]
    assert rows[0]["id"] == "ko-1"
    assert rows[1] == {"line": 2, "error": "invalid JSON: Expecting value (column 1)"}

    result = CliRunner().invoke(app, ["analyze", *state], input=json.dumps(GOOD_ZH) + "\n")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[0])["lang"] == "zh"
