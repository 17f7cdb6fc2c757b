"""Static checks of the production docker/ files (no Docker engine runs here), and
`docker compose config` (the Compose CLI, or the Compose Specification's loader built from
tools/compose-config)."""

from __future__ import annotations

import re
import secrets
import shutil
import string
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.fernet import Fernet

from newsmon.settings import Settings

REPO = Path(__file__).resolve().parent.parent
DOCKER = REPO / "docker"
SETTING_ENV_NAMES = {f"NEWSMON_{name.upper()}" for name in Settings.model_fields}
AIRFLOW_SECRETS = ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY")
ONE_SHOT = {"setup", "airflow-init"}


def _compose() -> dict:
    return yaml.safe_load((DOCKER / "docker-compose.yml").read_text())


def _command(service: dict[str, Any]) -> str:
    command = service["command"]
    return command if isinstance(command, str) else "\n".join(command)


def _airflow_services(services: dict[str, Any]) -> dict[str, Any]:
    return {name: svc for name, svc in services.items() if name.startswith("airflow-")}


def _stages(dockerfile: str) -> list[list[str]]:
    """The Dockerfile's build stages, each as its instruction lines (continuations joined)."""
    joined = re.sub(r"\\\n\s*", " ", dockerfile)
    stages: list[list[str]] = []
    for line in joined.splitlines():
        line = line.strip()
        if line.startswith("FROM "):
            stages.append([])
        if stages and line and not line.startswith("#"):
            stages[-1].append(line)
    return stages


def _pinned(image: str) -> bool:
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest") and any(c.isdigit() for c in tag)


def test_compose_parses_and_has_the_stack() -> None:
    services = _compose()["services"]
    for needed in ("elasticsearch", "kibana", "postgres", "redis", "airflow-scheduler", "airflow-worker"):
        assert needed in services
    assert services["airflow-worker"]["deploy"]["replicas"] >= 2
    assert services["airflow-scheduler"]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"


def test_every_worker_shares_the_data_volume_and_crawls_run_side_by_side() -> None:
    services = _compose()["services"]
    data_dir = services["airflow-worker"]["environment"]["NEWSMON_DATA_DIR"]
    for name in ("airflow-worker", "airflow-scheduler", "airflow-init"):
        assert f"newsmon-data:{data_dir}" in services[name]["volumes"], name
    pools = re.search(r"airflow pools set newsmon_crawl (\d+)", _command(services["airflow-init"]))
    assert pools and int(pools.group(1)) > 1


def test_every_image_tag_is_pinned() -> None:
    images = [svc["image"] for svc in _compose()["services"].values() if "image" in svc]
    froms = []
    for dockerfile in DOCKER.rglob("Dockerfile"):
        text = dockerfile.read_text()
        args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.M))  # FROM ${ARG}: the ARG's default
        for line in text.splitlines():
            if line.startswith("FROM "):
                froms.append(string.Template(line.split()[1]).substitute(args))
    assert images and froms
    unpinned = [image for image in images + froms if not _pinned(image)]
    assert unpinned == []


def test_elasticsearch_version_matches_local_node_and_has_cjk_plugins() -> None:
    dockerfile = (DOCKER / "elasticsearch" / "Dockerfile").read_text()
    assert "analysis-nori" in dockerfile and "analysis-smartcn" in dockerfile
    pom = (DOCKER.parent / "index" / "localnode" / "pom.xml").read_text()
    local = re.search(r"<es.version>([\d.]+)</es.version>", pom)
    assert local, "pom.xml names no es.version"
    images = re.findall(
        r"/(?:elasticsearch|kibana):(\d+\.\d+\.\d+)", dockerfile + (DOCKER / "docker-compose.yml").read_text()
    )
    assert images and set(images) == {local.group(1)}


def test_env_names_match_settings() -> None:
    text = (DOCKER / "docker-compose.yml").read_text() + (DOCKER / ".env.example").read_text()
    used = set(re.findall(r"\bNEWSMON_[A-Z_]+\b", text))
    assert used, "compose sets no NEWSMON_ variables"
    assert used <= SETTING_ENV_NAMES, f"unknown settings: {sorted(used - SETTING_ENV_NAMES)}"
    # Every setting a production deployment must set is set.
    assert {"NEWSMON_ES_URL", "NEWSMON_ES_PASSWORD", "NEWSMON_SMTP_HOST", "NEWSMON_ALERT_TO"} <= used


def test_setup_service_makes_certificates_and_sets_the_kibana_password() -> None:
    services = _compose()["services"]
    setup = _command(services["setup"])
    assert "elasticsearch-certutil ca" in setup and "elasticsearch-certutil cert" in setup
    assert "/_security/user/kibana_system/_password" in setup
    # Kibana logs in as kibana_system with the very password the setup service sets.
    assert services["kibana"]["environment"]["ELASTICSEARCH_USERNAME"] == "kibana_system"
    kibana_password = services["kibana"]["environment"]["ELASTICSEARCH_PASSWORD"]
    assert kibana_password.startswith("${KIBANA_PASSWORD")
    assert services["setup"]["environment"]["KIBANA_PASSWORD"].startswith("${KIBANA_PASSWORD")
    assert services["elasticsearch"]["depends_on"]["setup"]["condition"] == "service_healthy"
    assert services["kibana"]["depends_on"] == {
        "elasticsearch": {"condition": "service_healthy"},
        "setup": {"condition": "service_completed_successfully"},
    }


def test_ca_private_key_is_for_root_alone() -> None:
    setup = _command(_compose()["services"]["setup"])
    assert "a+r" not in setup and "o+r" not in setup
    key_mode = setup.index("chmod 600 $$c/ca/ca.key")
    assert key_mode > setup.index("chmod 640"), "a later blanket chmod would undo the key's mode"


def test_every_airflow_service_shares_the_secrets() -> None:
    services = _airflow_services(_compose()["services"])
    assert len(services) >= 6
    required = set()
    for name in AIRFLOW_SECRETS:
        values = {svc_name: svc["environment"].get(name) for svc_name, svc in services.items()}
        (value,) = set(values.values())  # one value in every container
        assert value and re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", value), (name, value)
        required.add(re.match(r"\$\{([A-Z_]+)", value).group(1))
    example = (DOCKER / ".env.example").read_text()
    assert all(re.search(rf"^{var}=", example, re.M) for var in required)


def test_startup_order_and_restarts() -> None:
    services = _compose()["services"]
    for name, svc in services.items():
        if name in ONE_SHOT:
            assert svc["restart"] == "no", name
        else:
            assert svc["restart"] in ("always", "unless-stopped"), name
            assert "test" in svc.get("healthcheck", {}), f"{name} has no healthcheck"
        for dep, how in svc.get("depends_on", {}).items():
            if how["condition"] == "service_healthy":
                assert "test" in services[dep].get("healthcheck", {}), f"{name} waits on {dep}'s health"
    for name, svc in _airflow_services(services).items():
        if name != "airflow-init":
            assert svc["depends_on"]["airflow-init"] == {"condition": "service_completed_successfully"}
    init = services["airflow-init"]
    assert "newsmon index --setup" in _command(init)
    assert init["depends_on"]["elasticsearch"] == {"condition": "service_healthy"}
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"


def test_image_owns_the_data_volume_and_installs_dependencies_first() -> None:
    services = _compose()["services"]
    data_dir = services["airflow-worker"]["environment"]["NEWSMON_DATA_DIR"]
    *build_stages, final = _stages((DOCKER / "Dockerfile").read_text())
    runs = [line for line in final if line.startswith("RUN ")]
    assert any(f"mkdir -p {data_dir}" in r and f"chown airflow:root {data_dir}" in r for r in runs)
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users[-1] == "airflow"
    # No compiler in the shipped stage; it is used in a build stage only.
    assert not any("build-essential" in line for line in final)
    assert any("build-essential" in line for stage in build_stages for line in stage)
    # Dependencies are installed from pyproject.toml alone, before the source is copied in, so
    # a code change reuses the dependency layers.
    (deps,) = build_stages
    copies = [line for line in deps if line.startswith("COPY ")]
    assert copies == [line for line in copies if "pyproject.toml" in line]
    assert any("pip install" in line for line in deps)
    source_copy = next(i for i, line in enumerate(final) if line.startswith("COPY --chown=airflow:root . "))
    assert any(line.startswith("COPY --from=") for line in final[:source_copy])
    assert "--no-deps" in " ".join(final[source_copy:])


def test_dockerignore_keeps_the_context_small_and_complete() -> None:
    patterns = {
        line.strip().rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".git", "index/localnode/target", "var"} <= patterns
    # What the image build needs stays in (pyproject names README.md and LICENSE).
    needed = {
        "pyproject.toml",
        "setup.py",
        "README.md",
        "LICENSE",
        "newsmon",
        "crawlers",
        "nlp",
        "index",
        "dags",
    }
    assert not needed & patterns


ComposeConfig = Callable[[Path, Path], subprocess.CompletedProcess[str]]  # (compose file, env file)


@pytest.fixture(scope="module")
def compose_config(tmp_path_factory: pytest.TempPathFactory) -> ComposeConfig:
    """``docker compose config --quiet`` for a compose file with an env file: the docker CLI's
    compose plugin or docker-compose where installed, else tools/compose-config built with Go,
    which loads the file with the Compose Specification's own loader (compose-go, the library
    inside the compose plugin)."""
    docker, standalone, go = shutil.which("docker"), shutil.which("docker-compose"), shutil.which("go")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        cli = [docker, "compose"]
    elif standalone:
        cli = [standalone]
    elif go:
        built = tmp_path_factory.mktemp("compose") / "compose-config"
        build = subprocess.run(
            [go, "build", "-o", str(built), "."],
            cwd=REPO / "tools" / "compose-config",
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert build.returncode == 0, build.stderr
        return lambda compose, env: _run([str(built), "-quiet", "-env-file", str(env), str(compose)])
    else:
        pytest.skip("no compose CLI (docker compose, docker-compose) and no Go to build tools/compose-config")
    return lambda compose, env: _run([*cli, "-f", str(compose), "--env-file", str(env), "config", "--quiet"])


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def _env_file(folder: Path) -> Path:
    """docker/.env.example with the secrets the README tells the operator to generate."""
    generated = {
        "AIRFLOW_FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW_JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW_API_SECRET_KEY": secrets.token_urlsafe(32),
    }
    env = folder / ".env"
    env.write_text(
        (DOCKER / ".env.example").read_text() + "".join(f"{k}={v}\n" for k, v in generated.items())
    )
    return env


def test_docker_compose_config_validates(tmp_path: Path, compose_config: ComposeConfig) -> None:
    env = _env_file(tmp_path)
    done = compose_config(DOCKER / "docker-compose.yml", env)
    assert done.returncode == 0, done.stderr
    # Without the secrets compose refuses to start, naming the missing one.
    env.write_text((DOCKER / ".env.example").read_text())
    done = compose_config(DOCKER / "docker-compose.yml", env)
    assert done.returncode != 0 and "AIRFLOW_" in done.stderr


def test_compose_config_rejects_a_broken_file(tmp_path: Path, compose_config: ComposeConfig) -> None:
    """The checker is a real loader, not a YAML parse: a service that depends on a missing one
    fails, as ``docker compose up`` would."""
    broken = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())
    broken["services"]["late-worker"] = {"image": "busybox:1.37", "depends_on": ["no-such-service"]}
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    done = compose_config(path, _env_file(tmp_path))
    assert done.returncode != 0 and "no-such-service" in done.stderr


def test_snapshot_repository_path_is_a_volume_elasticsearch_can_write() -> None:
    services = _compose()["services"]
    repo = services["elasticsearch"]["environment"]["path.repo"]
    volume = next(v.split(":")[0] for v in services["elasticsearch"]["volumes"] if v.split(":")[1] == repo)
    assert volume in _compose()["volumes"]
    # A new named volume's mount point belongs to root; the setup service hands it to uid 1000.
    setup = services["setup"]
    (mounted,) = [v.split(":")[1] for v in setup["volumes"] if v.startswith(f"{volume}:")]
    assert mounted == repo
    assert f"chown 1000:0 {Path(repo).name}" in _command(setup)


def test_workers_share_state_in_postgres_migrated_before_they_start() -> None:
    """Every Airflow container points NEWSMON_STATE_URL at one database on the compose
    PostgreSQL; its first start creates that database and airflow-init migrates it."""
    services = _compose()["services"]
    urls = {svc["environment"].get("NEWSMON_STATE_URL") for svc in _airflow_services(services).values()}
    (url,) = urls
    assert url and url.startswith("postgresql+psycopg://") and url.endswith("@postgres/newsmon")
    assert "./postgres-init:/docker-entrypoint-initdb.d:ro" in services["postgres"]["volumes"]
    init_sql = (DOCKER / "postgres-init" / "10-newsmon.sql").read_text()
    assert re.search(r"^CREATE DATABASE newsmon;", init_sql, re.M)
    steps = _command(services["airflow-init"])
    assert steps.index("newsmon state upgrade") < steps.index("newsmon index --setup")
    assert services["airflow-init"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
