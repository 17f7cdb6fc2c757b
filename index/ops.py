"""Low-level Elasticsearch operations shared by setup, indexing and re-processing:
calls retried with backoff, bulk requests read item by item, point-in-time paging."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from elasticsearch import ApiError, ConnectionError, ConnectionTimeout, Elasticsearch, SSLError

from newsmon.errors import NewsmonError
from newsmon.index.client import BULK_TIMEOUT_S

T = TypeVar("T")

# Statuses that mean "overloaded or briefly unavailable, try again later" rather than "this
# request is wrong": throttling, node restarts, shards relocating.
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
# A write block (disk flood stage, or setup copying the index to a new mapping version) and
# a missing alias (being switched) also pass: such documents are retried, then spooled.
TRANSIENT_ERROR_TYPES = frozenset({"cluster_block_exception", "index_not_found_exception"})
PIT_KEEP_ALIVE = "5m"


class ESUnavailable(NewsmonError):
    """Elasticsearch did not answer (or kept refusing) after every retry."""


def is_transient(exc: Exception) -> bool:
    if isinstance(exc, SSLError):  # a certificate problem will not fix itself
        return False
    if isinstance(exc, ConnectionError | ConnectionTimeout):
        return True
    return isinstance(exc, ApiError) and exc.meta.status in TRANSIENT_STATUS


@dataclass(frozen=True)
class Retry:
    """``attempts`` tries in all, sleeping ``backoff_s``, then twice that, ... between them."""

    attempts: int = 6
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0

    def pause(self, attempt: int) -> None:
        """Sleep before retry number ``attempt`` (1 = the first retry)."""
        time.sleep(min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s))

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        for attempt in range(self.attempts):
            if attempt:
                self.pause(attempt)
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                last = exc
        raise ESUnavailable(f"Elasticsearch unavailable after {self.attempts} attempts: {last}") from last


@dataclass(frozen=True)
class BulkItem:
    """The outcome of one action in a bulk request."""

    status: int
    result: str = ""  # "created", "updated", ...
    index: str = ""
    error: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status < 300

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def transient(self) -> bool:
        etype = (self.error or {}).get("type", "")
        return self.status in TRANSIENT_STATUS or etype in TRANSIENT_ERROR_TYPES

    @property
    def reason(self) -> str:
        err = self.error or {}
        cause = err.get("caused_by") or {}
        text = f"{err.get('type', 'error')}: {err.get('reason', '')}"
        return text + (f" ({cause.get('type')}: {cause.get('reason')})" if cause else "")


def send_bulk(client: Elasticsearch, operations: Sequence[dict[str, Any]], retry: Retry) -> list[BulkItem]:
    """One bulk request (retried as a whole while ES is unavailable); one item per action."""
    resp = retry.call(
        client.options(request_timeout=BULK_TIMEOUT_S).bulk,
        operations=operations,
        filter_path="items.*.status,items.*.result,items.*._index,items.*.error",
    )
    items = []
    for entry in resp["items"]:
        (body,) = entry.values()
        items.append(
            BulkItem(body["status"], body.get("result", ""), body.get("_index", ""), body.get("error"))
        )
    return items


def iter_pages(
    client: Elasticsearch,
    index: str,
    query: dict[str, Any],
    retry: Retry,
    *,
    size: int = 500,
    source: bool | list[str] | dict[str, list[str]] = True,
    sort: list[Any] | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Every hit of ``query`` in pages, from one point-in-time snapshot (so writes made while
    paging neither hide nor repeat documents); hits carry ``_seq_no``/``_primary_term``."""
    # A point in time sees only refreshed segments, and an idle shard skips its periodic
    # refreshes: without this, documents written just before would be missing.
    retry.call(client.indices.refresh, index=index)
    pit = retry.call(client.open_point_in_time, index=index, keep_alive=PIT_KEEP_ALIVE)["id"]
    after: list[Any] | None = None
    try:
        while True:
            resp = retry.call(
                client.search,
                pit={"id": pit, "keep_alive": PIT_KEEP_ALIVE},
                query=query,
                size=size,
                sort=sort or ["_shard_doc"],  # a custom sort should end with _shard_doc (unique)
                search_after=after,
                seq_no_primary_term=True,
                source=source,
                track_total_hits=False,
            )
            pit = resp.get("pit_id", pit)
            hits = resp["hits"]["hits"]
            if not hits:
                return
            yield hits
            after = hits[-1]["sort"]
    finally:
        with contextlib.suppress(Exception):  # it expires by itself after PIT_KEEP_ALIVE anyway
            client.close_point_in_time(id=pit)
