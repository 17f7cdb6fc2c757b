"""Story clustering: wire copies republished by several outlets share one cluster id.

MinHash LSH (datasketch) over character 5-grams of the normalised lead of the body. Why the
lead: a truncated or lightly edited copy keeps the first paragraphs, so its lead shingles
match the original's even when the full texts differ a lot in length; outlets rewrite
headlines, so titles are left out unless there is no body. Character n-grams need no
tokenizer and work alike for Korean, Chinese and English.

The cluster id is the article id of the cluster's first member. With a state directory the
LSH index is saved there (one .npz, no pickle) and reloaded, so ids are stable across runs;
re-analysing a known article returns its recorded cluster.
"""

from __future__ import annotations

import re
import unicodedata
from collections import OrderedDict
from pathlib import Path
from types import TracebackType

import numpy as np
from datasketch import LeanMinHash, MinHash, MinHashLSH

from newsmon.nlp.statefile import load_state, save_state

SHINGLE = 5
LEAD_CHARS = 1000
NUM_PERM = 128
# Measured on the shared-data test set (nlp.devset.cluster_testset): pair precision 1.0 at
# 0.3-0.5, recall 0.996 at 0.3 and 0.92 at 0.5 (short articles truncated to 40% fall under).
THRESHOLD = 0.3
# The index keeps the most recent documents only: a wire story is republished within days
# (some 5,000 articles a day here), and each document costs NUM_PERM * 4 bytes on disk.
MAX_DOCS = 50_000
STATE_VERSION = 1
SEED = 1
_SCHEME = MinHash(num_perm=NUM_PERM, seed=SEED).scheme  # 32-bit values; datasketch needs it to reload

_NOISE = re.compile(r"[\W_]+")


def shingles(title: str, text: str) -> set[bytes]:
    body = _NOISE.sub("", unicodedata.normalize("NFKC", text).casefold())[:LEAD_CHARS]
    if len(body) < SHINGLE * 4:  # no usable body: fall back on the title
        body = _NOISE.sub("", unicodedata.normalize("NFKC", f"{title}{text}").casefold())[:LEAD_CHARS]
    if len(body) <= SHINGLE:
        return {body.encode()} if body else set()
    return {body[i : i + SHINGLE].encode() for i in range(len(body) - SHINGLE + 1)}


def minhash(title: str, text: str) -> LeanMinHash:
    mh = MinHash(num_perm=NUM_PERM, seed=SEED)
    mh.update_batch(list(shingles(title, text)))
    return LeanMinHash(mh)


class StoryClusters:
    """Assigns cluster ids; use as a context manager (or call save) to persist the state."""

    def __init__(
        self, state_dir: Path | None = None, threshold: float = THRESHOLD, max_docs: int = MAX_DOCS
    ) -> None:
        self.state_dir = state_dir
        self.threshold = threshold
        self.max_docs = max_docs
        self._lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
        # doc id -> (cluster id, minhash), oldest first for eviction
        self._docs: OrderedDict[str, tuple[str, LeanMinHash]] = OrderedDict()
        if state_dir is not None:
            self._load(state_dir)

    def __len__(self) -> int:
        return len(self._docs)

    def assign(self, doc_id: str, title: str, text: str) -> str:
        known = self._docs.get(doc_id)
        if known is not None:
            return known[0]
        mh = minhash(title, text)
        best: tuple[float, str] | None = None
        for other in self._lsh.query(mh):
            similarity = mh.jaccard(self._docs[other][1])
            if similarity >= self.threshold and (best is None or similarity > best[0]):
                best = (similarity, self._docs[other][0])
        cluster = best[1] if best else doc_id
        self._add(doc_id, cluster, mh)
        return cluster

    def _add(self, doc_id: str, cluster: str, mh: LeanMinHash) -> None:
        self._lsh.insert(doc_id, mh, check_duplication=False)
        self._docs[doc_id] = (cluster, mh)
        while len(self._docs) > self.max_docs:
            old, _ = self._docs.popitem(last=False)
            self._lsh.remove(old)

    # --- persistence: one .npz (no pickle), replaced atomically

    def _path(self, state_dir: Path) -> Path:
        return state_dir / "clusters.npz"

    def _load(self, state_dir: Path) -> None:
        state = load_state(
            self._path(state_dir),
            STATE_VERSION,
            "story-cluster state",
            lambda arrays: (
                arrays["hashvalues"].shape[1:] == (NUM_PERM,)
                and len(arrays["ids"]) == len(arrays["clusters"]) == len(arrays["hashvalues"])
            ),
        )
        if state is None:
            return
        scheme = str(state["scheme"])
        for doc_id, cluster, values in zip(state["ids"], state["clusters"], state["hashvalues"], strict=True):
            self._add(str(doc_id), str(cluster), LeanMinHash(seed=SEED, hashvalues=values, scheme=scheme))

    def save(self) -> None:
        if self.state_dir is None:
            return
        save_state(
            self._path(self.state_dir),
            STATE_VERSION,
            scheme=np.array(_SCHEME),
            ids=np.array(list(self._docs), dtype=str),
            clusters=np.array([c for c, _ in self._docs.values()], dtype=str),
            hashvalues=np.array([mh.hashvalues for _, mh in self._docs.values()], dtype=np.uint32).reshape(
                -1, NUM_PERM
            ),
        )

    def __enter__(self) -> StoryClusters:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.save()
