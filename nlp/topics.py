"""Topic classification behind one interface, so backends can be swapped or combined.

``get_backend("rules")`` is the explainable lexicon backend here. ``"transformers"`` is
imported on demand from ``nlp.transformers_backend`` (a ``TransformersBackend`` class taking
keyword options); ``"ensemble"`` averages several backends. Others plug in with
``register_backend``.
"""

from __future__ import annotations

import importlib
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import Any, Protocol, runtime_checkable

from newsmon.errors import ConfigError
from newsmon.models import Article, Topic
from nlp.cues import CueHit, CueSet, TokenizedDoc, docs_for, evidence
from nlp.lexicon import load_data
from nlp.tokenize import Tokenizers, get_tokenizers


@runtime_checkable
class TopicBackend(Protocol):
    name: str

    def classify(self, articles: list[Article]) -> list[list[Topic]]:
        """Per article, its topic labels (multi-label) with scores in [0, 1] and evidence.
        A backend may also offer relevance(articles) -> list[float]: the pipeline then
        stores that in Article.relevance."""
        ...


# A cue found in the title counts more; a repeated cue counts more, up to a cap.
TITLE_FACTOR = 1.5
REPEAT_STEP = 0.25
REPEAT_CAP = 2.0


class RulesBackend:
    """Lexicon rules from topics.yaml over the analysed tokens; evidence = matched terms."""

    name = "rules"

    def __init__(
        self, taxonomy: Mapping[str, Any] | None = None, tokenizers: Tokenizers | None = None
    ) -> None:
        self._taxonomy = taxonomy if taxonomy is not None else load_data("topics.yaml")
        self._tokenizers = tokenizers or get_tokenizers()

    @cached_property
    def _cues(self) -> dict[str, CueSet]:
        return {label: CueSet(spec, self._tokenizers) for label, spec in self._taxonomy["topics"].items()}

    def _setting(self, label: str, key: str) -> float:
        spec = self._taxonomy["topics"][label]
        return float(spec.get(key, self._taxonomy["defaults"][key]))

    @property
    def labels(self) -> list[str]:
        return list(self._taxonomy["topics"])

    def score(self, doc: TokenizedDoc) -> dict[str, Topic]:
        """Every topic's score and evidence, thresholds not applied."""
        out: dict[str, Topic] = {}
        for label, cues in self._cues.items():
            hits = cues.find(doc)
            out[label] = Topic(
                label=label, score=round(self._squash(label, hits), 4), evidence=evidence(hits)
            )
        return out

    def _squash(self, label: str, hits: Sequence[CueHit]) -> float:
        by_cue: dict[str, list[CueHit]] = defaultdict(list)
        for hit in hits:
            by_cue[hit.cue].append(hit)
        raw = 0.0
        for cue_hits in by_cue.values():
            weight = max(h.weight for h in cue_hits)
            if any(h.where == "title" for h in cue_hits):
                weight *= TITLE_FACTOR
            raw += weight * min(1 + REPEAT_STEP * (len(cue_hits) - 1), REPEAT_CAP)
        return 1 - math.exp(-raw / self._setting(label, "scale"))

    def classify_doc(self, doc: TokenizedDoc) -> list[Topic]:
        topics = [t for t in self.score(doc).values() if t.score >= self._setting(t.label, "threshold")]
        return sorted(topics, key=lambda t: -t.score)

    def classify(self, articles: list[Article]) -> list[list[Topic]]:
        return self.classify_docs(articles, docs_for(articles, self._tokenizers))

    def classify_docs(self, articles: list[Article], docs: Sequence[TokenizedDoc]) -> list[list[Topic]]:
        return [self.classify_doc(doc) for doc in docs]


class EnsembleBackend:
    """Weighted mean of member scores per label (a label a member does not return counts 0);
    evidence is pooled. Labels at or over `threshold` are kept."""

    name = "ensemble"

    def __init__(self, members: Sequence[tuple[TopicBackend, float]], threshold: float = 0.5) -> None:
        if not members:
            raise ConfigError("ensemble: no member backends")
        self.members = list(members)
        self.threshold = threshold

    def classify(self, articles: list[Article]) -> list[list[Topic]]:
        return self.classify_docs(articles, None)

    def classify_docs(
        self, articles: list[Article], docs: Sequence[TokenizedDoc] | None
    ) -> list[list[Topic]]:
        total = sum(w for _, w in self.members)
        per_member = [(classify(backend, articles, docs), w) for backend, w in self.members]
        out: list[list[Topic]] = []
        for i in range(len(articles)):
            score: dict[str, float] = defaultdict(float)
            proof: dict[str, list[str]] = defaultdict(list)
            for results, weight in per_member:
                for topic in results[i]:
                    score[topic.label] += weight * topic.score / total
                    proof[topic.label] += topic.evidence
            kept = [
                Topic(label=label, score=round(s, 4), evidence=list(dict.fromkeys(proof[label])))
                for label, s in score.items()
                if s >= self.threshold
            ]
            out.append(sorted(kept, key=lambda t: -t.score))
        return out


def _ensemble(
    members: str = "rules,transformers", weights: str = "", threshold: float = 0.5, **options: Any
) -> EnsembleBackend:
    names = [n.strip() for n in members.split(",") if n.strip()]
    ws = [float(w) for w in weights.split(",")] if weights else [1.0] * len(names)
    if len(ws) != len(names):
        raise ConfigError(f"ensemble: {len(names)} members but {len(ws)} weights")
    return EnsembleBackend(
        [(get_backend(n, **options.get(n, {})), w) for n, w in zip(names, ws, strict=True)],
        threshold=threshold,
    )


def classify(
    backend: TopicBackend, articles: list[Article], docs: Sequence[TokenizedDoc] | None
) -> list[list[Topic]]:
    """backend.classify, reusing the pipeline's tokenized docs when the backend can
    (the rules backend would otherwise re-tokenize every title)."""
    with_docs = getattr(backend, "classify_docs", None)
    if docs is not None and with_docs is not None:
        return with_docs(articles, docs)
    return backend.classify(articles)


BackendFactory = Callable[..., TopicBackend]
# Values are factories, or "module:attribute" strings imported on first use so that a
# heavy backend (torch) costs nothing unless chosen.
_BACKENDS: dict[str, BackendFactory | str] = {
    "rules": RulesBackend,
    "transformers": "nlp.transformers_backend:TransformersBackend",
    "ensemble": _ensemble,
}


def register_backend(name: str, factory: BackendFactory | str) -> None:
    _BACKENDS[name] = factory


def backend_names() -> list[str]:
    return sorted(_BACKENDS)


def get_backend(name: str, **options: Any) -> TopicBackend:
    """A topic backend by name: rules | transformers | ensemble | any registered one."""
    factory = _BACKENDS.get(name)
    if factory is None:
        raise ConfigError(f"unknown topic backend {name!r}; choose from {', '.join(backend_names())}")
    if isinstance(factory, str):
        module_name, _, attr = factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"topic backend {name!r} is not available: {exc}") from exc
    return factory(**options)
