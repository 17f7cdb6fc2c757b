"""Topic classification behind one interface, so backends can be swapped or combined.

``get_backend("rules")`` is the explainable lexicon backend here. ``"transformers"`` is
imported on demand from ``nlp.transformers_backend`` (by default the shipped topic model
``nlp/models/topics``); ``"ensemble"`` takes a weighted mean of several backends' scores,
per label, with the weights and thresholds tuned on the labelled topic set when the model
folder carries them (``ensemble.json``, see ``nlp.topic_eval``). Others plug in with
``register_backend``.
"""

from __future__ import annotations

import importlib
import json
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from newsmon.errors import ConfigError
from newsmon.models import Article, Topic
from newsmon.nlp.cues import CueHit, CueSet, TokenizedDoc, docs_for, evidence
from newsmon.nlp.lexicon import load_data
from newsmon.nlp.tokenize import Tokenizers, get_tokenizers


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

    def threshold(self, label: str) -> float:
        return self._setting(label, "threshold")

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

    def scores_docs(
        self, articles: list[Article], docs: Sequence[TokenizedDoc] | None
    ) -> list[dict[str, Topic]]:
        """Every label's score and evidence, thresholds not applied (what the ensemble mixes)."""
        return [
            self.score(doc) for doc in (docs if docs is not None else docs_for(articles, self._tokenizers))
        ]

    def classify_doc(self, doc: TokenizedDoc) -> list[Topic]:
        return self.kept(self.score(doc))

    def kept(self, scores: Mapping[str, Topic]) -> list[Topic]:
        """The labels of ``score``'s result that reach their threshold, best first."""
        topics = [t for t in scores.values() if t.score >= self.threshold(t.label)]
        return sorted(topics, key=lambda t: -t.score)

    def classify(self, articles: list[Article]) -> list[list[Topic]]:
        return self.classify_docs(articles, docs_for(articles, self._tokenizers))

    def classify_docs(self, articles: list[Article], docs: Sequence[TokenizedDoc]) -> list[list[Topic]]:
        return [self.classify_doc(doc) for doc in docs]


def weighted_mean(scores: Sequence[float], weights: Sequence[float]) -> float:
    total = sum(weights)
    return sum(w * x for w, x in zip(weights, scores, strict=True)) / total if total else 0.0


class EnsembleBackend:
    """Per label, the weighted mean of the members' scores (a label a member does not score
    counts 0); evidence is pooled from the members that back the label. A label is kept at
    or over its threshold. ``label_weights`` / ``label_thresholds`` override the member
    weights and the threshold label by label (as tuned by ``nlp.topic_eval``)."""

    name = "ensemble"

    def __init__(
        self,
        members: Sequence[tuple[TopicBackend, float]],
        threshold: float = 0.5,
        *,
        label_weights: Mapping[str, Sequence[float]] | None = None,
        label_thresholds: Mapping[str, float] | None = None,
    ) -> None:
        if not members:
            raise ConfigError("ensemble: no member backends")
        for label, ws in (label_weights or {}).items():
            if len(ws) != len(members):
                raise ConfigError(
                    f"ensemble: label {label!r} has {len(ws)} weights for {len(members)} members"
                )
        self.members = list(members)
        self.threshold = threshold
        self.label_weights = dict(label_weights or {})
        self.label_thresholds = dict(label_thresholds or {})

    def classify(self, articles: list[Article]) -> list[list[Topic]]:
        return self.classify_docs(articles, None)

    def classify_docs(
        self, articles: list[Article], docs: Sequence[TokenizedDoc] | None
    ) -> list[list[Topic]]:
        return self.combine([all_scores(backend, articles, docs) for backend, _ in self.members])

    def combine(self, per_member: Sequence[Sequence[Mapping[str, Topic]]]) -> list[list[Topic]]:
        """The ensemble's topics from each member's scores of every label (``all_scores``)."""
        defaults = [w for _, w in self.members]
        out: list[list[Topic]] = []
        for i in range(len(per_member[0]) if per_member else 0):
            rows = [member[i] for member in per_member]
            kept: list[Topic] = []
            for label in dict.fromkeys(lab for row in rows for lab in row):
                weights = self.label_weights.get(label, defaults)
                found = [row.get(label) for row in rows]
                score = weighted_mean([t.score if t else 0.0 for t in found], weights)
                if score >= self.label_thresholds.get(label, self.threshold):
                    proof = [
                        e for t, w in zip(found, weights, strict=True) if t and w > 0 for e in t.evidence
                    ]
                    kept.append(
                        Topic(label=label, score=round(score, 4), evidence=list(dict.fromkeys(proof)))
                    )
            out.append(sorted(kept, key=lambda t: -t.score))
        return out


def _ensemble(
    members: str = "rules,transformers",
    weights: str = "",
    threshold: float = 0.5,
    tuned: str | None = "auto",
    **options: Any,
) -> EnsembleBackend:
    """``tuned``: a tuned ``ensemble.json``; "auto" = the one beside the transformers
    member's model, when the members are rules,transformers and no weights are given."""
    names = [n.strip() for n in members.split(",") if n.strip()]
    ws = [float(w) for w in weights.split(",")] if weights else [1.0] * len(names)
    if len(ws) != len(names):
        raise ConfigError(f"ensemble: {len(names)} members but {len(ws)} weights")
    backends = [get_backend(n, **options.get(n, {})) for n in names]
    tuning: dict[str, Any] = {}
    if tuned == "auto" and names == ["rules", "transformers"] and not weights:
        model_ref = getattr(backends[1], "model_ref", "")
        auto = Path(model_ref) / "ensemble.json" if model_ref else None
        tuning = json.loads(auto.read_text(encoding="utf-8")) if auto and auto.is_file() else {}
    elif tuned and tuned != "auto":
        try:
            tuning = json.loads(Path(tuned).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"ensemble: cannot read tuned weights {tuned}: {exc}") from None
    if tuning and tuning.get("members") != names:
        raise ConfigError(f"ensemble: {tuned} was tuned for members {tuning.get('members')}, not {names}")
    return EnsembleBackend(
        list(zip(backends, ws, strict=True)),
        threshold=threshold,
        label_weights={k: v["weights"] for k, v in tuning.get("labels", {}).items()},
        label_thresholds={k: v["threshold"] for k, v in tuning.get("labels", {}).items()},
    )


def all_scores(
    backend: TopicBackend, articles: list[Article], docs: Sequence[TokenizedDoc] | None
) -> list[dict[str, Topic]]:
    """Every label's score, thresholds not applied, from a backend that can say
    (``scores_docs`` / ``scores``); else its classified topics only."""
    with_docs = getattr(backend, "scores_docs", None)
    if with_docs is not None:
        return with_docs(articles, docs)
    scores = getattr(backend, "scores", None)
    if scores is not None:
        return scores(articles)
    return [{t.label: t for t in topics} for topics in classify(backend, articles, docs)]


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
    "transformers": "newsmon.nlp.transformers_backend:topic_model_backend",
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
