"""Every command of the CLI, run with Elasticsearch unreachable and with bad settings.

A user sees one ``error: ...`` line and exit code 2 for an unreachable service, a bad setting
or a missing path, never a traceback. Commands run in-process through ``newsmon.cli.main``,
exactly as the console script runs them.
"""

from __future__ import annotations

import json
import re
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer.main

from newsmon.alerts.sample import sample_articles
from newsmon.cli import app, main
from newsmon.settings import get_settings

pytestmark = pytest.mark.integration

# Per command: its arguments and the exit codes it may end with when Elasticsearch is down.
# {tmp}, {page}, {articles}, {analyzed}, {closed} and {busy} are filled in by the fixture below.
CASES: dict[str, tuple[list[str], set[int]]] = {
    "run": (["run", "--demo"], {2}),
    "crawl": (["crawl", "--demo", "--quiet", "--out", "{tmp}/crawl.jsonl"], {0}),
    "extract": (["extract", "{page}", "--url", "https://news.example/a/1"], {0}),
    "analyze": (["analyze", "--in", "{articles}", "--out", "{tmp}/analyzed.jsonl"], {0}),
    "index articles": (["index", "{analyzed}"], {2}),  # `newsmon index FILES` is `index articles FILES`
    "index rollover": (["index", "rollover"], {2}),
    "search": (["search", "수출통제"], {2}),
    "stats": (["stats"], {2}),
    "reprocess": (["reprocess"], {2}),
    "train": (["train", "--data", "{tmp}/missing.jsonl", "--out", "{tmp}/model"], {2}),
    "airflow": (["airflow", "--port", "{busy}"], {2}),
    "es start": (["es", "start"], {2}),  # the URL is not this machine's: nothing to start
    "es stop": (["es", "stop"], {0}),
    "es status": (["es", "status"], {3}),  # documented: 3 = not running
    "sources list": (["sources", "list"], {0}),
    "sources check": (["sources", "check", "no-such-source"], {2}),
    "sources discover": (["sources", "discover", "http://127.0.0.2:{closed}/"], {2}),  # nothing answers
    "alerts rules": (["alerts", "rules"], {0}),
    "alerts test-email": (["alerts", "test-email", "--to", "desk@example.org"], {2}),
    "alerts run": (["alerts", "run"], {2}),
    "kibana import": (["kibana", "import", "--url", "http://127.0.0.2:{closed}"], {2}),
    "signal train": (["signal", "train", "--corpus", "{tmp}/no-corpus", "--out", "{tmp}/heads"], {2}),
    "signal eval": (["signal", "eval", "--model", "{tmp}/no-heads"], {2}),
    "signal stories-train": (
        ["signal", "stories-train", "--corpus", "{tmp}/no-corpus", "--out", "{tmp}/stories.json"],
        {2},
    ),
    "signal stories": (["signal", "stories", "--model", "{tmp}/no-stories.json"], {2}),
    "signal agreement": (["signal", "agreement", "--second", "{tmp}/no-labels.tsv"], {2}),
    "signal export-e5": (["signal", "export-e5", "--out", "/dev/null/e5"], {2}),
    "state upgrade": (["state", "upgrade"], {2}),  # NEWSMON_STATE_URL unset: nothing to migrate
    "state import": (["state", "import"], {2}),  # NEWSMON_STATE_URL unset: nowhere to import to
}


def _leaf_commands() -> set[str]:
    names: set[str] = set()

    def walk(command: object, path: list[str]) -> None:
        subs = getattr(command, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        else:
            names.add(" ".join(path))

    walk(typer.main.get_command(app), [])
    return names


def _closed_port(host: str = "127.0.0.2") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]  # closed again once the socket is


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Elasticsearch, SMTP and Kibana at closed ports; small input files; a port held busy."""
    monkeypatch.setenv("NEWSMON_ES_URL", f"http://127.0.0.2:{_closed_port()}")
    monkeypatch.setenv("NEWSMON_ES_RETRIES", "2")  # an outage is given up on in a second
    monkeypatch.setenv("NEWSMON_SMTP_HOST", "127.0.0.2")
    monkeypatch.setenv("NEWSMON_SMTP_PORT", str(_closed_port()))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        # Probed where the demo site binds: a port free on 127.0.0.2 may be taken on 127.0.0.1.
        monkeypatch.setenv("NEWSMON_DEMO_PORT", str(_closed_port("127.0.0.1")))
        page = tmp_path / "page.html"
        page.write_text(
            "<html><head><title>수출통제 강화</title></head><body><article><h1>수출통제 강화</h1>"
            + "<p>미국 상무부가 반도체 수출통제를 강화했다. 새 규정은 다음 달 시행된다.</p>" * 5
            + "</article></body></html>",
            encoding="utf-8",
        )
        articles = tmp_path / "articles.jsonl"
        row = {
            "title": "美商务部加强芯片出口管制",
            "text": "美国商务部宣布新的出口管制措施。",
            "url": "https://x.cn/1",
        }
        articles.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
        analyzed = tmp_path / "analyzed-articles.jsonl"
        analyzed.write_text(sample_articles()[0].model_dump_json() + "\n", encoding="utf-8")
        yield {
            "tmp": str(tmp_path),
            "page": str(page),
            "articles": str(articles),
            "analyzed": str(analyzed),
            "closed": str(_closed_port()),
            "busy": str(busy.getsockname()[1]),
        }


def _newsmon(argv: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    get_settings.cache_clear()
    old = sys.argv
    sys.argv = ["newsmon", *argv]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = old
    out, err = capfd.readouterr()
    return code, out, err


def _assert_one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    return errors[0]


def test_every_command_is_covered() -> None:
    assert set(CASES) == _leaf_commands()


@pytest.mark.parametrize("command", sorted(CASES))
def test_command_with_elasticsearch_unreachable(
    command: str, env: dict[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    args, codes = CASES[command]
    code, out, err = _newsmon([a.format(**env) for a in args], capfd)
    assert "Traceback" not in out + err
    assert code in codes, (code, out[-2000:], err[-2000:])
    if code == 2:
        line = _assert_one_error_line(err)
        if command in (
            "run",
            "index articles",
            "index rollover",
            "search",
            "stats",
            "reprocess",
            "alerts run",
        ):
            assert line.startswith("error: ") and "127.0.0.2" in line and "Elasticsearch" in line, line


def test_run_prints_its_summary_before_the_error(
    env: dict[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _newsmon(["run", "--demo"], capfd)
    assert code == 2
    assert "articles new" in out and "newsmon run" in out  # the summary table went out first
    _assert_one_error_line(err)


ANALYZE = ["analyze", "--in", "{articles}", "--out", "{tmp}/o.jsonl"]


@pytest.mark.parametrize(
    ("variable", "value", "argv"),
    [
        ("NEWSMON_KIWI_WORKERS", "abc", ["analyze", "--in", "{articles}", "--out", "{tmp}/o.jsonl"]),
        (
            "NEWSMON_RELEVANCE_MODEL",
            "/nonexistent",
            ["analyze", "--in", "{articles}", "--out", "{tmp}/o.jsonl"],
        ),
        ("NEWSMON_TOPIC_MODEL", "/nonexistent", ["analyze", "--in", "{articles}", "--out", "{tmp}/o.jsonl"]),
        ("NEWSMON_ALERT_FLOOD_THRESHOLD", "0", ["alerts", "run"]),
        ("NEWSMON_ES_RETRIES", "zero", ["search", "x"]),
        ("NEWSMON_ALERT_RULES", "/nonexistent.yaml", ["alerts", "rules"]),
        ("NEWSMON_SOURCES", "/nonexistent", ["sources", "list"]),
        ("NEWSMON_CRAWL_EXTRACT_WORKERS", "-2", ["sources", "list"]),
        ("NEWSMON_SMTP_PORT", "99999", ["alerts", "test-email", "--to", "desk@example.org"]),
    ],
)
def test_bad_setting_is_one_line_naming_the_variable(
    variable: str,
    value: str,
    argv: list[str],
    env: dict[str, str],
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(variable, value)
    code, out, err = _newsmon([a.format(**env) for a in argv], capfd)
    assert code == 2 and "Traceback" not in out + err
    assert variable in _assert_one_error_line(err)


def test_usage_errors_are_one_line(env: dict[str, str], capfd: pytest.CaptureFixture[str]) -> None:
    code, _, err = _newsmon(["search", "--size", "many", "x"], capfd)
    assert code == 2 and "--size" in _assert_one_error_line(err)
    code, _, err = _newsmon(["no-such-command"], capfd)
    assert code == 2 and "no-such-command" in _assert_one_error_line(err)


def test_run_says_what_it_spooled_when_elasticsearch_goes_away_after_setup(
    env: dict[str, str], capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Elasticsearch answers the index set-up, then is gone: indexing spools, the alerts fail.
    monkeypatch.setattr("newsmon.index.setup.setup_index", lambda settings, client=None: None)
    code, out, err = _newsmon(["run", "--demo"], capfd)
    assert code == 2 and "Traceback" not in out + err
    spooled = re.search(r"index: spooled\D+(\d+)", out)
    assert spooled and int(spooled.group(1)) > 0, out
    assert "Elasticsearch" in _assert_one_error_line(err)
    # Nothing is lost: the spool holds every article the crawl delivered.
    spool = Path(env["tmp"]) / "var" / "spool"
    lines = [line for f in spool.glob("*.jsonl") for line in f.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == int(spooled.group(1))
