"""``newsmon state import``: moving a data dir's embedded state into the shared database.

An app module: it reads the crawl stage's stores and the alert stage's ledger together.
"""

from __future__ import annotations

from newsmon.errors import NewsmonError
from newsmon.locks import file_lock, lock_at
from newsmon.pipeline import Progress
from newsmon.settings import Settings


def import_embedded_state(settings: Settings, progress: Progress | None = None) -> dict[str, int]:
    """Copy this data dir's embedded state into the shared database (``newsmon state import``):
    each source's crawl state, its undelivered outbox (the next crawl of the source delivers
    it), and the alert ledger, so a switch to NEWSMON_STATE_URL neither re-delivers what was
    crawled nor mails a story again. Rows the shared database has keep theirs; run it again
    and nothing doubles. Each store is locked on both sides while it is copied."""
    from newsmon.alerts.ledger import Ledger
    from newsmon.crawlers.store import ARTICLES, HTTP_CACHE, META, OUTBOX, SEEN, CrawlStore, stored_sources
    from newsmon.crawlers.store import source_lock as crawl_lock

    url = settings.state_url
    if url is None:
        raise NewsmonError("NEWSMON_STATE_URL is not set: there is no shared database to import into")
    say = progress or (lambda _line: None)
    counts = {"sources": 0, "seen": 0, "outbox": 0, "rules": 0, "stories": 0}
    data = settings.data_dir
    for name in stored_sources(data):
        with crawl_lock(data, name), crawl_lock(data, name, url):
            embedded, shared = (
                CrawlStore(settings.layout.source_state(name)),
                CrawlStore.open_shared(url, name),
            )
            try:
                rows = {table: embedded.rows(table) for table in (SEEN, ARTICLES, HTTP_CACHE, META, OUTBOX)}
                with shared.tx() as conn:
                    for table, table_rows in rows.items():
                        shared.add_rows(conn, table, table_rows)
                # A crash before this line copies the outbox again next time: re-delivered
                # articles are re-indexed in place (by id), and a story is mailed once.
                embedded.empty_outbox()
            finally:
                embedded.close()
                shared.close()
        counts["sources"] += 1
        counts["seen"] += len(rows[SEEN])
        counts["outbox"] += len(rows[OUTBOX])
        say(f"{name}: {len(rows[SEEN])} seen URLs, {len(rows[OUTBOX])} undelivered articles")
    ledger_file = settings.layout.alerts_ledger
    if ledger_file.exists():
        alerts_lock = settings.layout.alerts_run_lock
        with (
            file_lock(alerts_lock, busy="alerts: an alert run is going on"),
            file_lock(lock_at(alerts_lock, url, "alerts-run"), busy="alerts: an alert run is going on"),
        ):
            embedded_ledger, shared_ledger = Ledger.open(ledger_file), Ledger.open_shared(url)
            try:
                counts["rules"], counts["stories"] = shared_ledger.take(embedded_ledger)
            finally:
                embedded_ledger.close()
                shared_ledger.close()
        say(f"alert ledger: {counts['rules']} rule checkpoints, {counts['stories']} stories")
    return counts
