"""Five reports of one export-control action by five outlets in Korean, Chinese and English, each
written in its own words (not copies of each other), and a later, different action by the same
agency: what story clustering must put into one story and keep apart from the other."""

from __future__ import annotations

# (outlet, lang, published, title, text)
ENTITY_LISTING = [
    (
        "ko-daily",
        "ko",
        "2024-12-03T01:00:00+09:00",
        "미 상무부, 중국 기업 140곳 수출통제 명단 추가…HBM 대중 수출도 막아",
        "미국 상무부 산업안보국(BIS)이 2일(현지시간) 중국 반도체 장비업체 등 140곳을 수출통제 명단"
        "(Entity List)에 올렸다. 고대역폭메모리(HBM)의 중국 수출도 통제 대상에 새로 넣었다. "
        "나우라와 피오트렉 등 중국 장비업체가 포함됐다. 미국 정부는 중국의 첨단 반도체 자립을 "
        "늦추기 위한 조치라고 설명했다.",
    ),
    (
        "ko-economy",
        "ko",
        "2024-12-03T07:30:00+09:00",
        "美, 中 반도체 기업 140곳 제재 명단에…HBM까지 수출통제",
        "미국 정부가 중국 반도체 산업을 겨냥한 새 수출통제를 2일 발표했다. 상무부는 중국 기업 140곳을 "
        "엔티티 리스트에 추가하고 HBM과 반도체 제조장비 24종의 대중 수출을 제한했다. 삼성전자와 "
        "SK하이닉스의 HBM 중국 판매에도 영향이 예상된다.",
    ),
    (
        "zh-portal",
        "zh",
        "2024-12-03T09:00:00+08:00",
        "美国商务部将140家中国实体列入出口管制清单 并限制HBM出口",
        "美国商务部工业与安全局（BIS）12月2日宣布，将140家中国实体列入实体清单，其中包括北方华创、"
        "拓荆科技等半导体设备企业，同时对高带宽存储器（HBM）和24种芯片制造设备实施新的出口管制。"
        "中国商务部表示坚决反对。",
    ),
    (
        "zh-hk",
        "zh",
        "2024-12-03T12:00:00+08:00",
        "美國再出手 140家中企列入實體清單 高頻寬記憶體受管制",
        "美國商務部12月2日公布新一輪對華晶片出口管制，把140家中國企業列入實體清單，涉及多家半導體"
        "設備製造商，並首次管制高頻寬記憶體（HBM）對華出口。北京批評美方將經貿問題政治化。",
    ),
    (
        "en-wire",
        "en",
        "2024-12-02T20:00:00+00:00",
        "US adds 140 Chinese entities to Entity List, curbs HBM exports",
        "The US Commerce Department's Bureau of Industry and Security on December 2 added 140 entities, "
        "most of them Chinese chip equipment makers such as Naura and Piotech, to the Entity List and "
        "placed new export controls on high-bandwidth memory and 24 types of chipmaking tools.",
    ),
]

# A different action by the same agency, weeks later: a story (and an alert) of its own.
LATER_ACTION = (
    "en-wire",
    "en",
    "2025-01-13T20:00:00+00:00",
    "US unveils AI diffusion rule capping GPU exports to most countries",
    "The Commerce Department on January 13 issued an interim final rule that sorts countries into "
    "three tiers and caps how many advanced AI chips can be exported to most of them, with license "
    "exceptions for close allies.",
)
