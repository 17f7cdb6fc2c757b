from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from newsmon.errors import ConfigError
from newsmon.settings import SmtpTls, load_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("NEWSMON_ES_URL", "NEWSMON_INDEX_PREFIX", "NEWSMON_DATA_DIR", "NEWSMON_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    s = load_settings()
    assert s.es_url == "http://127.0.0.1:9200"
    assert (s.es_host, s.es_port, s.es_is_local) == ("127.0.0.1", 9200, True)
    assert s.index_prefix == "newsmon"
    assert s.data_dir == Path("./var")


def test_env_overrides_and_recipient_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSMON_ES_URL", "https://es.example.org:9243/")
    monkeypatch.setenv("NEWSMON_ALERT_TO", "a@example.org, b@example.org")
    monkeypatch.setenv("NEWSMON_SMTP_TLS", "starttls")
    s = load_settings()
    assert s.es_url == "https://es.example.org:9243"
    assert not s.es_is_local
    assert s.alert_to == ["a@example.org", "b@example.org"]
    assert s.smtp_tls is SmtpTls.starttls


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("NEWSMON_SMTP_PORT", "abc"),
        ("NEWSMON_SMTP_PORT", "70000"),
        ("NEWSMON_ES_URL", "localhost:9200"),
        ("NEWSMON_SMTP_TLS", "maybe"),
        ("NEWSMON_ALERT_TO", "not-an-address"),
        ("NEWSMON_INDEX_PREFIX", "Bad Prefix"),
        ("NEWSMON_STATE_URL", "mysql://newsmon:secret@db/newsmon"),
        ("NEWSMON_STATE_URL", "postgresql+psycopg2://newsmon:secret@db/newsmon"),  # a driver not shipped
    ],
)
def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert str(err.value).startswith(f"{var}:")
    assert "\n" not in str(err.value) and "secret" not in str(err.value)


def test_config_file_below_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "newsmon.yaml"
    cfg.write_text("index_prefix: fromfile\nNEWSMON_SMTP_PORT: 2525\n")
    monkeypatch.setenv("NEWSMON_CONFIG", str(cfg))
    monkeypatch.setenv("NEWSMON_INDEX_PREFIX", "fromenv")
    s = load_settings()
    assert s.index_prefix == "fromenv"
    assert s.smtp_port == 2525


def test_cli_reports_bad_setting_in_one_line(tmp_path: Path) -> None:
    env = {"NEWSMON_SMTP_PORT": "abc", "PATH": "/usr/bin:/bin", "NEWSMON_DATA_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "newsmon.cli", "run", "--demo"], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: NEWSMON_SMTP_PORT: Input should be a valid integer, unable to parse string as an integer"
        " (got 'abc')"
    ]


def test_every_pipeline_command_is_there(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "newsmon.cli", "--help"], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 0
    commands = ("run", "crawl", "extract", "analyze", "index", "search", "alerts", "sources")
    commands += ("reprocess", "kibana", "train", "es", "airflow", "stats")
    missing = [c for c in commands if f" {c} " not in proc.stdout]
    assert missing == []
