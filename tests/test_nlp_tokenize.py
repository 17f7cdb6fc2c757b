"""Tokenizers and lexicon: watch terms never split, language detection, data consistency."""

from __future__ import annotations

import pytest

from newsmon.errors import ConfigError
from newsmon.nlp.lang import detect_lang
from newsmon.nlp.lexicon import dictionary_words, lexicon, load_data, norm_key, script_of
from newsmon.nlp.match import lexicon_matcher
from newsmon.nlp.tokenize import get_tokenizers, kiwi_workers
from newsmon.settings import get_settings

# Each alias is placed inside a sentence of the language whose tokenizer reads it, glued to
# the particles and neighbours that would tempt a tokenizer to split or merge it.
KO = "지난주 {}에 대한 보도가 나왔고 {}과 관련된 조치가 이어졌다."
ZH = "据报道，对{}的消息传出后，有关{}的措施随即公布。"
EN = "Reports on {} spread quickly, and measures about {} followed."


def _aliases(script: str) -> list[str]:
    return dictionary_words(script)


def _assert_kept(tokens: list[list[str]], aliases: list[str]) -> None:
    broken = [
        a
        for a, toks in zip(aliases, tokens, strict=True)
        if sum(norm_key(t) == norm_key(a) for t in toks) < 2
    ]
    assert not broken, f"split or merged: {broken}"


def test_every_hangul_and_protected_alias_is_one_kiwi_token() -> None:
    aliases = _aliases("hangul") + _aliases("protected")
    texts = [KO.format(a, a) for a in aliases]
    _assert_kept(get_tokenizers().tokenize_many(texts, ["ko"] * len(texts)), aliases)


def test_every_han_and_protected_alias_is_one_jieba_token() -> None:
    aliases = _aliases("han") + _aliases("protected")
    _assert_kept([get_tokenizers().chinese(ZH.format(a, a)) for a in aliases], aliases)


def test_every_protected_alias_is_one_english_token() -> None:
    aliases = _aliases("protected")
    _assert_kept([get_tokenizers().simple(EN.format(a, a)) for a in aliases], aliases)


def test_watched_terms_survive_real_sentences() -> None:
    tk = get_tokenizers()
    ko = tk.tokenize(
        "美 상무부가 우려거래자 목록에 딥시크를 올리고 H20과 ECCN 3A090 품목의 수출통제를 강화했다", "ko"
    )
    assert {"美 상무부", "우려거래자 목록", "딥시크", "H20", "ECCN 3A090"} <= set(ko)
    assert "수출통제" in {norm_key(t) for t in ko}
    zh = tk.tokenize("美国商务部将深度求索列入实体清单，并对镓、锗两用物项实施出口管制", "zh")
    assert {"美国商务部", "深度求索", "实体清单", "镓", "锗", "两用物项", "出口管制"} <= set(zh)
    en = tk.tokenize("Commerce added DeepSeek to the Entity List under the FDPR.", "en")
    assert {"DeepSeek", "Entity List", "FDPR"} <= set(en)
    assert "the" not in en


def test_korean_tokens_are_content_morphemes_with_lemmas() -> None:
    tokens = get_tokenizers().tokenize("중국이 희토류 무기화를 선언했고 과학자들은 우려했다", "ko")
    assert tokens[:4] == ["중국", "희토류", "무기화", "선언"]  # noun suffixes glued, particles dropped
    assert "과학자" in tokens  # ... but the plural '들' is not glued
    assert "우려" in tokens


def test_short_latin_aliases_match_only_in_their_casing() -> None:
    matcher = lexicon_matcher()
    assert [h.payload.id for h in matcher.find(["ARM", "arm", "Meta", "meta"])] == ["org:arm", "org:meta"]
    assert [h.payload.id for h in matcher.find(["nvidia", "NVIDIA"])] == ["org:nvidia", "org:nvidia"]


def test_alias_scripts() -> None:
    assert script_of("美 상무부") == "protected"
    assert script_of("H20芯片") == "protected"
    assert script_of("화웨이") == "hangul"
    assert script_of("华为") == "han"


def test_lexicon_ids_are_kind_prefixed_and_unique_aliases_per_entry() -> None:
    kinds = {"term", "org", "chip", "equipment", "agency", "model"}
    for entry in lexicon().values():
        assert entry.kind in kinds, entry.id
        assert entry.aliases, entry.id
        if entry.kind == "term":
            assert entry.group in ("control", "material"), entry.id


def test_every_cue_phrase_tokenizes_without_losing_words() -> None:
    """A phrase like '모든 수단' would shrink to '수단' (Sudan) and match the wrong thing."""
    tk = get_tokenizers()
    specs = [
        *load_data("topics.yaml")["topics"].values(),
        *load_data("alert_rules.yaml")["features"].values(),
    ]
    phrases = {p for spec in specs for p in spec.get("phrases", {})}
    lossy = [p for p in sorted(phrases) if norm_key("".join(tk.phrase_tokens(p))) != norm_key(p)]
    assert not lossy


def test_cue_ids_exist_in_the_lexicon() -> None:
    specs = [
        *load_data("topics.yaml")["topics"].values(),
        *load_data("alert_rules.yaml")["features"].values(),
    ]
    for spec in specs:
        assert set(spec.get("entities", {})) <= set(lexicon())


@pytest.mark.parametrize(
    ("text", "hint", "expected"),
    [
        ("미국 상무부가 반도체 수출통제를 강화했다고 밝혔다", None, "ko"),
        ("美国商务部宣布加强对华芯片出口管制措施", None, "zh"),
        ("The Commerce Department tightened chip export controls", None, "en"),
        ("日本政府は半導体製造装置の輸出規制を強化した", None, "ja"),
        ("华为", "zh", "zh"),  # too short to tell: the crawler's hint wins
        ("H20", "ko", "ko"),
        ("", None, None),
    ],
)
def test_detect_lang(text: str, hint: str | None, expected: str | None) -> None:
    assert detect_lang(text, hint) == expected


def test_kiwi_workers_env(monkeypatch: pytest.MonkeyPatch) -> None:
    def workers(value: str | None) -> int:
        if value is None:
            monkeypatch.delenv("NEWSMON_KIWI_WORKERS", raising=False)
        else:
            monkeypatch.setenv("NEWSMON_KIWI_WORKERS", value)
        get_settings.cache_clear()
        return kiwi_workers()

    assert workers("0") == 1  # 0 would disable Kiwi's batch API
    assert workers("2") == 2
    assert workers(None) == -1
    with pytest.raises(ConfigError, match="NEWSMON_KIWI_WORKERS"):
        workers("abc")
