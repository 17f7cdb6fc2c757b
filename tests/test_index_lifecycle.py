"""Index lifecycle: the ILM policy for production clusters, the scheduled rollover for clusters
without ILM, and searches through the alias across generations, on the suite's real node."""

from __future__ import annotations

import json

import pytest
from elasticsearch import Elasticsearch
from helpers.articles import make_article
from typer.testing import CliRunner

import newsmon.index.lifecycle
from newsmon.errors import ConfigError, NewsmonError
from newsmon.index.bulk import index_articles
from newsmon.index.client import articles_alias
from newsmon.index.lifecycle import (
    ROLLOVER_CONDITIONS,
    ilm_policy,
    lifecycle_settings,
    rollover,
    scheduled_rollover,
)
from newsmon.index.search import Filters, article_stats, search_articles
from newsmon.index.setup import ANALYZER_PLUGINS, check_analyzers, nodes_without, setup_index
from newsmon.settings import Settings, load_settings


def _actions(policy: dict) -> set[str]:
    return {action for phase in policy["phases"].values() for action in phase["actions"]}


def test_ilm_policy_rolls_over_warms_and_deletes_only_when_asked() -> None:
    settings = load_settings()
    policy = ilm_policy(settings)
    assert policy["phases"]["hot"]["actions"]["rollover"] == ROLLOVER_CONDITIONS
    assert {"max_primary_shard_size", "max_age"} <= set(ROLLOVER_CONDITIONS)
    assert "warm" in policy["phases"] and "delete" not in policy["phases"]
    # Old generations still take updates of changed articles: nothing may make them read-only.
    assert not _actions(policy) & {"readonly", "forcemerge", "shrink", "freeze"}
    keep = ilm_policy(settings.model_copy(update={"es_ilm_delete_after": "730d"}))
    assert keep["phases"]["delete"] == {"min_age": "730d", "actions": {"delete": {}}}


def test_the_template_attaches_the_policy_only_with_ilm_on() -> None:
    assert lifecycle_settings(load_settings()) == {}
    on = load_settings(es_ilm=True, index_prefix="acme")
    assert lifecycle_settings(on) == {
        "index.lifecycle.name": "acme-articles",
        "index.lifecycle.rollover_alias": "acme-articles",
    }


def test_delete_after_must_be_days() -> None:
    assert load_settings(es_ilm_delete_after="365d").es_ilm_delete_after == "365d"
    with pytest.raises(ConfigError, match="NEWSMON_ES_ILM_DELETE_AFTER: must be a number of days"):
        load_settings(es_ilm_delete_after="1y")


@pytest.mark.integration
def test_searches_see_every_generation_after_a_rollover(es: Settings, client: Elasticsearch) -> None:
    setup_index(es, client)
    index_articles([make_article(i) for i in range(3)], es, client)
    second = rollover(es, client=client)
    assert second == f"{articles_alias(es)}-v1-000002"
    index_articles([make_article(i) for i in range(3, 7)], es, client)
    client.indices.refresh(index=articles_alias(es))
    by_index = client.search(index=articles_alias(es), size=0, aggs={"g": {"terms": {"field": "_index"}}})[
        "aggregations"
    ]["g"]["buckets"]
    assert {b["key"]: b["doc_count"] for b in by_index} == {f"{articles_alias(es)}-v1-000001": 3, second: 4}
    # What analysts use (the CLI's search and stats, and Kibana's data view) reads the alias.
    assert search_articles(es, "수출통제", size=10).total == 7
    assert article_stats(es, "", Filters()).total == 7
    assert articles_alias(es).endswith("-articles")  # the data view's title is the same alias


@pytest.mark.integration
def test_scheduled_rollover_waits_for_its_conditions(
    es: Settings, client: Elasticsearch, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_index(es, client)
    assert scheduled_rollover(es, client) == {"rolled_over": False, "new_index": None}
    assert scheduled_rollover(es.model_copy(update={"es_ilm": True}), client) == {"managed_by": "ilm"}
    # Conditions small enough to hold: three documents in a generation allowed two.
    monkeypatch.setattr(newsmon.index.lifecycle, "ROLLOVER_CONDITIONS", {"max_docs": 2, "min_docs": 1})
    index_articles([make_article(i) for i in range(3)], es, client)
    client.indices.refresh(index=articles_alias(es))
    done = scheduled_rollover(es, client)
    assert done == {"rolled_over": True, "new_index": f"{articles_alias(es)}-v1-000002"}
    # The new generation is empty: min_docs keeps it from rolling over again.
    assert scheduled_rollover(es, client) == {"rolled_over": False, "new_index": None}


@pytest.mark.integration
def test_index_rollover_command(es: Settings, client: Elasticsearch, monkeypatch: pytest.MonkeyPatch) -> None:
    from newsmon.cli import app
    from newsmon.settings import get_settings

    setup_index(es, client)
    for name, value in (("ES_URL", es.es_url), ("INDEX_PREFIX", es.index_prefix), ("DATA_DIR", es.data_dir)):
        monkeypatch.setenv(f"NEWSMON_{name}", str(value))
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["index", "rollover", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"rolled_over": False, "new_index": None}


@pytest.mark.integration
def test_ilm_on_a_cluster_without_ilm_is_one_line(es: Settings, client: Elasticsearch) -> None:
    with pytest.raises(NewsmonError, match=r"NEWSMON_ES_ILM is on, but .* has no index lifecycle management"):
        setup_index(es.model_copy(update={"es_ilm": True}), client)
    assert not client.indices.exists_alias(name=articles_alias(es))  # nothing half set up


@pytest.mark.integration
def test_a_missing_analysis_plugin_is_named(es: Settings, client: Elasticsearch) -> None:
    check_analyzers(es, client, ANALYZER_PLUGINS)  # the local node has nori and smartcn
    with pytest.raises(NewsmonError, match="no `kuromoji` analyzer: install the analysis-kuromoji plugin"):
        check_analyzers(es, client, {"kuromoji": "analysis-kuromoji"})


def test_nodes_missing_a_plugin_the_others_have_are_named() -> None:
    def node(name: str, *plugins: str) -> dict:
        return {"name": name, "plugins": [{"name": p} for p in plugins]}

    answer = {"nodes": {"a1": node("es01", "analysis-nori"), "b2": node("es02"), "c3": node("es03")}}
    assert nodes_without("analysis-nori", answer) == ["es02", "es03"]
    everywhere = {"nodes": {"a1": node("es01", "analysis-nori"), "b2": node("es02", "analysis-nori")}}
    assert nodes_without("analysis-nori", everywhere) == []
    # No node lists it (the local node's own plugin, a bundled distribution): _analyze decides.
    assert nodes_without("analysis-nori", {"nodes": {"a1": node("local", "newsmon-local")}}) == []
