"""Static checks of the production docker/ files (no Docker engine runs here)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from newsmon.settings import Settings

DOCKER = Path(__file__).resolve().parent.parent / "docker"
SETTING_ENV_NAMES = {f"NEWSMON_{name.upper()}" for name in Settings.model_fields}


def _compose() -> dict:
    return yaml.safe_load((DOCKER / "docker-compose.yml").read_text())


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
    pools = re.search(r"airflow pools set newsmon_crawl (\d+)", services["airflow-init"]["command"])
    assert pools and int(pools.group(1)) > 1


def test_every_image_tag_is_pinned() -> None:
    images = [svc["image"] for svc in _compose()["services"].values() if "image" in svc]
    froms = [
        line.split()[1]
        for dockerfile in DOCKER.rglob("Dockerfile")
        for line in dockerfile.read_text().splitlines()
        if line.startswith("FROM ")
    ]
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
