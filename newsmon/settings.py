"""Settings from ``NEWSMON_*`` environment variables, with an optional config file.

pydantic-settings gives typed parsing and one error per bad variable; precedence is
environment > ``NEWSMON_CONFIG`` file (YAML or .env style) > defaults.
"""

from __future__ import annotations

import os
import re
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import yaml
from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from newsmon.errors import ConfigError
from newsmon.layout import DataDir

REPO_ROOT = Path(__file__).resolve().parent.parent


class SmtpTls(StrEnum):
    none = "none"
    starttls = "starttls"
    ssl = "ssl"


class _YamlConfigSource(PydanticBaseSettingsSource):
    """Reads the optional YAML file named by NEWSMON_CONFIG (keys without the prefix)."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        path = os.environ.get("NEWSMON_CONFIG")
        self._data: dict[str, Any] = {}
        if path:
            p = Path(path)
            if not p.is_file():
                raise ConfigError(f"NEWSMON_CONFIG: no such file: {path}")
            try:
                loaded = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                raise ConfigError(f"NEWSMON_CONFIG: {path} is not valid YAML: {exc}") from exc
            if not isinstance(loaded, dict):
                raise ConfigError(f"NEWSMON_CONFIG: {path} must hold a mapping of settings")
            self._data = {str(k).lower().removeprefix("newsmon_"): v for k, v in loaded.items()}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in self.settings_cls.model_fields}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEWSMON_", extra="ignore")

    es_url: str = "http://127.0.0.1:9200"
    es_user: str | None = None
    es_password: str | None = None
    es_ca_certs: Path | None = None
    index_prefix: str = "newsmon"
    # Tries of one Elasticsearch request through an outage, pausing 1 s, 2 s, 4 s ... (at most
    # 30 s) between them; then the indexer spools what it could not write.
    es_retries: int = 6
    # Index lifecycle (index/lifecycle.py): with es_ilm the template attaches the ILM policy
    # {prefix}-articles (rollover, warm phase, delete after es_ilm_delete_after if set); off,
    # `newsmon index rollover` (a daily DAG task) rolls over by the same conditions. Clusters
    # without ILM (the local node, which has no x-pack) keep it off.
    es_ilm: bool = False
    es_ilm_delete_after: str | None = None  # e.g. 730d; None: indices are never deleted
    # How many nodes `newsmon es start` runs on this machine: 1 is the single-node default; 3
    # forms a small cluster (NEWSMON_ES_URL's port and the next ones) to try replicas and failover.
    es_nodes: int = 1
    data_dir: Path = Path("./var")
    # Where crawl state, the inbox, locks and the alert ledger live. None: embedded SQLite files
    # and file locks under the data dir (one host). A PostgreSQL SQLAlchemy URL: that database,
    # shared by every worker host (README, "Which state lives where").
    state_url: str | None = None
    # Articles one worker claims at a time from the shared inbox queue (an analysis batch).
    inbox_batch: int = 200
    sources: Path | None = None  # the source registry; None: the one shipped with the crawler
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_tls: SmtpTls = SmtpTls.none
    alert_from: str = "newsmon@localhost"
    # NoDecode: the variable is plain comma-separated text, not JSON.
    alert_to: Annotated[list[str], NoDecode] = []
    alert_rules: Path | None = None  # None: the packaged newsmon/alerts/rules.yaml
    # More new stories than this for an immediate rule in one run (a first run, a backfill,
    # a run after an outage) go out as one digest instead of one mail each.
    alert_flood_threshold: int = 20
    # Analysis: topic backend (signal | rules | transformers | ensemble) and the relevance
    # model's folder (None: the signal heads' relevance head, or without one the shipped
    # nlp/models/tech_relevance). The signal heads score best on the signal corpus's
    # evaluation split (README, "Alerts and topics, measured").
    topic_backend: str = "signal"
    relevance_model: Path | None = None
    topic_model: Path | None = None  # None: the shipped nlp/models/topics (transformers, ensemble)
    # Crawl budgets, per source and run, so that one hostile or huge site cannot stall a run:
    # child sitemaps followed from sitemap indexes, article URLs taken from one sitemap (the
    # newest first), the run's wall time, and one page's download time (tried twice at most).
    crawl_max_child_sitemaps: int = 50
    crawl_max_sitemap_urls: int = 1000
    crawl_max_seconds: int = 1800
    crawl_page_timeout: int = 15
    # A configured feed or sitemap that brought no new article for this many runs in a row is
    # re-discovered from the outlet's homepage (an outlet that moved its feed may leave the old one up).
    crawl_quiet_runs: int = 5
    # Processes that extract fetched pages beside the crawl's own (-1: one per core beyond the
    # first, at most 4; 0: extract in the crawl process, between downloads).
    crawl_extract_workers: int = -1
    # Kiwi's worker threads for batch analysis (-1: one per core; 0 is read as 1).
    kiwi_workers: int = -1
    # Fixed, so the demo's article URLs (and so their ids) are the same from run to run.
    demo_port: int = 8645
    user_agent: str = "newsmon/0.1 (+https://github.com/newsmon/newsmon; news monitoring bot)"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlConfigSource(settings_cls))

    @field_validator("es_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL such as http://127.0.0.1:9200")
        return value.rstrip("/")

    @field_validator("state_url")
    @classmethod
    def _check_state_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            driver = make_url(value).drivername
        except ArgumentError:
            driver = ""
        # The psycopg driver ships with newsmon (newsmon.state.driver_url picks it).
        if driver not in ("postgresql", "postgres", "postgresql+psycopg"):
            raise ValueError(
                "must be a PostgreSQL URL such as postgresql://newsmon:PASSWORD@db-host/newsmon"
                " (postgresql:// or postgresql+psycopg://)"
            )
        return value

    @field_validator("index_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not value or value != value.lower() or any(c in value for c in ' "*\\<|,>/?'):
            raise ValueError("must be a lowercase Elasticsearch index name prefix")
        return value

    @field_validator("smtp_port", "demo_port")
    @classmethod
    def _check_port(cls, value: int) -> int:
        if not 0 < value < 65536:
            raise ValueError("must be a TCP port between 1 and 65535")
        return value

    @field_validator(
        "es_retries",
        "es_nodes",
        "inbox_batch",
        "alert_flood_threshold",
        "crawl_max_child_sitemaps",
        "crawl_max_sitemap_urls",
        "crawl_max_seconds",
        "crawl_page_timeout",
        "crawl_quiet_runs",
    )
    @classmethod
    def _check_positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be 1 or more")
        return value

    @field_validator("topic_backend")
    @classmethod
    def _check_backend(cls, value: str) -> str:
        known = ("signal", "rules", "transformers", "ensemble")
        if value not in known:
            raise ValueError(f"must be one of {', '.join(known)}")
        return value

    @field_validator("es_ilm_delete_after")
    @classmethod
    def _check_age(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[1-9]\d*d", value):
            raise ValueError("must be a number of days such as 730d")
        return value

    @field_validator("kiwi_workers", "crawl_extract_workers")
    @classmethod
    def _check_workers(cls, value: int) -> int:
        if value < -1:
            raise ValueError("must be -1 (one per core), or 0 or more")
        return value

    @field_validator("relevance_model", "topic_model")
    @classmethod
    def _check_model_dir(cls, value: Path | None) -> Path | None:
        if value is not None and not (value / "config.json").is_file():
            raise ValueError("no model folder there (a folder with config.json, as `newsmon train` writes)")
        return value

    @field_validator("alert_rules", "es_ca_certs")
    @classmethod
    def _check_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError("no such file")
        return value

    @field_validator("sources")
    @classmethod
    def _check_sources(cls, value: Path | None) -> Path | None:
        if value is not None and not value.exists():
            raise ValueError("no such file or folder")
        return value

    @field_validator("alert_to", mode="before")
    @classmethod
    def _split_recipients(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [addr.strip() for addr in value.split(",") if addr.strip()]
        return value

    @field_validator("alert_to")
    @classmethod
    def _check_recipients(cls, value: list[str]) -> list[str]:
        for addr in value:
            if "@" not in addr:
                raise ValueError(f"{addr!r} is not an email address")
        return value

    @property
    def es_host(self) -> str:
        return urlsplit(self.es_url).hostname or "127.0.0.1"

    @property
    def es_port(self) -> int:
        return urlsplit(self.es_url).port or (443 if self.es_url.startswith("https") else 9200)

    @property
    def es_is_local(self) -> bool:
        return self.es_host in ("127.0.0.1", "localhost", "::1")

    @property
    def layout(self) -> DataDir:
        """Where everything lives under the data dir."""
        return DataDir(self.data_dir)


def _fields_env_name(loc: tuple[Any, ...]) -> str:
    return "NEWSMON_" + str(loc[0]).upper() if loc else "NEWSMON_*"


def load_settings(**overrides: Any) -> Settings:
    """Build settings; a bad value raises ConfigError naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = str(err["msg"]).removeprefix("Value error, ")
        # A database URL may hold a password: it is not echoed.
        got = "" if err["loc"][:1] == ("state_url",) else f" (got {err.get('input')!r})"
        raise ConfigError(f"{_fields_env_name(err['loc'])}: {msg}{got}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
