"""index/mapping.json: the fields issue #5 asks for, with analyzers the local node and the
production distribution (analysis-nori + analysis-smartcn) both have."""

from __future__ import annotations

from helpers.articles import NOW, make_article
from helpers.mapping import FIELDS

from newsmon.index.docs import mapping_spec, to_doc

# Names both the local node's analysis plugin and production provide, plus ES built-ins.
ALLOWED_ANALYSIS = {"nori", "nori_tokenizer", "smartcn", "smartcn_tokenizer", "cjk_bigram", "cjk_width"}
BUILT_IN = {"standard", "lowercase", "custom", "keyword", "whitespace", "simple"}


def test_issue_fields_and_types() -> None:
    keyword = [
        "source",
        "site",
        "lang",
        "topics",
        "entities",
        "cluster_id",
        "authors",
        "url",
        "canonical_url",
    ]
    keyword += ["tokens", "keywords", "extractor", "analyzer", "content_hash", "topic_scores.label"]
    assert {f: FIELDS[f] for f in keyword} == dict.fromkeys(keyword, "keyword")
    dates = ["published", "first_seen", "last_seen", "indexed", "date", "fetched"]
    assert {f: FIELDS[f] for f in dates} == dict.fromkeys(dates, "date")
    for name in ("title", "text"):
        assert [FIELDS[f"{name}{sub}"] for sub in ("", ".ko", ".zh", ".cjk")] == ["text"] * 4
    assert FIELDS["topic_scores"] == "nested"
    assert FIELDS["alert.export_controls"] == "boolean"
    assert {FIELDS[f] for f in ("alert.score", "topic_scores.score", "relevance")} == {"float"}


def test_language_subfields_use_the_right_analyzers() -> None:
    spec = mapping_spec()
    analyzers = spec["settings"]["analysis"]["analyzer"]
    text = spec["mappings"]["properties"]["text"]
    assert text["analyzer"] == "standard"
    assert analyzers[text["fields"]["ko"]["analyzer"]]["type"] == "nori"
    assert analyzers[text["fields"]["zh"]["analyzer"]]["type"] == "smartcn"
    assert "cjk_bigram" in analyzers[text["fields"]["cjk"]["analyzer"]]["filter"]
    title = spec["mappings"]["properties"]["title"]
    assert {k: v["analyzer"] for k, v in title["fields"].items()} == {
        k: v["analyzer"] for k, v in text["fields"].items()
    }
    assert text["index_options"] == "offsets"  # highlighting without re-analysing the text


def test_analysis_uses_only_names_both_nodes_have() -> None:
    used: set[str] = set()
    for analyzer in mapping_spec()["settings"]["analysis"]["analyzer"].values():
        used.add(analyzer["type"])
        used.add(analyzer.get("tokenizer", "standard"))
        used.update(analyzer.get("filter", []))
    assert used <= ALLOWED_ANALYSIS | BUILT_IN


def test_every_document_field_is_mapped() -> None:
    """``dynamic: false`` would silently leave an unmapped field unsearchable."""
    doc = to_doc(make_article(), first_seen=None, indexed=NOW)
    for key, value in doc.items():
        assert key in FIELDS, key
        for sub in value if isinstance(value, list) else [value]:
            if isinstance(sub, dict):
                assert {f"{key}.{k}" for k in sub} <= FIELDS.keys()
