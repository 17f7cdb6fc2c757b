"""One "host" of the two-host test (tests/test_two_hosts.py): a worker process with a data dir
of its own, configured like a production worker by NEWSMON_* variables only (the shared state
database, Elasticsearch, SMTP, the source registry).

It does what the daily DAG's tasks do, through the same app functions: a crawl per source (a
source that a crawl on the other host holds is left to it), then the inbox, then the alerts.
``python -m helpers.worker [forward|reverse]``: the order it takes the sources in.
"""

from __future__ import annotations

import sys

from newsmon.errors import NewsmonError
from newsmon.pipeline import crawl_to_inbox, index_inbox, load_sources, run_alert_rules
from newsmon.settings import get_settings


def say(line: str) -> None:
    print(line, flush=True)


def main(order: str) -> int:
    settings = get_settings()
    sources = load_sources(settings)
    if order == "reverse":
        sources.reverse()
    for source in sources:
        try:
            stats = crawl_to_inbox(settings, [source], progress=say)
        except NewsmonError as exc:
            say(f"crawl of {source.name} left to the other host: {exc}")
            continue
        say(f"crawled {source.name}: {stats.articles_new} new")
    processed = index_inbox(settings, progress=say)
    say(f"processed {processed.analyzed} articles in {processed.files} batches")
    alerts = run_alert_rules(settings, progress=say)
    say(f"alerts: {alerts}")
    say("worker done")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "forward"))
