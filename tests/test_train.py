"""newsmon.nlp.training.cli: a tiny classifier trained from scratch in seconds on our own sentences."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from newsmon.nlp.training.classifier import train_classifier
from newsmon.nlp.training.data import TrainError, build_relevance_dataset, read_jsonl

# Our own sentences: tech subjects x tech verbs vs sports subjects x sports verbs, ko + zh.
TECH_KO = ["삼성전자", "네이버", "카카오", "반도체", "인공지능", "스마트폰", "클라우드", "양자컴퓨터"]
TECH_KO_V = ["신제품 공개", "소프트웨어 업데이트", "데이터센터 증설", "칩 개발 성공", "앱 출시"]
SPORT_KO = ["손흥민", "야구대표팀", "축구대표팀", "프로농구", "배구연맹", "올림픽 선수단"]
SPORT_KO_V = ["결승골 폭발", "역전승 거둬", "리그 우승", "금메달 획득", "감독 경질"]
TECH_ZH = ["华为", "腾讯", "阿里云", "芯片", "人工智能", "手机", "软件", "数据中心"]
TECH_ZH_V = ["发布新品", "推出新系统", "研发成功", "升级算法", "开放平台"]
SPORT_ZH = ["国足", "女排", "篮球队", "奥运冠军", "足球俱乐部", "乒乓球队"]
SPORT_ZH_V = ["赢得比赛", "夺得冠军", "点球获胜", "主场失利", "换帅"]


def _sentences(subjects: list[str], verbs: list[str]) -> list[str]:
    return [
        f"{s} {v}" if s.isascii() or any("가" <= c <= "힣" for c in s) else f"{s}{v}"
        for s in subjects
        for v in verbs
    ]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], list[str]]:
    """Train once per module; hold out one sentence in five of each class for prediction."""
    tmp = tmp_path_factory.mktemp("train")
    tech = _sentences(TECH_KO, TECH_KO_V) + _sentences(TECH_ZH, TECH_ZH_V)
    sport = _sentences(SPORT_KO, SPORT_KO_V) + _sentences(SPORT_ZH, SPORT_ZH_V)
    random.Random(3).shuffle(tech)
    random.Random(4).shuffle(sport)
    held_tech, held_sport = tech[::5], sport[::5]
    rows = [{"text": t, "label": "tech"} for t in tech if t not in held_tech]
    rows += [{"text": t, "label": "other"} for t in sport if t not in held_sport]
    data = _write(tmp / "train.jsonl", rows)
    evald = _write(
        tmp / "eval.jsonl",
        [{"text": t, "label": "tech", "source": "tech"} for t in held_tech]
        + [{"text": t, "label": "other", "source": "sport"} for t in held_sport],
    )
    out = tmp / "model"
    calls: list[tuple[int, int]] = []
    import torch

    threads_before = torch.get_num_threads()
    report = train_classifier(
        data,
        out,
        epochs=12,
        batch_size=16,
        learning_rate=3e-3,
        vocab_size=400,
        hidden_size=32,
        num_layers=1,
        num_heads=2,
        threads=1,
        eval_data=evald,
        progress=lambda done, total, msg: calls.append((done, total)),
    )
    assert report.labels == ["other", "tech"]
    assert torch.get_num_threads() == threads_before  # threads=1 was for training only
    assert report.steps == calls[-1][0] == calls[-1][1]  # progress reached the end
    assert report.eval["all"].n == len(held_tech) + len(held_sport)
    assert json.loads((out / "train_report.json").read_text())["n_train"] == len(rows)
    return out, held_tech, held_sport


def test_saved_model_reloads_offline_and_separates_classes(
    tiny_model: tuple[Path, list[str], list[str]],
) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out, held_tech, held_sport = tiny_model
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    tok = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(str(out), local_files_only=True).eval()
    assert model.config.id2label == {0: "other", 1: "tech"}
    tech_id = model.config.label2id["tech"]
    with torch.inference_mode():
        enc = tok(held_tech + held_sport, padding=True, return_tensors="pt")
        enc.pop("token_type_ids", None)
        p = torch.softmax(model(**enc).logits, -1)[:, tech_id].tolist()
    p_tech, p_sport = p[: len(held_tech)], p[len(held_tech) :]
    # Unseen subject/verb pairs: every tech sentence scores above every sports one on average,
    # and the 0.5 cut gets most right.
    assert sum(p_tech) / len(p_tech) > sum(p_sport) / len(p_sport) + 0.3
    right = sum(x > 0.5 for x in p_tech) + sum(x < 0.5 for x in p_sport)
    assert right / len(p) >= 0.8


def test_backend_reads_a_trained_folder(tiny_model: tuple[Path, list[str], list[str]]) -> None:
    from newsmon.models import Article
    from newsmon.nlp.transformers_backend import TransformersBackend

    out, held_tech, held_sport = tiny_model
    backend = TransformersBackend(str(out), batch_size=4)
    probs = backend.predict([held_tech[0], held_sport[0]])
    assert set(probs[0]) == {"other", "tech"}
    assert abs(sum(probs[0].values()) - 1) < 1e-5
    assert backend.relevance_label == "tech"  # the one label that is not "other"
    arts = [
        Article(url=f"https://x.test/{i}", canonical_url=f"https://x.test/{i}", title=t)
        for i, t in enumerate(held_tech[:3])
    ]
    rel = backend.relevance(arts)
    assert rel == [round(backend.predict([a.title])[0]["tech"], 4) for a in arts]


def test_multi_label_training(tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    from newsmon.nlp.transformers_backend import TransformersBackend

    rows = [{"text": t, "labels": ["tech"]} for t in _sentences(TECH_KO, TECH_KO_V)]
    rows += [{"text": t, "labels": ["sports"]} for t in _sentences(SPORT_KO, SPORT_KO_V)]
    rows += [
        {"text": f"{a} {b}", "labels": ["sports", "tech"]} for a, b in zip(TECH_KO, SPORT_KO_V, strict=False)
    ]
    rows += [{"text": "오늘 날씨 맑음", "labels": []}]
    out = tmp_path / "ml"
    report = train_classifier(
        _write(tmp_path / "ml.jsonl", rows),
        out,
        epochs=10,
        batch_size=16,
        learning_rate=3e-3,
        vocab_size=300,
        hidden_size=32,
        num_layers=1,
        num_heads=2,
        threads=1,
    )
    assert report.multi_label and report.labels == ["sports", "tech"]
    model = AutoModelForSequenceClassification.from_pretrained(str(out), local_files_only=True)
    assert model.config.problem_type == "multi_label_classification"
    backend = TransformersBackend(str(out), negative_labels=())
    p = backend.predict(["삼성전자 신제품 공개", "손흥민 결승골 폭발"])
    assert all(0.0 <= v <= 1.0 for row in p for v in row.values())  # sigmoid, independent labels
    assert p[0]["tech"] > p[1]["tech"] and p[1]["sports"] > p[0]["sports"]


def test_read_jsonl_rejects_bad_rows(tmp_path: Path) -> None:
    bad = {
        "no_label.jsonl": [{"text": "a"}],
        "no_text.jsonl": [{"label": "x"}],
        "mixed.jsonl": [{"text": "a", "label": "x"}, {"text": "b", "labels": ["y"]}],
        "one_class.jsonl": [{"text": "a", "label": "x"}, {"text": "b", "label": "x"}],
        "bad_weight.jsonl": [{"text": "a", "label": "x", "weight": 0}, {"text": "b", "label": "y"}],
    }
    for name, rows in bad.items():
        with pytest.raises(TrainError):
            read_jsonl(_write(tmp_path / name, rows))
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(TrainError, match="no labelled rows"):
        read_jsonl(tmp_path / "empty.jsonl")
    ok = read_jsonl(
        _write(tmp_path / "ok.jsonl", [{"text": " a ", "label": 1, "lang": "ko"}, {"text": "b", "label": 0}])
    )
    assert ok.weights == [1.0, 1.0]
    assert ok.texts == ["a", "b"] and ok.label_names == ["0", "1"] and ok.extra[0] == {"lang": "ko"}


def test_build_relevance_dataset_formats_and_no_leak(tmp_path: Path) -> None:
    """A miniature ../shared/data in the real file formats (our own titles)."""
    shared = tmp_path / "shared"
    (shared / "klue_ynat_ko").mkdir(parents=True)
    ko = [("IT과학", f"반도체 신기술 {i}호 공개") for i in range(30)] + [
        ("스포츠", f"프로야구 {i}차전 승리") for i in range(30)
    ]
    ko.append(("정치", '"국회 본회의 개최\t"'))  # pandas quoting, as in the real TSV
    (shared / "klue_ynat_ko" / "ynat_train.tsv").write_text(
        "label\ttext\n" + "".join(f"{lab}\t{t}\n" for lab, t in ko), encoding="utf-8"
    )
    (shared / "thucnews_titles_zh").mkdir()
    (shared / "thucnews_titles_zh" / "class.txt").write_text("finance\nscience\n", encoding="utf-8")
    (shared / "thucnews_titles_zh" / "dev.txt").write_text(
        "".join(f"芯片研发第{i}代\t1\n股市上涨{i}点\t0\n" for i in range(20)), encoding="utf-8"
    )
    (shared / "tnews_fewclue_zh").mkdir()
    tn = lambda s, d: json.dumps({"label": 1, "label_desc": d, "sentence": s}, ensure_ascii=False)  # noqa: E731
    (shared / "tnews_fewclue_zh" / "train_few_all.json").write_text(
        tn("手机新品发布", "news_tech")
        + "\n"
        + tn("球队夺冠", "news_sports")
        + "\n"
        + tn("重复标题", "news_car")
        + "\n",
        encoding="utf-8",
    )
    (shared / "tnews_fewclue_zh" / "dev_few_all.json").write_text(
        tn("云计算大会", "news_tech") + "\n" + tn("重复标题", "news_car") + "\n", encoding="utf-8"
    )
    (shared / "sci_news_sum_kr50" / "data").mkdir(parents=True)
    (shared / "sci_news_sum_kr50" / "data" / "01.json").write_text(
        json.dumps({"title": "우주망원경 새 행성 발견", "sentences": []}, ensure_ascii=False),
        encoding="utf-8",
    )

    stats = build_relevance_dataset(shared, tmp_path / "rel.jsonl")
    train = [json.loads(x) for x in (tmp_path / "rel.jsonl").read_text(encoding="utf-8").splitlines()]
    held = [json.loads(x) for x in Path(stats.heldout_path).read_text(encoding="utf-8").splitlines()]
    assert stats.heldout_path.endswith("rel.heldout.jsonl")
    assert {r["label"] for r in train} == {"tech", "other"}
    assert not {r["text"] for r in train} & {r["text"] for r in held}  # "重复标题" stays held out only
    assert stats.dropped_overlap == 1
    assert {r["source"] for r in held} >= {"tnews", "sci_news_kr50"}
    assert sum(stats.train["klue_ynat"].values()) + sum(stats.heldout.get("klue_ynat", {}).values()) == 61
    assert any(r["text"] == "국회 본회의 개최" for r in train + held)
    by_text = {r["text"]: r["label"] for r in train + held}
    assert by_text["芯片研发第3代"] == "tech" and by_text["股市上涨3点"] == "other"
    assert by_text["手机新品发布"] == "tech" and by_text["우주망원경 새 행성 발견"] == "tech"
    # Chinese training rows carry a loss weight (fewer of them); Korean and held-out rows don't.
    assert {r.get("weight") for r in train if r["lang"] == "zh"} == {4.0}
    assert all("weight" not in r for r in held + [r for r in train if r["lang"] == "ko"])


def test_train_command_cli(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from newsmon.nlp.training.cli import train_command

    rows = [{"text": t, "label": "tech"} for t in _sentences(TECH_ZH, TECH_ZH_V)]
    rows += [{"text": t, "label": "other"} for t in _sentences(SPORT_ZH, SPORT_ZH_V)]
    data = _write(tmp_path / "d.jsonl", rows)
    app = typer.Typer()
    app.command("train")(train_command)
    app.command("noop")(lambda: None)  # two commands, so "train" is addressed by name as in newsmon
    args = [
        "train",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "m"),
        "--epochs",
        "1",
        "--vocab-size",
        "200",
        "--hidden-size",
        "16",
        "--layers",
        "1",
        "--heads",
        "2",
        "--threads",
        "1",
        "--eval",
        str(data),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m" / "model.safetensors").is_file()
    assert "F1" in result.output
    missing = CliRunner().invoke(
        app, ["train", "--data", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "x")]
    )
    assert missing.exit_code != 0


def test_fine_tune_a_local_checkpoint(tiny_model: tuple[Path, list[str], list[str]], tmp_path: Path) -> None:
    """--base-model: a local save_pretrained folder gets a new head for new labels."""
    from transformers import AutoModelForSequenceClassification

    base, _, _ = tiny_model
    rows = [{"text": t, "label": "ai"} for t in _sentences(TECH_KO, TECH_KO_V)]
    rows += [{"text": t, "label": "sport"} for t in _sentences(SPORT_KO, SPORT_KO_V)]
    rows += [{"text": t, "label": "misc"} for t in ["오늘 날씨 맑음", "주말 나들이 인파"]]
    out = tmp_path / "ft"
    report = train_classifier(
        _write(tmp_path / "ft.jsonl", rows),
        out,
        base_model=str(base),
        epochs=2,
        learning_rate=1e-3,
        threads=1,
    )
    assert report.base_model == str(base) and report.labels == ["ai", "misc", "sport"]
    model = AutoModelForSequenceClassification.from_pretrained(str(out), local_files_only=True)
    assert (
        model.config.num_labels == 3 and model.config.hidden_size == 32
    )  # the base's size, not the defaults
