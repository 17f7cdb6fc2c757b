"""The signal heads: the export-control alert and the topic tags as calibrated probabilities.

One multilingual sentence embedding per article (nlp.encoder) plus the rules' cue features
(the alert cues' presence, each topic's rule score, the rule alert score) feed one head per
decision: an RBF-kernel SVM whose margin is Platt-scaled to a probability. On the training
folds the kernel heads beat logistic ones over the same features (alert precision at recall
0.95: ko 0.88 / zh 0.73 / en 0.87 against 0.84 / 0.65 / 0.82; topic macro-F1 0.82 / 0.82 /
0.85 against 0.77 / 0.78 / 0.83): a reaction or an explainer restates an action's facts,
and only a combination of framing and content tells them apart. The alert's margin also gets a
second member, a logistic head over the headline's and lead's character n-grams
(``LexicalHead``): the embeddings say what an article is about, its surface words also how it
frames it (回应, 解读, 拟, 股价 ...). The heads, their
per-language alert thresholds and per-topic thresholds are trained and chosen by
``newsmon signal train`` on the event-disjoint training split of the signal corpus
(nlp/data/signal) and shipped in nlp/models/signal; nothing is fitted at run time. Each
decision keeps its evidence: the matched cues and the nearest labelled corpus items.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from newsmon.models import AlertDecision, Topic
from newsmon.nlp.alert import AlertModel
from newsmon.nlp.cues import TokenizedDoc
from newsmon.nlp.encoder import TITLE_DIMENSIONS
from newsmon.nlp.topics import RulesBackend

MODEL_DIR = Path(__file__).resolve().parent / "models" / "signal"
HEADS_FILE = "heads.npz"
META_FILE = "signal.json"
NEIGHBOURS_FILE = "neighbours.npz"
NEIGHBOURS_SHOWN = 3
ALERT = "alert"  # the first label of the heads; the topics follow


def cue_names(alerts: AlertModel, rules: RulesBackend) -> list[str]:
    return [
        *(f"cue:{n}" for n in alerts.rules["features"]),
        *(f"rule:{t}" for t in rules.labels),
        "rule:alert",
    ]


def cue_vector(
    alerts: AlertModel,
    rules: RulesBackend,
    doc: TokenizedDoc,
    topics: dict[str, Topic] | None = None,
    decision: AlertDecision | None = None,
) -> list[float]:
    """The rules' view of one article, in ``cue_names`` order (``topics`` and ``decision``:
    the rules' scores of ``doc`` where the caller has them already)."""
    found = alerts.features(doc)
    topics = rules.score(doc) if topics is None else topics
    return [
        *(found[n].presence if n in found else 0.0 for n in alerts.rules["features"]),
        *(topics[t].score for t in rules.labels),
        (decision or alerts.decide(doc)).score,
    ]


def headline_part(embeddings: np.ndarray) -> np.ndarray:
    """The headline part of each article's embedding (unit length): what the relevance head
    reads, and what picks the labelled items shown as evidence (those whose headlines say the
    most similar thing)."""
    return embeddings[:, :TITLE_DIMENSIONS]


@dataclass(frozen=True)
class KernelHeads:
    """One RBF-kernel SVM per label over the standardised features. They share one kernel
    (same gamma) and one set of support vectors (every training row any of them uses), so an
    article's kernel row is computed once for all labels; each margin is Platt-scaled."""

    support: np.ndarray  # (vectors, features)
    duals: np.ndarray  # (labels, vectors): each vector's signed weight per label, 0 where unused
    intercepts: np.ndarray  # (labels,)
    gamma: float
    platt: np.ndarray  # (labels, 2): P = sigmoid(a * margin + b)

    @cached_property
    def _support_norms(self) -> np.ndarray:
        """Each support vector's squared length, computed once rather than per batch."""
        return (self.support**2).sum(axis=1)

    def margins(self, xs: np.ndarray) -> np.ndarray:
        squared = (xs**2).sum(axis=1)[:, None] + self._support_norms[None, :]
        squared -= 2.0 * xs @ self.support.T
        return np.exp(-self.gamma * np.maximum(squared, 0.0)) @ self.duals.T + self.intercepts

    def probabilities(self, xs: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
        """Per label, P = Platt(margin); ``extra``: (rows, labels) margins of other members, added
        before the scaling."""
        margins = self.margins(xs) if extra is None else self.margins(xs) + extra
        return 1.0 / (1.0 + np.exp(-(self.platt[:, 0] * margins + self.platt[:, 1])))


def load_kernel_heads(heads: Any) -> KernelHeads:
    return KernelHeads(
        support=heads["kernel_support"].astype(np.float32),
        duals=heads["kernel_duals"].astype(np.float32),
        intercepts=heads["kernel_intercepts"].astype(np.float32),
        gamma=float(heads["kernel_gamma"]),
        platt=heads["kernel_platt"].astype(np.float32),
    )


def lexical_text(title: str, lead: str) -> str:
    """What the lexical head reads: the encoder's headline and lead (Chinese simplified)."""
    return f"{title}\n{lead}"


# TF-IDF over character 1-3-grams within words: no tokenizer, so one vocabulary serves Korean,
# Chinese and English alike.
LEXICAL_NGRAMS = (1, 3)


@dataclass(frozen=True)
class LexicalHead:
    """A logistic head over TF-IDF character n-grams of ``lexical_text``. Its margin, times
    ``weight``, is added to the alert SVM's margin before the Platt scaling, which was fitted on
    that sum."""

    vocabulary: list[str]
    idf: np.ndarray
    coef: np.ndarray  # (vocabulary,)
    bias: float
    weight: float

    @cached_property
    def _vectorizer(self) -> Any:
        vectorizer = lexical_vectorizer(vocabulary=self.vocabulary)
        vectorizer.idf_ = self.idf
        return vectorizer

    def margins(self, texts: Sequence[str]) -> np.ndarray:
        return self.weight * (self._vectorizer.transform(list(texts)) @ self.coef + self.bias)


def lexical_vectorizer(vocabulary: Sequence[str] | None = None, min_df: int = 1) -> Any:
    """The lexical head's TF-IDF vectorizer: fitted by training, or fixed to a shipped
    ``vocabulary``."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        analyzer="char_wb",
        ngram_range=LEXICAL_NGRAMS,
        sublinear_tf=True,
        min_df=min_df,
        vocabulary=None if vocabulary is None else list(vocabulary),
        dtype=np.float32,
    )


@dataclass(frozen=True)
class Neighbour:
    alert: bool
    title: str
    url: str
    similarity: float

    def describe(self) -> str:
        kind = "alert" if self.alert else "non-alert"
        return f"nearest {kind} ({self.similarity:.2f}): {self.title} <{self.url}>"


@dataclass(frozen=True)
class Signal:
    """One article's probabilities and the labelled items it resembles most."""

    alert: float
    alert_threshold: float
    topics: dict[str, float]
    neighbours: list[Neighbour]
    relevance: float | None = None  # P(tech news), where the heads include the relevance head


class SignalModel:
    """The shipped heads (``folder``: what ``newsmon signal train`` wrote)."""

    def __init__(self, folder: Path = MODEL_DIR) -> None:
        self.folder = folder
        self.meta: dict[str, Any] = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        heads = np.load(folder / HEADS_FILE)
        self.mean, self.scale = heads["mean"], heads["scale"]
        self.heads = load_kernel_heads(heads)
        # The tech-relevance head reads the headline's embedding alone (its training rows are
        # bare headlines); absent from heads trained without the shared data.
        self.relevance_head: tuple[np.ndarray, float] | None = (
            (heads["relevance_weights"], float(heads["relevance_bias"]))
            if "relevance_weights" in heads.files
            else None
        )
        self.labels: list[str] = self.meta["labels"]  # "alert" first, then the topics
        self.lexical: LexicalHead | None = (
            LexicalHead(
                vocabulary=[str(term) for term in heads["lexical_vocabulary"]],
                idf=heads["lexical_idf"].astype(np.float32),
                coef=heads["lexical_coef"].astype(np.float32),
                bias=float(heads["lexical_bias"]),
                weight=float(heads["lexical_weight"]),
            )
            if "lexical_coef" in heads.files
            else None
        )

    @cached_property
    def _neighbours(self) -> tuple[np.ndarray, list[dict[str, Any]]]:
        stored = np.load(self.folder / NEIGHBOURS_FILE)
        return stored["embeddings"].astype(np.float32), self.meta["neighbours"]

    @property
    def cue_names(self) -> list[str]:
        return self.meta["features"]["cues"]

    def probabilities(self, embeddings: np.ndarray, cues: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """(articles, labels) probabilities for feature rows [embedding | cues] and each article's
        ``lexical_text``: the alert's first, then each topic's."""
        x = ((np.hstack([embeddings, cues]) - self.mean) / self.scale).astype(np.float32)
        if self.lexical is None:
            return self.heads.probabilities(x)
        extra = np.zeros((len(x), len(self.labels)), dtype=np.float32)
        extra[:, 0] = self.lexical.margins(texts)
        return self.heads.probabilities(x, extra)

    def relevance(self, headlines: np.ndarray) -> np.ndarray | None:
        """P(tech news) per headline embedding (``headline_part``), or None without a relevance
        head."""
        if self.relevance_head is None:
            return None
        weights, bias = self.relevance_head
        return 1.0 / (1.0 + np.exp(-(headlines @ weights + bias)))

    def alert_threshold(self, lang: str | None, headline_only: bool = False) -> float:
        """The language's alert threshold; a headline-only item (no text: some feeds, failed
        extractions) has its own, chosen on the headline-only training rows, which score lower."""
        by_lang: dict[str, float] = self.meta[
            "headline_alert_thresholds" if headline_only else "alert_thresholds"
        ]
        return by_lang.get(lang or "", by_lang["default"])

    def score(
        self,
        embeddings: np.ndarray,
        cues: np.ndarray,
        texts: Sequence[str],
        langs: Sequence[str | None],
        headline_only: Sequence[bool] | None = None,
    ) -> list[Signal]:
        bare = headline_only or [False] * len(langs)
        probs = self.probabilities(embeddings, cues, texts)
        relevance = self.relevance(headline_part(embeddings))
        stored, items = self._neighbours
        similar = headline_part(embeddings) @ stored.T
        nearest = np.argsort(-similar, axis=1)[:, :NEIGHBOURS_SHOWN] if len(items) else None
        out: list[Signal] = []
        for i, lang in enumerate(langs):
            near = [] if nearest is None else nearest[i]
            out.append(
                Signal(
                    alert=float(probs[i, 0]),
                    alert_threshold=self.alert_threshold(lang, bare[i]),
                    topics={
                        label: float(probs[i, j]) for j, label in enumerate(self.labels) if label != ALERT
                    },
                    neighbours=[
                        Neighbour(
                            bool(items[k]["alert"]),
                            items[k]["title"],
                            items[k]["url"],
                            round(float(similar[i, k]), 3),
                        )
                        for k in near
                    ],
                    relevance=None if relevance is None else float(relevance[i]),
                )
            )
        return out

    def alert_decision(self, signal: Signal, cue_evidence: list[str]) -> AlertDecision:
        return AlertDecision(
            export_controls=signal.alert >= signal.alert_threshold,
            score=round(signal.alert, 4),
            evidence=[*cue_evidence[:5], *(n.describe() for n in signal.neighbours)],
        )

    def topics(self, signal: Signal, rule_topics: dict[str, Topic]) -> list[Topic]:
        """The labels over their tuned thresholds, with the rules' matched terms as evidence."""
        thresholds: dict[str, float] = self.meta["topic_thresholds"]
        found = [
            Topic(
                label=label,
                score=round(p, 4),
                evidence=rule_topics[label].evidence if label in rule_topics else [],
            )
            for label, p in signal.topics.items()
            if p >= thresholds[label]
        ]
        return sorted(found, key=lambda t: -t.score)
