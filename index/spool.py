"""Where articles go when they cannot be indexed now (spool) or ever (dead letters).

Spool files are JSON lines of ``Article`` under ``data_dir/spool``. Every file is held
under an exclusive ``flock`` by whoever uses it: the run that writes it, then the run that
replays it. So a file still being written is never replayed, two runs never replay the same
file, and the lock of a crashed run goes away with its process, freeing the file for the
next run (replaying twice would be harmless anyway: upserts are idempotent).
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from newsmon.layout import stamp
from newsmon.locks import try_lock
from newsmon.models import Article
from newsmon.settings import Settings


class DeadLetters:
    """Articles Elasticsearch rejected for good, one JSON line each with the reason."""

    def __init__(self, settings: Settings) -> None:
        self.dir = settings.layout.deadletter
        self._lock = threading.Lock()

    def path(self) -> Path:
        return self.dir / f"articles-{datetime.now(UTC):%Y%m%d}.jsonl"

    def add(
        self, reason: str, *, status: int | None = None, article: Article | None = None, raw: str = ""
    ) -> None:
        record: dict[str, Any] = {"time": datetime.now(UTC).isoformat(), "reason": reason, "status": status}
        if article is not None:
            record.update(id=article.id, url=article.url, article=article.model_dump(mode="json"))
        else:
            record["raw"] = raw
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            self.dir.mkdir(parents=True, exist_ok=True)
            with self.path().open("a", encoding="utf-8") as fh:
                fh.write(line)


class _Claim:
    """A spool file of an earlier run, locked by us until it is replayed and removed."""

    def __init__(self, path: Path, fh: IO[str]) -> None:
        self.path = path
        self._fh = fh

    def articles(self, dead: DeadLetters) -> Iterator[Article]:
        for line in self._fh:
            if not line.strip():
                continue
            try:
                yield Article.model_validate_json(line)
            except ValidationError as exc:  # e.g. a line cut short by a crash
                dead.add(f"unreadable spool line in {self.path.name}: {exc.errors()[0]['msg']}", raw=line)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        self.close()

    def close(self) -> None:
        self._fh.close()  # closing releases the lock


class Spool:
    """This run's spool file (created on the first article) and the claims on older ones."""

    def __init__(self, settings: Settings) -> None:
        self.dir = settings.layout.spool
        self.path = self.dir / f"{stamp()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self._out: IO[str] | None = None
        self._claims: list[_Claim] = []

    def add(self, articles: Iterable[Article]) -> int:
        if self._out is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._out = try_lock(self.path)  # a new, unique file: nobody else holds it
            assert self._out is not None
        n = 0
        for article in articles:
            self._out.write(article.model_dump_json() + "\n")
            n += 1
        self._out.flush()
        return n

    def claim(self) -> Iterator[_Claim]:
        """Older spool files nobody holds, oldest first, each locked as it is yielded."""
        for path in sorted(self.dir.glob("*.jsonl")) if self.dir.is_dir() else []:
            if path == self.path:
                continue
            fh = try_lock(path, create=False)
            if fh is None:
                continue  # replayed by another run just now, or held by a live one
            if os.fstat(fh.fileno()).st_nlink == 0:  # replayed and removed before we locked it
                fh.close()
                continue
            claim = _Claim(path, fh)
            self._claims.append(claim)
            yield claim

    def close(self) -> None:
        if self._out is not None:
            self._out.flush()
            os.fsync(self._out.fileno())
            self._out.close()
            self._out = None
        for claim in self._claims:
            claim.close()
        self._claims.clear()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
