"""Alert latency: from a feed item appearing to its alert email arriving.

Serves a copy of the offline demo site, runs a recording SMTP server, and runs the real
main job (``newsmon run --feeds-only``, as cron or Airflow would) as a subprocess against
a local Elasticsearch node. A baseline run first takes in the demo articles (and mails
their alerts). Then, for each bench article: the page is written and its item put on top
of the RSS feed (time of publication), the job runs at once, and the latency is the time
until the SMTP server accepted the email with its title. A scheduled deployment adds up
to one schedule interval of waiting on top of this.

    .venv/bin/python bench/alert_latency.py [--repeat 3] [--es-url http://127.0.0.1:9200] [--json]

Without ``--es-url`` a node is started on a free port with its data in a temporary folder
(and stopped at the end); with it, an existing node is used under a throw-away index prefix.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

# The SMTP sink is a test helper (tests/helpers), not part of the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers.smtpsink import SmtpSink

from newsmon.crawlers.demo_server import DEMO_ROOT, DEMO_SOURCES, serve_demo
from newsmon.index.localnode import launcher as esnode
from newsmon.index.localnode.launcher import free_port
from newsmon.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT_S = 600
MAIL_WAIT_S = 30.0

# Distinct stories (so none is a near-duplicate of a demo article or of each other), each
# an export-control action the NLP alert decision should flag.
BENCH_ARTICLES = [
    (
        "네덜란드 정부, ASML 노광장비 대중국 수출 허가 취소…반도체 장비 통제 확대",
        [
            "네덜란드 정부가 ASML의 심자외선(DUV) 노광장비 일부에 대한 대중국 수출 허가를 취소했다고 밝혔다.",
            "네덜란드 대외무역부는 국가안보를 이유로 수출 통제 대상 품목을 확대하는 규정을 함께 공고했다.",
            "이번 조치는 미국 상무부의 반도체 장비 수출통제 강화에 보조를 맞춘 것으로 풀이된다.",
            "국내 장비 업계는 중국 고객사의 발주 변화와 우회 수출 단속 강화를 예의주시하고 있다.",
        ],
    ),
    (
        "중국 상무부, 희토류 가공기술 수출금지 목록에 추가…배터리 업계 비상",
        [
            "중국 상무부가 희토류 추출·분리 기술을 수출금지 기술 목록에 추가한다고 발표했다.",
            "상무부는 국가안보와 이익을 지키기 위한 수출 통제 조치라며 즉시 시행한다고 밝혔다.",
            "희토류 영구자석 소재를 중국에서 들여오는 국내 배터리·모터 업계는 공급망 점검에 나섰다.",
            "정부는 비축 물량을 늘리고 호주·베트남 등으로 수입처를 다변화하는 방안을 검토하고 있다.",
        ],
    ),
    (
        "미 법무부, AI 가속기 밀수 조직 기소…수출통제 위반 형사처벌 첫 사례",
        [
            "미국 법무부가 고성능 AI 가속기를 제3국을 거쳐 중국으로 밀반출한 조직을 "
            "수출통제 위반 혐의로 기소했다.",
            "상무부 산업안보국(BIS)은 관련 업체 세 곳을 우려거래자 목록(Entity List)에 올렸다.",
            "당국은 허가 없이 수출된 가속기가 수천 개에 이른다고 밝혔다.",
            "업계에서는 최종사용자 확인 의무가 한층 엄격해질 것이라는 전망이 나온다.",
        ],
    ),
]


@dataclass
class Sample:
    title: str
    run_s: float  # wall time of the pipeline run that picked the item up
    latency_s: float  # publication -> email accepted by the SMTP server


class BenchSite:
    """A writable copy of the demo site; ``publish`` adds an article and its feed item."""

    def __init__(self, root: Path) -> None:
        shutil.copytree(DEMO_ROOT, root)
        self.root = root
        self._next = 9001

    def publish(self, title: str, paragraphs: list[str]) -> None:
        number, self._next = self._next, self._next + 1
        now = datetime.now(UTC)
        path = f"/ko/news/{number}.html"
        body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
        page = (
            f'<!DOCTYPE html><html lang="ko"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<meta property="og:title" content="{html.escape(title)}">'
            f'<meta property="article:published_time" content="{now.isoformat()}">'
            f'<link rel="canonical" href="{path}"></head><body><main>'
            f'<h1 class="headline">{html.escape(title)}</h1>'
            f'<article class="article-body">{body}</article></main></body></html>'
        )
        item = (
            f"<item><title>{html.escape(title)}</title><link>{{base}}{path}</link>"
            f'<guid isPermaLink="false">bench-{number}</guid>'
            f"<description>{html.escape(paragraphs[0])}</description>"
            f"<pubDate>{format_datetime(now)}</pubDate></item>"
        )
        # The page first, then the feed: the item must never point at a missing page.
        (self.root / path.lstrip("/")).write_text(page, encoding="utf-8")
        feed = self.root / "ko" / "rss.xml"
        text = feed.read_text(encoding="utf-8")
        feed.write_text(text.replace("<item>", item + "\n  <item>", 1), encoding="utf-8")


@contextmanager
def elasticsearch(settings: Settings, reuse: bool) -> Iterator[None]:
    if reuse:
        yield
        return
    esnode.start(settings)
    try:
        yield
    finally:
        esnode.stop(settings)


def run_pipeline(env: dict[str, str], sources: Path) -> float:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "newsmon.cli", "run", "--feeds-only", "--sources", str(sources)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    if proc.returncode != 0:
        raise SystemExit(f"newsmon run failed ({proc.returncode}): {(proc.stderr or proc.stdout)[-2000:]}")
    return time.monotonic() - started


def bench(repeat: int, es_url: str | None) -> list[Sample]:
    with tempfile.TemporaryDirectory(prefix="newsmon-latency-") as tmp, SmtpSink() as sink:
        work = Path(tmp)
        settings = load_settings(
            es_url=es_url or f"http://127.0.0.1:{free_port()}",
            data_dir=work / "var",
            index_prefix=f"bench-{uuid.uuid4().hex[:8]}",
            alert_to=["bench@example.org"],
            **sink.settings(),
        )
        site = BenchSite(work / "site")
        with serve_demo(root=site.root) as server, elasticsearch(settings, reuse=es_url is not None):
            sources = work / "sources.yaml"
            sources.write_text(DEMO_SOURCES.read_text(encoding="utf-8").replace("{base}", server.url))
            env = os.environ | {
                "NEWSMON_ES_URL": settings.es_url,
                "NEWSMON_DATA_DIR": str(settings.data_dir),
                "NEWSMON_INDEX_PREFIX": settings.index_prefix,
                "NEWSMON_SMTP_HOST": settings.smtp_host,
                "NEWSMON_SMTP_PORT": str(settings.smtp_port),
                "NEWSMON_SMTP_TLS": "none",
                "NEWSMON_ALERT_TO": ",".join(settings.alert_to),
            }
            baseline = run_pipeline(env, sources)
            print(f"baseline run: {baseline:.1f}s, {len(sink.messages)} alert emails for the demo articles")
            samples = []
            for title, paragraphs in BENCH_ARTICLES[:repeat]:
                seen = len(sink.messages)
                published = time.time()
                site.publish(title, paragraphs)
                run_s = run_pipeline(env, sources)
                mails = sink.wait_for(seen + 1, timeout=MAIL_WAIT_S)
                mail = next((m for m in mails[seen:] if title in str(m.message["Subject"])), None)
                if mail is None:
                    raise SystemExit(
                        f"no alert email for {title!r} (the NLP did not flag it, or it was clustered)"
                    )
                samples.append(Sample(title, round(run_s, 2), round(mail.received_at - published, 2)))
                print(f"{samples[-1].latency_s:6.1f}s  (run {run_s:.1f}s)  {title}")
        return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, choices=range(1, len(BENCH_ARTICLES) + 1))
    parser.add_argument("--es-url", help="use this running node instead of starting one")
    parser.add_argument("--json", action="store_true", help="print the samples as JSON at the end")
    args = parser.parse_args()
    samples = bench(args.repeat, args.es_url)
    latencies = [s.latency_s for s in samples]
    print(
        f"latency: median {statistics.median(latencies):.1f}s, max {max(latencies):.1f}s over {len(samples)}"
    )
    if args.json:
        print(json.dumps([asdict(s) for s in samples], ensure_ascii=False))


if __name__ == "__main__":
    main()
