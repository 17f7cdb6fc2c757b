"""The shared state database (NEWSMON_STATE_URL) on a real PostgreSQL started by the suite:
its migrations, the check that a worker refuses an unmigrated database, and advisory locks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from newsmon.errors import NewsmonError
from newsmon.locks import SharedLock, file_lock, lock_at, try_hold
from newsmon.settings import load_settings
from newsmon.state import current_revision, driver_url, head_revision, shared_engine

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[1]


def _newsmon(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newsmon.cli", *argv],
        env=os.environ | {"PYTHONPATH": str(REPO)} | env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def test_state_upgrade_migrates_an_empty_database_once(postgres: str, tmp_path: Path) -> None:
    admin = sa.create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("CREATE DATABASE upgrade_me")
    admin.dispose()
    url = sa.make_url(postgres).set(database="upgrade_me").render_as_string(hide_password=False)
    env = {"NEWSMON_STATE_URL": url, "NEWSMON_DATA_DIR": str(tmp_path)}

    # A worker refuses a database its migrations have not run on, in one line.
    refused = _newsmon("alerts", "run", "--dry-run", env=env)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1].startswith("error: NEWSMON_STATE_URL:")
    assert "newsmon state upgrade" in refused.stderr

    first = _newsmon("state", "upgrade", env=env)
    assert first.returncode == 0, first.stderr
    assert f"schema {head_revision()} (was empty)" in first.stdout
    again = _newsmon("state", "upgrade", env=env)
    assert again.returncode == 0 and "(was" not in again.stdout
    engine = sa.create_engine(driver_url(url))
    assert current_revision(engine) == head_revision()
    tables = set(sa.inspect(engine).get_table_names())
    assert {"seen", "articles", "outbox", "http_cache", "inbox", "checkpoints", "stories"} <= tables
    engine.dispose()


def test_unreachable_state_database_is_one_line() -> None:
    with pytest.raises(NewsmonError, match=r"^NEWSMON_STATE_URL: cannot connect") as err:
        shared_engine("postgresql://newsmon:secret@127.0.0.2:1/newsmon")
    assert "\n" not in str(err.value) and "secret" not in str(err.value)


def test_settings_take_a_postgres_url(state_url: str) -> None:
    settings = load_settings(state_url=state_url)
    assert settings.state_url == state_url
    assert lock_at(Path("x.lock"), settings.state_url, "alerts-run") == SharedLock(state_url, "alerts-run")
    assert lock_at(Path("x.lock"), None, "alerts-run") == Path("x.lock")
    assert load_settings().state_url is None  # unset: the embedded state
    assert driver_url("postgres://u:p@h/db") == "postgresql+psycopg://u:p@h/db"  # the short scheme


def test_advisory_locks_exclude_other_sessions_and_die_with_their_process(state_url: str) -> None:
    where = SharedLock(state_url, "crawl-source:demo")
    with file_lock(where) as held:
        assert try_hold(where) is None  # another session (here: the same process) is refused
        assert try_hold(SharedLock(state_url, "crawl-source:other")) is not None
        assert held.fileno() > 0
        with pytest.raises(NewsmonError, match="the shared lock 'crawl-source:demo'"):
            with file_lock(where, timeout=0.3, poll=0.1):
                pass
    again = try_hold(where)
    assert again is not None
    again.close()

    # A process that takes the lock and is killed leaves it free: the server ends its session.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from newsmon.locks import SharedLock, try_hold;"
            f"held = try_hold(SharedLock({state_url!r}, 'crawl-source:demo'));"
            "print('held' if held else 'busy', flush=True); time.sleep(600)",
        ],
        env=os.environ | {"PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    assert try_hold(where) is None
    holder.kill()
    holder.wait()
    with file_lock(where, timeout=10, poll=0.1):  # the server notices the closed socket at once
        pass


def test_a_lock_in_an_unreachable_database_is_one_line() -> None:
    where = SharedLock("postgresql://newsmon:secret@127.0.0.2:1/newsmon", "alerts-run")
    assert "secret" not in repr(where) and "secret" not in str(where)
    with pytest.raises(NewsmonError, match=r"^NEWSMON_STATE_URL: cannot connect for a lock") as err:
        try_hold(where)
    assert "\n" not in str(err.value) and "secret" not in str(err.value)


def test_the_migrations_go_down_and_up_again(state_url: str) -> None:
    from alembic import command

    from newsmon.state import alembic_config

    engine = sa.create_engine(driver_url(state_url))
    command.downgrade(alembic_config(state_url), "base")
    assert current_revision(engine) is None
    assert set(sa.inspect(engine).get_table_names()) == {"alembic_version"}
    command.upgrade(alembic_config(state_url), "head")
    assert current_revision(engine) == head_revision()
    engine.dispose()
