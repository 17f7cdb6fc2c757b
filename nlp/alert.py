"""The export-control alert decision: bool + score per article, with the cues behind it.

A small hand-weighted logistic model over cue features (alert_rules.yaml). It is separate
from the export_controls topic: many articles are about export controls, few announce a
control action an analyst must read now (rule, licence, listing, enforcement, retaliation).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from newsmon.models import AlertDecision
from newsmon.nlp.cues import CueHit, CueSet, TokenizedDoc
from newsmon.nlp.lexicon import load_data
from newsmon.nlp.tokenize import Tokenizers, get_tokenizers


@dataclass(frozen=True)
class Feature:
    name: str
    presence: float  # 0..1: 1 when a cue is in the title or lead
    hits: list[CueHit]


class AlertModel:
    def __init__(self, rules: Mapping[str, Any] | None = None, tokenizers: Tokenizers | None = None) -> None:
        self.rules = rules if rules is not None else load_data("alert_rules.yaml")
        self._tokenizers = tokenizers or get_tokenizers()

    @cached_property
    def _cues(self) -> dict[str, CueSet]:
        return {name: CueSet(spec, self._tokenizers) for name, spec in self.rules["features"].items()}

    def features(self, doc: TokenizedDoc) -> dict[str, Feature]:
        # Counter-cues (market, business, response...) use their own position weights: a long
        # article on a new rule often mentions its impact in the lead; the headline's framing
        # is what says whether the story is about markets or products.
        positive = self.rules["position"]
        negative = self.rules.get("negative_position", positive)
        out: dict[str, Feature] = {}
        for name, cues in self._cues.items():
            hits = cues.find(doc)
            if hits:
                position = negative if float(self.rules["features"][name]["weight"]) < 0 else positive
                out[name] = Feature(name, max(position[h.where] for h in hits), hits)
        return out

    def decide(self, doc: TokenizedDoc) -> AlertDecision:
        feats = self.features(doc)
        weights = self.rules["features"]
        logit = float(self.rules["bias"])
        for f in feats.values():
            logit += float(weights[f.name]["weight"]) * f.presence
        for pair in self.rules["interactions"]:
            a, b = (feats.get(name) for name in pair["features"])
            if a and b:
                logit += float(pair["weight"]) * min(a.presence, b.presence)
        score = 1 / (1 + math.exp(-logit))
        ranked = sorted(feats.values(), key=lambda f: -abs(float(weights[f.name]["weight"])))
        evidence = [f"{f.name}: {h}" for f in ranked for h in dict.fromkeys(x.surface for x in f.hits)]
        return AlertDecision(
            export_controls=score >= float(self.rules["threshold"]),
            score=round(score, 4),
            evidence=evidence[:12],
        )
