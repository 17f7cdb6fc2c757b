"""newsmon under Airflow: the settings DAG tasks use, and ``newsmon airflow`` for local operation.

Settings precedence in DAG tasks (``airflow_settings``), field by field:

1. the Airflow connection ``newsmon_es`` / ``newsmon_smtp``, when it is defined (UI, ``airflow
   connections add``, an ``AIRFLOW_CONN_NEWSMON_ES`` variable or a secrets backend), for the
   fields it sets: ES url (scheme from ``schema``: http/https), login, password and
   ``extra.ca_certs``; SMTP host, port, login, password, TLS (the SMTP provider's
   ``disable_ssl``/``disable_tls`` extras, so its UI form means what it says) and
   ``extra.from_email``;
2. ``NEWSMON_*`` environment variables (and the ``NEWSMON_CONFIG`` file);
3. the defaults of ``newsmon.settings.Settings``.

Everything else (data dir, index prefix, recipients ...) comes from 2 and 3.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from newsmon.errors import NewsmonError

# newsmon.settings is imported inside the functions: the DAG files import this module (for
# CRAWL_POOL), and building the Settings model would more than double their parse time.
if TYPE_CHECKING:
    from airflow.sdk import Connection

    from newsmon.settings import Settings

ES_CONN_ID = "newsmon_es"
SMTP_CONN_ID = "newsmon_smtp"


def _missing(name: str) -> NoReturn:
    raise ImportError(f"{name} is not installed: reinstall newsmon")


# The DAG files ship in the package (newsmon.dags, the project's dags/ folder): ask the import
# system where, so that a checkout and an installed wheel both work.
DAGS_FOLDER = Path(str((importlib.util.find_spec("newsmon.dags") or _missing("newsmon.dags")).origin)).parent
# The pool of the crawl tasks: its slots are how many crawls run at once, the politeness and
# load knob (each crawl locks the stores of its sources, so crawls of different sources run
# side by side and one source is never crawled twice at once). `newsmon airflow` creates it
# with CRAWL_POOL_SLOTS (--crawl-slots); docker-compose's airflow-init with 4 slots.
CRAWL_POOL = "newsmon_crawl"
CRAWL_POOL_SLOTS = 2
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"
_SMTP_DEFAULT_PORT = {"ssl": 465, "starttls": 587, "none": 25}  # by SmtpTls value

ConnectionLookup = Callable[[str], "Connection | None"]


def find_connection(conn_id: str) -> Connection | None:
    """The Airflow connection, or None when it is not defined anywhere."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def _flag(value: Any) -> bool:
    # The UI stores booleans; hand-written JSON or URIs often carry "true"/"false" strings.
    return value.strip().lower() in ("1", "true", "yes", "on") if isinstance(value, str) else bool(value)


def es_overrides(conn: Connection) -> dict[str, Any]:
    if not conn.host:
        raise NewsmonError(f"Airflow connection {ES_CONN_ID}: no host")
    scheme = next((s for s in (conn.schema, conn.conn_type) if s in ("http", "https")), "http")
    fields = {
        "es_url": f"{scheme}://{conn.host}:{conn.port or 9200}",
        "es_user": conn.login,
        "es_password": conn.password,
        "es_ca_certs": conn.extra_dejson.get("ca_certs"),
    }
    return {k: v for k, v in fields.items() if v}


def smtp_overrides(conn: Connection) -> dict[str, Any]:
    if not conn.host:
        raise NewsmonError(f"Airflow connection {SMTP_CONN_ID}: no host")
    extra = conn.extra_dejson
    # The SMTP provider's meaning: implicit TLS unless disable_ssl, then STARTTLS unless disable_tls.
    if not _flag(extra.get("disable_ssl")):
        tls = "ssl"
    elif not _flag(extra.get("disable_tls")):
        tls = "starttls"
    else:
        tls = "none"
    fields = {
        "smtp_host": conn.host,
        "smtp_port": conn.port or _SMTP_DEFAULT_PORT[tls],
        "smtp_tls": tls,
        "smtp_user": conn.login,
        "smtp_password": conn.password,
        "alert_from": extra.get("from_email"),
    }
    return {k: v for k, v in fields.items() if v}


def airflow_settings(lookup: ConnectionLookup = find_connection) -> Settings:
    """Settings for a DAG task: Airflow connection > ``NEWSMON_*`` environment > defaults."""
    from newsmon.settings import load_settings

    overrides: dict[str, Any] = {}
    if es := lookup(ES_CONN_ID):
        overrides |= es_overrides(es)
    if smtp := lookup(SMTP_CONN_ID):
        overrides |= smtp_overrides(smtp)
    return load_settings(**overrides)


# --- local standalone Airflow ---------------------------------------------------------------


def airflow_env(home: Path, *, port: int = 8080) -> dict[str, str]:
    """The environment of a local SQLite Airflow that runs this repository's DAGs."""
    return {
        # Standalone starts its components as `airflow ...`: this venv's, also when not activated.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API__HOST": "127.0.0.1",  # a dev set-up with a generated password: not on the network
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://localhost:{port}",
    }


def prepare_airflow(env: dict[str, str], crawl_slots: int = CRAWL_POOL_SLOTS) -> None:
    """Migrate the metadata DB and create (or resize) the crawl pool with ``crawl_slots`` slots
    (in a child: Airflow reads its config on import)."""
    if crawl_slots < 1:
        raise NewsmonError(f"airflow: --crawl-slots must be at least 1, not {crawl_slots}")
    code = (
        "from airflow.utils.db import initdb; initdb()\n"
        "from airflow.models.pool import Pool\n"
        f"Pool.create_or_update_pool({CRAWL_POOL!r}, {crawl_slots}, "
        "'newsmon crawls running at once (one per source at most)', include_deferred=False)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise NewsmonError(
            f"airflow: setting up {env['AIRFLOW_HOME']} failed:\n{done.stderr.strip()[-2000:]}"
        )


def admin_password(home: Path) -> str | None:
    """The admin password that standalone's simple auth manager generated, once it has."""
    try:
        return json.loads((home / PASSWORDS_FILE).read_text(encoding="utf-8")).get("admin")
    except (OSError, ValueError):
        return None


def login_help(home: Path, port: int, password: str | None) -> str:
    secret = password or f"(not generated yet; it will be in {home / PASSWORDS_FILE})"
    return (
        f"Airflow UI: http://localhost:{port}  user: admin  password: {secret}\n"
        f"  password file: {home / PASSWORDS_FILE}\n"
        "  demo: unpause newsmon_feeds, then Trigger it with the param demo = true"
    )


# Plain parameters, not typer.Option annotations: the DAG files import this module, and
# importing typer would double their parse time.
def _check_port_free(port: int) -> None:
    """Fail in one line before Airflow starts half its services on a port it cannot have."""
    if not 0 < port < 65536:
        raise NewsmonError(f"airflow: --port must be between 1 and 65535 (got {port})")
    with socket.socket() as probe:
        try:
            probe.bind(("", port))  # the API server listens on every interface
        except OSError as exc:
            raise NewsmonError(
                f"airflow: port {port} is not free ({exc.strerror}); choose another with --port"
            ) from None


def newsmon_airflow_command(port: int = 8080, crawl_slots: int = CRAWL_POOL_SLOTS) -> None:
    """Run Airflow 3 standalone (SQLite under NEWSMON_DATA_DIR/airflow) with newsmon's DAGs.

    --port: the Airflow UI and API server's port. --crawl-slots: slots of the crawl pool
    newsmon_crawl, i.e. how many sources are crawled at once (set at every start).
    Prints how to log in once Airflow is up.
    """
    import typer

    from newsmon.settings import get_settings

    _check_port_free(port)
    if crawl_slots < 1:
        raise NewsmonError("airflow: --crawl-slots must be 1 or more")
    settings = get_settings()
    home = settings.layout.airflow
    home.mkdir(parents=True, exist_ok=True)
    env = airflow_env(home, port=port)
    airflow = shutil.which("airflow", path=env["PATH"])
    if airflow is None:
        raise NewsmonError("airflow: the `airflow` command is not installed in this environment")
    typer.echo(f"setting up Airflow in {home} ...", err=True)
    prepare_airflow(env, crawl_slots)
    proc = subprocess.Popen([airflow, "standalone"], env={**os.environ, **env})
    try:
        # Standalone writes the password file while it starts; show the login once it exists.
        deadline = time.monotonic() + 180
        while (
            (password := admin_password(home)) is None and proc.poll() is None and time.monotonic() < deadline
        ):
            time.sleep(1)
        typer.echo(login_help(home, port, password), err=True)
        proc.wait()
    except KeyboardInterrupt:
        proc.wait()  # standalone got the same SIGINT and shuts its components down
    if proc.returncode:
        raise typer.Exit(proc.returncode)
