"""Two "hosts" sharing one PostgreSQL (NEWSMON_STATE_URL) and one Elasticsearch node: two worker
processes, each with a data dir of its own, crawl and process the same sources at the same time.
One is killed (SIGKILL) mid-run, during its crawl or during its analysis, and run again.

Every article is indexed exactly once, every alert is mailed exactly once, nothing is lost.
All of it real: the demo site over HTTP, Scrapy, PostgreSQL (pgserver), the suite's ES node and
an SMTP server (aiosmtpd).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from helpers.articles import DEMO_ARTICLES
from helpers.smtpsink import SmtpSink

from newsmon.crawlers.crawl_process import ORPHAN_GRACE_S, ORPHAN_POLL_S
from newsmon.crawlers.demo_server import demo_sources, serve_demo
from newsmon.inbox import queued
from newsmon.index.client import articles_alias, es_client
from newsmon.settings import REPO_ROOT, Settings
from newsmon.state import driver_url

pytestmark = pytest.mark.integration
RULE = "export-controls"  # the shipped immediate rule
# What the killed worker is doing when it is killed: the line it printed last.
KILL_POINTS = {
    "crawl": lambda line: line.startswith("new "),  # its crawl child has extracted an article
    "analysis": lambda line: line.startswith("analysing "),  # it holds a claimed batch
}


def _worker(order: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "helpers.worker", order],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(worker: subprocess.Popen[str], timeout: float = 400) -> str:
    out, _ = worker.communicate(timeout=timeout)
    assert worker.returncode == 0, out[-3000:]
    assert out.rstrip().endswith("worker done"), out[-3000:]
    return out


@pytest.mark.parametrize("kill_during", list(KILL_POINTS))
def test_two_hosts_index_and_alert_everything_once_even_when_one_is_killed(
    es_settings: Settings, state_url: str, tmp_path: Path, kill_during: str
) -> None:
    prefix = f"hosts-{uuid.uuid4().hex[:8]}"
    with serve_demo(delay=0.2) as site, SmtpSink() as sink:  # a slow site: the crawls overlap
        registry = tmp_path / "sources.yaml"
        entries = [s.model_dump(mode="json", exclude_none=True) for s in demo_sources(site.url)]
        registry.write_text(yaml.safe_dump({"sources": entries}, allow_unicode=True), encoding="utf-8")
        env = {
            var: value
            for var, value in os.environ.items()
            if not var.startswith("NEWSMON_") or var == "NEWSMON_TEST_ES_URL"
        } | {
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "tests")]),
            "NEWSMON_STATE_URL": state_url,
            "NEWSMON_ES_URL": es_settings.es_url,
            "NEWSMON_INDEX_PREFIX": prefix,
            "NEWSMON_SOURCES": str(registry),
            "NEWSMON_SMTP_HOST": "127.0.0.1",
            "NEWSMON_SMTP_PORT": str(sink.port),
            "NEWSMON_ALERT_TO": "desk@example.org",
            "NEWSMON_INBOX_BATCH": "3",  # several batches, so both hosts take some
        }
        host = {name: env | {"NEWSMON_DATA_DIR": str(tmp_path / name)} for name in ("a", "b")}

        killed = _worker("forward", host["a"])
        other = _worker("reverse", host["b"])
        assert killed.stdout is not None
        seen: list[str] = []
        for line in killed.stdout:
            seen.append(line)
            if KILL_POINTS[kill_during](line):
                break
        else:
            pytest.fail(f"worker a ended before its {kill_during}:\n{''.join(seen)[-3000:]}")
        killed.kill()  # SIGKILL: no clean-up of any kind
        killed.wait()
        # A crawl child outlives its killed parent this long, holding that source's lock.
        time.sleep(ORPHAN_POLL_S + ORPHAN_GRACE_S + 1)
        other_out = _finish(other)
        again_out = _finish(_worker("forward", host["a"]))  # host a comes back

    # Both hosts crawled, and neither left anything in the queue, an outbox or an inbox file.
    assert "crawled demo-" in other_out and any(line.startswith("crawl process pid=") for line in seen)
    assert queued(state_url) == 0
    engine = sa.create_engine(driver_url(state_url))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM outbox")).scalar() == 0
        sent = dict(
            conn.execute(sa.text("SELECT message_id, state FROM stories WHERE rule = :r"), {"r": RULE}).all()
        )
    engine.dispose()
    for name in ("a", "b"):
        assert not list((tmp_path / name / "inbox").glob("*.jsonl*"))

    # Every article of the site is in the index, once.
    client = es_client(es_settings)
    alias = articles_alias(es_settings.model_copy(update={"index_prefix": prefix}))
    client.indices.refresh(index=alias)
    hits = client.search(index=alias, size=100, source=["canonical_url"])["hits"]["hits"]
    urls = [hit["_source"]["canonical_url"] for hit in hits]
    assert len(urls) == len(set(urls)) == DEMO_ARTICLES, sorted(urls)
    assert client.count(index=alias)["count"] == DEMO_ARTICLES

    # Every story the rule matched was mailed, once: one mail per story, no Message-ID twice.
    assert sent and set(sent.values()) == {"sent"}, sent
    received = [mail.message["Message-ID"] for mail in sink.messages]
    assert len(received) == len(set(received)) == len(sent), (received, sent)
    assert set(received) == set(sent)
    assert "alerts:" in again_out
