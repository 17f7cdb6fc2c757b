"""Event stories: every report of one real-world action, in any outlet and language, is one story.

An arriving article is scored against each **recent** story (last report within ``window_days``)
by a logistic pair model applied to the story as a whole (fitted on pairs of reports, where the
story is the earlier report):

- the cosines of the article's headline, lead and event embeddings to the story's centroid
  (each part's member sum, normalised): the signal encoder's embeddings (nlp.encoder) map a
  Korean, a Chinese and an English report of one action close together, and the event
  embedding, an e5 fine-tuned on the corpus's events, tells one action from the next; the
  part of each cosine that comes from members in other languages has its own weight, since
  cross-language similarities run lower. A centroid, not the mean of the members' cosines:
  the mean falls as a story gathers varied coverage, and a big story then turns away
  reports of its own event;
- the share of the article's canonical entities (language-independent gazetteer ids), numbers
  (``80`` entities, ``140`` firms, ``50%``) and keywords that the story's members carry, on
  average over its members;
- how far the article is from the story's mean day, on a log scale, and the share of members
  in another language.

All of it comes from the story's running sums (per-language embedding sums and the squared
length of each part's total, entity, number and keyword counts, the sum of days): a story
costs the same to score whatever its size, and the active stories form a small matrix. The
article joins the best story whose logit reaches the threshold, else it starts a story of its
own. A wire copy (the MinHash cluster of nlp.cluster) joins its original's story whatever the
score.

The weights, threshold and window are fitted and chosen by ``newsmon signal stories-train`` on
the signal corpus's training split and shipped in nlp/models/stories.json.

The story id is the article id of its first report. With a state directory the active stories
and the article -> story map are saved there (one .npz, no pickle), so ids are stable across runs
and re-analysing a known article returns its recorded story.
"""

from __future__ import annotations

import json
import re
from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from newsmon.errors import NewsmonError
from newsmon.nlp.encoder import DIMENSIONS, EVENT_DIMENSIONS, TITLE_DIMENSIONS, lead_of
from newsmon.nlp.statefile import load_state, save_state

MODEL_FILE = Path(__file__).resolve().parent / "models" / "stories.json"
# A report's vector: headline | lead | event, each part unit length (nlp.encoder).
STORY_DIMENSIONS = DIMENSIONS + EVENT_DIMENSIONS
PARTS = ((0, TITLE_DIMENSIONS), (TITLE_DIMENSIONS, DIMENSIONS), (DIMENSIONS, STORY_DIMENSIONS))
FEATURES = (
    "title",  # headline cosine to the story's centroid
    "lead",  # lead cosine to the centroid
    "title_cross",  # the part of the headline cosine from members in other languages
    "lead_cross",
    "entities",  # share of the article's entities a member has too, averaged over members
    "no_entities",  # the article has none (the share above says nothing then)
    "numbers",
    "no_numbers",
    "keywords",
    "days",  # log(1 + days between the article and the story's mean day)
    "cross",  # share of members in another language
    "event",  # event-embedding cosine to the centroid
    "event_cross",
)
# Stories scored at once stay within the window; this bounds the active set under any flood.
MAX_ACTIVE = 20_000
# The article -> story map kept for re-analysis (like nlp.cluster's MAX_DOCS).
MAX_DOCS = 50_000
STATE_VERSION = 2  # 2: the event embedding in the matrix
DAY_S = 86_400.0
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def _width(version: int) -> int:
    """The matrix width of a state file of ``version`` (1: before the event embedding)."""
    return DIMENSIONS if version == 1 else STORY_DIMENSIONS


def numbers_of(title: str, text: str) -> set[str]:
    """Numbers of two or more digits in the headline and lead: counts, amounts, percentages and
    dates are written in digits in all three languages, and tell apart successive actions."""
    found = (n.replace(",", "") for n in _NUMBER.findall(f"{title} {lead_of(text)}"))
    return {n for n in found if len(n) >= 2}


@dataclass(frozen=True)
class StoryModel:
    weights: np.ndarray  # (len(FEATURES),)
    bias: float
    threshold: float  # on the story logit
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
    embedding: np.ndarray  # (STORY_DIMENSIONS,): PARTS
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
    slot: int = -1

    def features_of(self, report: Report) -> list[tuple[str, frozenset[str], Counter[str]]]:
        """The report's entities, numbers and keywords beside the story's counts of them."""
        return [
            ("e", report.entities, self.entities),
            ("n", report.numbers, self.numbers),
            ("k", report.keywords, self.keywords),
        ]


def _share(found: frozenset[str], counts: Counter[str]) -> float:
    """Sum over members of |found ∩ member| / |found|, from the story's counts."""
    return sum(counts[x] for x in found) / len(found) if found else 0.0


def _columns(
    report: Report,
    cosines: np.ndarray,
    same_cosines: np.ndarray,
    shares: tuple[Any, Any, Any],
    mean_day: Any,
    other_language: Any,
) -> list[Any]:
    """The FEATURES values of ``report`` against one story (scalars) or many (arrays, one value
    per story): ``cosines``, the (title, lead, event) cosines to the centroid, and
    ``same_cosines``, their parts from members in the report's language; ``shares``, its
    entities', numbers' and keywords' shares averaged over the members; the members' mean day;
    the share of members in another language."""
    (title, lead, event), (title_same, lead_same, event_same) = cosines, same_cosines
    entities, numbers, keywords = shares
    blank = np.zeros_like(np.asarray(mean_day, dtype=np.float64))
    return [
        title,
        lead,
        title - title_same,
        lead - lead_same,
        entities,
        blank + (not report.entities),
        numbers,
        blank + (not report.numbers),
        keywords,
        np.log1p(np.abs(report.day - mean_day)),
        other_language,
        event,
        event - event_same,
    ]


def features(report: Report, story: _Story, cosines: np.ndarray) -> np.ndarray:
    """The FEATURES row of ``report`` against ``story``. ``cosines``: the (title, lead, event)
    cosines to the story's centroid, then the parts of them from its members in the report's
    language (the dot products with that language's member sum over the centroid's length)."""
    n = story.size
    shares = tuple(
        _share(found, counts) / n
        for found, counts in (
            (report.entities, story.entities),
            (report.numbers, story.numbers),
            (report.keywords, story.keywords),
        )
    )
    other_language = (n - story.langs[report.lang]) / n
    row = _columns(report, cosines[:3], cosines[3:], shares, story.day_sum / n, other_language)
    return np.array(row, dtype=np.float64)


class EventStories:
    """Assigns story ids; use as a context manager (or call save) to persist the state.

    The active stories live in flat arrays, so scoring a report is a few vector operations over
    them: per story slot its first and last day, size, day sum and the squared length of each
    embedding part's member sum; one matrix row per (story, language) with that language's
    embedding sum; postings from each entity, number and keyword
    to the slots whose members carry it, with counts.
    """

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
        self._slot_story: list[_Story | None] = []
        self._first = np.zeros(0)
        self._last = np.zeros(0)
        self._size = np.zeros(0)
        self._day_sum = np.zeros(0)
        self._norm2 = np.zeros((0, len(PARTS)))  # per slot and part: |member sum|^2
        self._live = np.zeros(0, dtype=bool)
        self._free_slots: list[int] = []
        self._matrix = np.zeros((0, STORY_DIMENSIONS), dtype=np.float32)
        self._row_slot = np.zeros(0, dtype=np.int64)  # -1: a free row
        self._row_lang = np.zeros(0, dtype=object)
        self._row_count = np.zeros(0)  # members in the row's language
        self._free_rows: list[int] = []
        self._postings: dict[str, Counter[int]] = {}
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
            story = self._new_story(report.doc_id, report.day)
        self._add(story, report)
        self._remember(report.doc_id, story.story_id)
        self._newest = max(self._newest, report.day)
        self._expire()
        return story.story_id

    def scores(self, report: Report) -> dict[str, float]:
        """The logit of ``report`` against each recent story (for evaluation and tests)."""
        slots, logits = self._score(report)
        return {self._story_at(int(k)).story_id: float(v) for k, v in zip(slots, logits, strict=True)}

    def _story_at(self, slot: int) -> _Story:
        story = self._slot_story[slot]
        assert story is not None
        return story

    def _best(self, report: Report) -> _Story | None:
        slots, logits = self._score(report)
        if not len(slots):
            return None
        best = int(np.argmax(logits))
        return self._story_at(int(slots[best])) if logits[best] >= self.model.threshold else None

    def _score(self, report: Report) -> tuple[np.ndarray, np.ndarray]:
        """The candidate slots (stories within the window) and their logits: ``features`` for
        all of them at once."""
        window = self.model.window_days
        near = self._live & (self._first - window <= report.day) & (report.day <= self._last + window)
        slots = np.flatnonzero(near)
        if not len(slots):
            return slots, np.zeros(0)
        rows = np.flatnonzero((self._row_slot >= 0) & near[np.maximum(self._row_slot, 0)])
        owner = self._row_slot[rows]
        same = (self._row_lang[rows] == report.lang).astype(np.float64)
        # One pass over the whole (contiguous) matrix, then picked: cheaper than copying the
        # candidate rows out of it. A column per part: headline, lead, event.
        parts = np.zeros((STORY_DIMENSIONS, len(PARTS)), dtype=np.float32)
        for column, (start, end) in enumerate(PARTS):
            parts[start:end, column] = report.embedding[start:end]
        dots = (self._matrix @ parts)[rows].astype(np.float64)
        width = len(self._live)

        def per_slot(weights: np.ndarray) -> np.ndarray:
            return np.bincount(owner, weights=weights, minlength=width)[slots]

        size, day_sum = self._size[slots], self._day_sum[slots]
        lengths = np.sqrt(np.maximum(self._norm2[slots], 1e-12))  # of each part's member sum
        cosines = np.column_stack([per_slot(dots[:, j]) for j in range(len(PARTS))]) / lengths
        same_cosines = np.column_stack([per_slot(dots[:, j] * same) for j in range(len(PARTS))]) / lengths
        shares = tuple(
            self._shares(kind, found, slots, width) / size
            for kind, found in (("e", report.entities), ("n", report.numbers), ("k", report.keywords))
        )
        other_language = (size - per_slot(self._row_count[rows] * same)) / size
        columns = _columns(report, cosines.T, same_cosines.T, shares, day_sum / size, other_language)
        return slots, np.column_stack(columns) @ self.model.weights + self.model.bias

    def _shares(self, kind: str, found: frozenset[str], slots: np.ndarray, width: int) -> np.ndarray:
        """Per slot: sum over its members of |found ∩ member| / |found| (``_share``, from postings)."""
        total = np.zeros(width)
        for value in found:
            for slot, count in self._postings.get(f"{kind}:{value}", {}).items():
                total[slot] += count
        return total[slots] / len(found) if found else total[slots]

    # --- the arrays

    def _new_story(self, story_id: str, day: float) -> _Story:
        if not self._free_slots:  # grow by doubling: amortised O(1)
            start = len(self._live)
            grow = max(16, start)
            self._first = np.concatenate([self._first, np.zeros(grow)])
            self._last = np.concatenate([self._last, np.zeros(grow)])
            self._size = np.concatenate([self._size, np.zeros(grow)])
            self._day_sum = np.concatenate([self._day_sum, np.zeros(grow)])
            self._norm2 = np.vstack([self._norm2, np.zeros((grow, len(PARTS)))])
            self._live = np.concatenate([self._live, np.zeros(grow, dtype=bool)])
            self._slot_story += [None] * grow
            self._free_slots = list(range(start + grow - 1, start - 1, -1))
        slot = self._free_slots.pop()
        story = _Story(story_id, day, day, slot=slot)
        self._slot_story[slot] = story
        self._first[slot], self._last[slot], self._live[slot] = day, day, True
        self._size[slot] = self._day_sum[slot] = 0.0
        self._norm2[slot] = 0.0
        self._stories[story_id] = story
        return story

    def _row(self, story: _Story, lang: str) -> int:
        if lang not in story.rows:
            if not self._free_rows:
                start = len(self._matrix)
                grow = max(16, start)
                self._matrix = np.vstack([self._matrix, np.zeros((grow, STORY_DIMENSIONS), np.float32)])
                self._row_slot = np.concatenate([self._row_slot, np.full(grow, -1)])
                self._row_lang = np.concatenate([self._row_lang, np.full(grow, "", dtype=object)])
                self._row_count = np.concatenate([self._row_count, np.zeros(grow)])
                self._free_rows = list(range(start + grow - 1, start - 1, -1))
            row = self._free_rows.pop()
            self._matrix[row] = 0.0
            self._row_slot[row], self._row_lang[row], self._row_count[row] = story.slot, lang, 0.0
            story.rows[lang] = row
        return story.rows[lang]

    def _add(self, story: _Story, report: Report) -> None:
        row = self._row(story, report.lang)  # first: it may grow (replace) the matrix
        self._matrix[row] += report.embedding
        self._update_norms(story)
        self._row_count[row] += 1
        story.size += 1
        story.day_sum += report.day
        self._size[story.slot], self._day_sum[story.slot] = story.size, story.day_sum
        story.first, story.last = min(story.first, report.day), max(story.last, report.day)
        self._first[story.slot], self._last[story.slot] = story.first, story.last
        story.langs[report.lang] += 1
        for kind, values, counts in story.features_of(report):
            counts.update(values)
            for value in values:
                self._postings.setdefault(f"{kind}:{value}", Counter())[story.slot] += 1

    def _update_norms(self, story: _Story) -> None:
        """The squared length of each part of the story's member sum (its language rows added)."""
        total = self._matrix[list(story.rows.values())].astype(np.float64).sum(axis=0)
        self._norm2[story.slot] = [float(total[a:b] @ total[a:b]) for a, b in PARTS]

    def _remember(self, doc_id: str, story_id: str) -> None:
        self._docs[doc_id] = story_id
        while len(self._docs) > self.max_docs:
            self._docs.popitem(last=False)

    def _expire(self) -> None:
        """Drop stories no new report can join any more (past the window behind the newest
        report), and the oldest beyond ``max_active``."""
        horizon = self._newest - 2 * self.model.window_days
        ended = np.flatnonzero(self._live & (self._last < horizon)).tolist()
        alive = np.flatnonzero(self._live & (self._last >= horizon))
        if len(alive) > self.max_active:
            ended += alive[
                np.argsort(self._last[alive], kind="stable")[: len(alive) - self.max_active]
            ].tolist()
        for slot in ended:
            self._drop(self._story_at(slot))

    def _drop(self, story: _Story) -> None:
        for kind, counts in (("e", story.entities), ("n", story.numbers), ("k", story.keywords)):
            for value in counts:
                posting = self._postings[f"{kind}:{value}"]
                del posting[story.slot]
                if not posting:
                    del self._postings[f"{kind}:{value}"]
        for row in story.rows.values():
            self._row_slot[row] = -1
            self._free_rows.append(row)
        self._live[story.slot] = False
        self._slot_story[story.slot] = None
        self._free_slots.append(story.slot)
        del self._stories[story.story_id]

    # --- persistence: one .npz (no pickle), replaced atomically

    def _path(self, state_dir: Path) -> Path:
        return state_dir / "stories.npz"

    def _load(self, state_dir: Path) -> None:
        state = load_state(
            self._path(state_dir),
            STATE_VERSION,
            "story state",
            lambda arrays: arrays["matrix"].shape[1:] == (_width(int(arrays["version"])),),
            older=(1,),
        )
        if state is None:
            return
        meta = json.loads(str(state["meta"]))
        matrix = state["matrix"].astype(np.float32)
        if matrix.shape[1] < STORY_DIMENSIONS:
            # Version 1 had no event part: its stories keep their ids and members and score 0 on
            # the event features until they leave the window.
            matrix = np.pad(matrix, ((0, 0), (0, STORY_DIMENSIONS - matrix.shape[1])))
        self._docs = OrderedDict(meta["docs"])
        self._newest = meta["newest"]
        for raw in meta["stories"]:
            story = self._new_story(raw["id"], raw["first"])
            story.last, story.size, story.day_sum = raw["last"], raw["size"], raw["day_sum"]
            self._last[story.slot] = story.last
            self._size[story.slot], self._day_sum[story.slot] = story.size, story.day_sum
            story.langs.update(raw["langs"])
            for kind, name, counts in (
                ("e", "entities", story.entities),
                ("n", "numbers", story.numbers),
                ("k", "keywords", story.keywords),
            ):
                counts.update(raw[name])
                for value, count in counts.items():
                    self._postings.setdefault(f"{kind}:{value}", Counter())[story.slot] += count
            for lang, stored in zip(raw["langs_rows"], raw["rows"], strict=True):
                row = self._row(story, lang)  # first: it may grow (replace) the matrix
                self._matrix[row] = matrix[stored]
                self._row_count[row] = story.langs[lang]
            self._update_norms(story)

    def save(self) -> None:
        if self.state_dir is None:
            return
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
        save_state(
            self._path(self.state_dir),
            STATE_VERSION,
            meta=np.array(json.dumps(meta, ensure_ascii=False)),
            matrix=self._matrix[rows].reshape(-1, STORY_DIMENSIONS),
        )

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
    cosines = np.array(
        [
            float(later.embedding[a:b] @ earlier.embedding[a:b])
            / max(float(np.linalg.norm(earlier.embedding[a:b])), 1e-6)
            for a, b in PARTS
        ]
    )
    same = later.lang == earlier.lang
    return features(later, story, np.concatenate([cosines, cosines * same]))


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
