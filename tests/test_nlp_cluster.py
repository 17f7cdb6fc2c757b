"""Story clustering: copies join, different stories stay apart, ids survive restarts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from newsmon.errors import NewsmonError
from newsmon.nlp.cluster import StoryClusters
from newsmon.nlp.training.devset import cluster_testset, pair_scores

STORY = (
    "미국 상무부 산업안보국은 15일 중국 인공지능 기업 20곳을 우려거래자 목록에 추가했다고 밝혔다. "
    "이번 조치로 미국 기업은 허가 없이 이들 기업에 반도체와 관련 장비를 수출할 수 없다. "
    "상무부는 이들 기업이 군사 현대화를 지원했다고 설명했다. 중국 외교부는 즉각 반발했다. "
    "업계는 엔비디아와 AMD 등 미국 반도체 기업의 중국 매출이 줄어들 것으로 내다봤다."
)
OTHER = (
    "삼성전자는 15일 차세대 고대역폭메모리 HBM4 양산을 시작했다고 밝혔다. 새 제품은 전 세대보다 "
    "대역폭이 두 배 늘었고 전력 효율도 40% 좋아졌다. 회사는 주요 인공지능 반도체 고객사에 샘플을 "
    "공급하고 있으며 하반기부터 본격 출하할 계획이라고 설명했다. 업계는 수요가 계속 늘 것으로 본다."
)


def test_copies_join_and_other_stories_stay_apart() -> None:
    clusters = StoryClusters()
    first = clusters.assign("a", "美, 中 AI 기업 20곳 우려거래자 추가", STORY)
    assert (
        clusters.assign(
            "b", "미국, 중국 기업 20곳 수출통제 명단에", "(서울=뉴스) " + STORY + " 무단전재 금지"
        )
        == first
    )
    assert clusters.assign("c", "[종합] 우려거래자 추가", STORY[: len(STORY) // 2]) == first
    assert clusters.assign("d", "삼성전자 HBM4 양산", OTHER) == "d"
    assert clusters.assign("a", "anything", "else") == first  # a known id keeps its cluster


def test_cluster_ids_survive_a_restart(tmp_path: Path) -> None:
    with StoryClusters(tmp_path) as clusters:
        first = clusters.assign("a", "t", STORY)
    reloaded = StoryClusters(tmp_path)
    assert len(reloaded) == 1
    assert reloaded.assign("b", "t2", STORY + " 추가 취재.") == first
    assert reloaded.assign("a", "", "") == first


def test_the_index_keeps_only_the_most_recent_documents() -> None:
    clusters = StoryClusters(max_docs=1)
    clusters.assign("a", "t", STORY)
    clusters.assign("b", "t", OTHER)
    assert len(clusters) == 1
    assert clusters.assign("c", "t", STORY) == "c"  # 'a' was evicted


def test_a_state_file_of_another_format_or_broken_is_refused(tmp_path: Path) -> None:
    np.savez(
        tmp_path / "clusters.npz",
        version=np.array(99),
        scheme=np.array("x"),
        ids=np.array([], dtype=str),
        clusters=np.array([], dtype=str),
        hashvalues=np.zeros((0, 128), dtype=np.uint32),
    )
    with pytest.raises(NewsmonError, match="another format"):
        StoryClusters(tmp_path)
    (tmp_path / "clusters.npz").write_bytes(b"garbage")
    with pytest.raises(NewsmonError, match="unreadable"):
        StoryClusters(tmp_path)


@pytest.mark.shared_data
def test_pair_precision_and_recall_on_republished_real_articles(shared_data: Path) -> None:
    docs = cluster_testset(shared_data)
    clusters = StoryClusters()
    predicted = {d.doc_id: clusters.assign(d.doc_id, d.title, d.text) for d in docs}
    precision, recall = pair_scores(predicted, {d.doc_id: d.story for d in docs})
    stories = len({d.story for d in docs})
    print(f"clustering on {len(docs)} docs / {stories} stories: P={precision:.3f} R={recall:.3f}")
    assert precision >= 0.98
    assert recall >= 0.95
