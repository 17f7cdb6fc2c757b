"""Event stories: every report of one real-world action, in any outlet and language, is one story.

An arriving article is scored against each **recent** story (last report within ``window_days``)
by a logistic pair model averaged over the story's members ("average linkage" in logit space):

- the headline and lead embeddings of the signal encoder (nlp.encoder), which map a Korean, a
  Chinese and an English report of one action close together; the cross-language part of each
  similarity has its own weight, since cross-language similarities run lower;
- the share of the article's canonical entities (language-independent gazetteer ids), numbers
  (``80`` entities, ``140`` firms, ``50%``) and keywords that the story's members also carry;
- how far the article is from the story in days, and the share of members in another language.

Every feature is linear in the member it is computed against, so the mean over a story's members
is computed exactly from the story's running sums (per-language embedding sums, entity, number
and keyword counts, the sum of days): a story costs the same to score whatever its size, and the
active stories form a small matrix. The article joins the best story whose mean logit reaches the
threshold, else it starts a story of its own. A wire copy (the MinHash cluster of nlp.cluster)
joins its original's story whatever the score.

The weights, threshold and window are fitted and chosen by ``newsmon signal stories-train`` on
the signal corpus's training split and shipped in nlp/models/stories.json.

The story id is the article id of its first report. With a state directory the active stories
and the article -> story map are saved there (one .npz, no pickle), so ids are stable across runs
and re-analysing a known article returns its recorded story.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from newsmon.errors import NewsmonError
from newsmon.nlp.encoder import DIMENSIONS, TITLE_DIMENSIONS, lead_of

MODEL_FILE = Path(__file__).resolve().parent / "models" / "stories.json"
FEATURES = (
    "title",  # headline cosine
    "lead",  # lead cosine
    "title_cross",  # the headline cosine again, for a member in another language only
    "lead_cross",
    "entities",  # share of the article's entities the member has too
    "no_entities",  # the article has none (the share above says nothing then)
    "numbers",
    "no_numbers",
    "keywords",
    "days",  # days from the member to the article, over the window
    "cross",  # the member is in another language
)
# Stories scored at once stay within the window; this bounds the active set under any flood.
MAX_ACTIVE = 20_000
# The article -> story map kept for re-analysis (like nlp.cluster's MAX_DOCS).
MAX_DOCS = 50_000
STATE_VERSION = 1
DAY_S = 86_400.0
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def numbers_of(title: str, text: str) -> set[str]:
    """Numbers of two or more digits in the headline and lead: counts, amounts, percentages and
    dates are written in digits in all three languages, and tell apart successive actions."""
    found = (n.replace(",", "") for n in _NUMBER.findall(f"{title} {lead_of(text)}"))
    return {n for n in found if len(n) >= 2}


@dataclass(frozen=True)
class StoryModel:
    weights: np.ndarray  # (len(FEATURES),)
    bias: float
    threshold: float  # on the mean logit
    window_days: float
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path = MODEL_FILE) -> StoryModel:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            weights = np.array([raw["weights"][name] for name in FEATURES], dtype=np.float64)
            return cls(weights, float(raw["bias"]), float(raw["threshold"]), float(raw["window_days"]), raw)
        except (OSError, KeyError, ValueError) as exc:
            raise NewsmonError(f"story model {path} is unreadable ({exc})") from None

    def save(self, path: Path = MODEL_FILE) -> None:
        raw = {
            **self.meta,
            "weights": {name: round(float(w), 5) for name, w in zip(FEATURES, self.weights, strict=True)},
            "bias": round(self.bias, 5),
            "threshold": round(self.threshold, 4),
            "window_days": self.window_days,
        }
        path.write_text(json.dumps(raw, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class Report:
    """What the story index needs of one analysed article."""

    doc_id: str
    lang: str
    day: float  # days since the epoch, fractional
    embedding: np.ndarray  # (DIMENSIONS,): headline then lead, each unit length
    entities: frozenset[str]
    numbers: frozenset[str]
    keywords: frozenset[str]

    @staticmethod
    def day_of(when: datetime) -> float:
        return when.timestamp() / DAY_S


@dataclass
class _Story:
    """Running sums over a story's members; ``rows`` maps a language to its row in the matrices."""

    story_id: str
    first: float
    last: float
    size: int = 0
    day_sum: float = 0.0
    langs: Counter[str] = field(default_factory=Counter)
    entities: Counter[str] = field(default_factory=Counter)
    numbers: Counter[str] = field(default_factory=Counter)
    keywords: Counter[str] = field(default_factory=Counter)
    rows: dict[str, int] = field(default_factory=dict)


def _share(found: frozenset[str], counts: Counter[str]) -> float:
    """Sum over members of |found ∩ member| / |found|, from the story's counts."""
    return sum(counts[x] for x in found) / len(found) if found else 0.0


def features(report: Report, story: _Story, sims: np.ndarray) -> np.ndarray:
    """The FEATURES row of ``report`` against ``story``, averaged over its members. ``sims``:
    (title, lead, title same-language, lead same-language) embedding dot products with the story's
    member sums (all members, then the members in the report's language)."""
    n = story.size
    title, lead, title_same, lead_same = sims
    row = np.array(
        [
            title,
            lead,
            title - title_same,
            lead - lead_same,
            _share(report.entities, story.entities),
            0.0 if report.entities else n,
            _share(report.numbers, story.numbers),
            0.0 if report.numbers else n,
            _share(report.keywords, story.keywords),
            abs(n * report.day - story.day_sum),
            n - story.langs[report.lang],
        ]
    )
    return row / n


class EventStories:
    """Assigns story ids; use as a context manager (or call save) to persist the state."""

    def __init__(
        self,
        state_dir: Path | None = None,
        model: StoryModel | None = None,
        max_active: int = MAX_ACTIVE,
        max_docs: int = MAX_DOCS,
    ) -> None:
        self.state_dir = state_dir
        self.model = model or StoryModel.load()
        self.max_active = max_active
        self.max_docs = max_docs
        self._stories: dict[str, _Story] = {}
        # One row per (story, language): that language's members' embedding sums.
        self._matrix = np.zeros((0, DIMENSIONS), dtype=np.float32)
        self._free: list[int] = []  # rows not in use (expired stories'), reused
        self._docs: OrderedDict[str, str] = OrderedDict()  # article id -> story id
        self._newest = float("-inf")
        if state_dir is not None:
            self._load(state_dir)

    def __len__(self) -> int:
        return len(self._stories)

    def story_of(self, doc_id: str) -> str | None:
        return self._docs.get(doc_id)

    def assign(self, report: Report, copy_of: str | None = None) -> str:
        """The story of ``report``; ``copy_of``: the article it is a wire copy of, if any."""
        known = self._docs.get(report.doc_id)
        if known is not None:
            return known
        original = self._docs.get(copy_of) if copy_of else None
        story = self._stories.get(original) if original else None
        if story is None:
            story = self._best(report)
        if story is None:
            story = _Story(report.doc_id, report.day, report.day)
            self._stories[story.story_id] = story
        self._add(story, report)
        return story.story_id

    def scores(self, report: Report) -> dict[str, float]:
        """The mean logit of ``report`` against each recent story (for evaluation and tests)."""
        candidates = self._candidates(report)
        if not candidates:
            return {}
        sims = self._similarities(report, candidates)
        rows = np.array([features(report, s, sims[i]) for i, s in enumerate(candidates)])
        logits = rows @ self.model.weights + self.model.bias
        return {s.story_id: float(v) for s, v in zip(candidates, logits, strict=True)}

    def _best(self, report: Report) -> _Story | None:
        scored = self.scores(report)
        if not scored:
            return None
        best = max(scored, key=lambda k: scored[k])
        return self._stories[best] if scored[best] >= self.model.threshold else None

    def _candidates(self, report: Report) -> list[_Story]:
        window = self.model.window_days
        return [s for s in self._stories.values() if s.first - window <= report.day <= s.last + window]

    def _similarities(self, report: Report, candidates: list[_Story]) -> np.ndarray:
        """(candidates, 4): title, lead, then both over the members in the report's language."""
        rows = [row for s in candidates for row in s.rows.values()]
        owner = np.array([i for i, s in enumerate(candidates) for _ in s.rows])
        same = np.array([lang == report.lang for s in candidates for lang in s.rows])
        block = self._matrix[rows]
        parts = np.column_stack(
            [
                block[:, :TITLE_DIMENSIONS] @ report.embedding[:TITLE_DIMENSIONS],
                block[:, TITLE_DIMENSIONS:] @ report.embedding[TITLE_DIMENSIONS:],
            ]
        )
        out = np.zeros((len(candidates), 4))
        for j in range(2):
            out[:, j] = np.bincount(owner, weights=parts[:, j], minlength=len(candidates))
            out[:, j + 2] = np.bincount(owner, weights=parts[:, j] * same, minlength=len(candidates))
        return out

    def _row(self, story: _Story, lang: str) -> int:
        if lang not in story.rows:
            if not self._free:  # grow by doubling: amortised O(1) per new row
                start = len(self._matrix)
                grow = max(16, start)
                self._matrix = np.vstack([self._matrix, np.zeros((grow, DIMENSIONS), np.float32)])
                self._free = list(range(start + grow - 1, start - 1, -1))
            row = self._free.pop()
            self._matrix[row] = 0.0
            story.rows[lang] = row
        return story.rows[lang]

    def _add(self, story: _Story, report: Report) -> None:
        row = self._row(story, report.lang)  # first: it may grow (replace) the matrix
        self._matrix[row] += report.embedding
        story.size += 1
        story.day_sum += report.day
        story.first, story.last = min(story.first, report.day), max(story.last, report.day)
        story.langs[report.lang] += 1
        story.entities.update(report.entities)
        story.numbers.update(report.numbers)
        story.keywords.update(report.keywords)
        self._docs[report.doc_id] = story.story_id
        while len(self._docs) > self.max_docs:
            self._docs.popitem(last=False)
        self._newest = max(self._newest, report.day)
        self._expire()

    def _expire(self) -> None:
        """Drop stories no new report can join any more (past the window behind the newest
        report), and the oldest beyond ``max_active``."""
        horizon = self._newest - 2 * self.model.window_days
        ended = [s for s in self._stories.values() if s.last < horizon]
        if len(self._stories) - len(ended) > self.max_active:
            alive = sorted((s for s in self._stories.values() if s.last >= horizon), key=lambda s: s.last)
            ended += alive[: len(alive) - self.max_active]
        for story in ended:
            self._free += story.rows.values()
            del self._stories[story.story_id]

    # --- persistence: one .npz (no pickle), replaced atomically

    def _path(self, state_dir: Path) -> Path:
        return state_dir / "stories.npz"

    def _load(self, state_dir: Path) -> None:
        path = self._path(state_dir)
        if not path.is_file():
            return
        try:
            with np.load(path, allow_pickle=False) as state:
                if int(state["version"]) != STATE_VERSION or state["matrix"].shape[1:] != (DIMENSIONS,):
                    raise ValueError("another format")
                meta = json.loads(str(state["meta"]))
                matrix = state["matrix"].astype(np.float32)
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise NewsmonError(
                f"story state {path} is unreadable ({exc}); move it away to start afresh"
            ) from None
        self._docs = OrderedDict(meta["docs"])
        self._newest = meta["newest"]
        for raw in meta["stories"]:
            story = _Story(
                raw["id"],
                raw["first"],
                raw["last"],
                raw["size"],
                raw["day_sum"],
                *(Counter(raw[k]) for k in ("langs", "entities", "numbers", "keywords")),
            )
            story.rows = dict(zip(raw["langs_rows"], raw["rows"], strict=True))
            self._stories[story.story_id] = story
        self._matrix = matrix

    def save(self) -> None:
        if self.state_dir is None:
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        rows: list[int] = []
        stories = []
        for s in self._stories.values():
            stories.append(
                {
                    "id": s.story_id,
                    "first": s.first,
                    "last": s.last,
                    "size": s.size,
                    "day_sum": s.day_sum,
                    "langs": s.langs,
                    "entities": s.entities,
                    "numbers": s.numbers,
                    "keywords": s.keywords,
                    "langs_rows": list(s.rows),
                    "rows": list(range(len(rows), len(rows) + len(s.rows))),
                }
            )
            rows += s.rows.values()
        meta = {"docs": list(self._docs.items()), "newest": self._newest, "stories": stories}
        path = self._path(self.state_dir)
        tmp = path.with_name("stories.tmp.npz")
        with tmp.open("wb") as fh:
            np.savez(
                fh,
                version=np.array(STATE_VERSION),
                meta=np.array(json.dumps(meta, ensure_ascii=False)),
                matrix=self._matrix[rows].reshape(-1, DIMENSIONS),
            )
        os.replace(tmp, path)  # a crash mid-write leaves the previous state whole

    def __enter__(self) -> EventStories:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.save()


def pair_features(later: Report, earlier: Report) -> np.ndarray:
    """The FEATURES row of ``later`` against a story of ``earlier`` alone: what the pair model
    is fitted on, computed by the same code that scores stories."""
    story = _Story(earlier.doc_id, earlier.day, earlier.day)
    story.size, story.day_sum = 1, earlier.day
    story.langs[earlier.lang] = 1
    story.entities.update(earlier.entities)
    story.numbers.update(earlier.numbers)
    story.keywords.update(earlier.keywords)
    title = float(later.embedding[:TITLE_DIMENSIONS] @ earlier.embedding[:TITLE_DIMENSIONS])
    lead = float(later.embedding[TITLE_DIMENSIONS:] @ earlier.embedding[TITLE_DIMENSIONS:])
    same = later.lang == earlier.lang
    return features(later, story, np.array([title, lead, title * same, lead * same]))


def arrival_order(reports: Iterable[Report]) -> list[Report]:
    return sorted(reports, key=lambda r: (r.day, r.doc_id))


def assign_all(stories: EventStories, reports: Sequence[Report]) -> dict[str, str]:
    """Each report's story, the reports arriving in date order (evaluation, replays)."""
    return {r.doc_id: stories.assign(r) for r in arrival_order(reports)}


def report_of(
    doc_id: str,
    lang: str | None,
    when: datetime,
    embedding: np.ndarray,
    entities: Iterable[str],
    keywords: Iterable[str],
    title: str,
    text: str,
) -> Report:
    return Report(
        doc_id=doc_id,
        lang=lang or "",
        day=Report.day_of(when if when.tzinfo else when.replace(tzinfo=UTC)),
        embedding=np.asarray(embedding, dtype=np.float32),
        entities=frozenset(entities),
        numbers=frozenset(numbers_of(title, text)),
        keywords=frozenset(keywords),
    )
