"""The layout of ``NEWSMON_DATA_DIR``, in one place: every stage asks it for its paths, and
housekeeping (``newsmon.retention``) reads the same names."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class DataDir:
    root: Path

    # --- hand-off between stages
    @property
    def inbox(self) -> Path:
        """Crawl outputs waiting for analysis and indexing (``*.jsonl``; ``*.jsonl.part`` while written)."""
        return self.root / "inbox"

    @property
    def spool(self) -> Path:
        """Articles Elasticsearch did not take, replayed by the next index run."""
        return self.root / "spool"

    @property
    def index_writes_lock(self) -> Path:
        """Held shared by each bulk write, exclusively by an alert run's refresh (``pipeline``)."""
        return self.root / "index" / "writes.lock"

    @property
    def deadletter(self) -> Path:
        """Articles Elasticsearch rejected, kept for a look."""
        return self.root / "deadletter"

    # --- the crawler
    @property
    def crawl_runs(self) -> Path:
        return self.root / "crawl" / "runs"

    @property
    def crawl_sources(self) -> Path:
        """One folder per source: its crawl state (``state.sqlite``) and its lock (``.lock``)."""
        return self.root / "crawl" / "sources"

    def source_state(self, source: str) -> Path:
        return self.crawl_sources / source / "state.sqlite"

    def source_lock(self, source: str) -> Path:
        return self.crawl_sources / source / ".lock"

    @property
    def crawl_legacy_state(self) -> Path:
        """The single crawl state of older versions, migrated into the per-source ones."""
        return self.root / "crawl" / "state.sqlite"

    @property
    def crawl_retired_state(self) -> Path:
        return self.root / "crawl" / "state.sqlite.legacy"

    @property
    def crawl_lock(self) -> Path:
        return self.root / "crawl" / "crawl.lock"

    # --- analysis, alerts, services
    @property
    def clusters(self) -> Path:
        return self.root / "clusters"

    @property
    def alerts_ledger(self) -> Path:
        return self.root / "alerts" / "ledger.sqlite3"

    @property
    def alerts_run_lock(self) -> Path:
        return self.root / "alerts" / "run.lock"

    @property
    def es(self) -> Path:
        """The local Elasticsearch node's home (data, logs, config)."""
        return self.root.resolve() / "es"

    @property
    def es_cluster(self) -> Path:
        """The homes of a local multi-node cluster's nodes (``node-1``, ``node-2``, ...)."""
        return self.root.resolve() / "es-cluster"

    @property
    def airflow(self) -> Path:
        return self.root.resolve() / "airflow"


def stamp() -> str:
    """A UTC timestamp to the microsecond for file and folder names under the data dir: their
    names sort in the order they were made."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
