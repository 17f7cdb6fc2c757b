"""Index template, versioned indices and the write alias.

Readers and writers only ever use the alias ``{prefix}-articles``. Behind it sit indices
named ``{prefix}-articles-v{N}-{seq}``: ``N`` is the ``version`` in ``index/mapping.json``
and the numeric ``seq`` tail lets the rollover API add ``-000002``, ... (see ``rollover``).

A mapping change that existing indices can take (a new field) only needs the file edited:
``setup_index`` puts it on the live indices. Anything else (analyzers, field types) needs
the version bumped: ``setup_index`` then creates ``-v{N+1}-000001``, copies every document
over (point-in-time paging + bulk; the local node has no ``_reindex``) while the old indices
are write-blocked (indexers spool meanwhile, nothing is lost), and switches the alias in one
atomic step. The old indices are kept, write-blocked, until someone deletes them.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import BadRequestError, ConnectionError, ConnectionTimeout, Elasticsearch, NotFoundError

from newsmon.errors import NewsmonError
from newsmon.index.client import articles_alias, es_client
from newsmon.index.docs import mapping_spec
from newsmon.index.lifecycle import lifecycle_settings, put_policy
from newsmon.index.ops import ESUnavailable, Retry, iter_pages, send_bulk
from newsmon.index.runs import setup_runs_index
from newsmon.settings import Settings

TEMPLATE_PRIORITY = 200
# Analyzer types of index/mapping.json that Elasticsearch's default distribution lacks, and the
# official plugin that provides each (the local node registers the same names itself).
ANALYZER_PLUGINS = {"nori": "analysis-nori", "smartcn": "analysis-smartcn"}
_VERSION_RE = re.compile(r"-articles-v(\d+)-\d+$")


@dataclass
class SetupResult:
    alias: str
    write_index: str
    version: int
    template_updated: bool = False  # the template was missing or differed from mapping.json
    created: bool = False  # a first index was created behind a new alias
    mapping_updated: bool = False  # compatible mapping changes were put on live indices
    migrated_from: list[str] = field(default_factory=list)  # old-version indices, now write-blocked
    copied: int = 0  # documents copied into the new version's index
    runs_index: str = ""  # the write index of the crawl-health index (index/runs.py)


def index_name(prefix: str, version: int, seq: int = 1) -> str:
    return f"{prefix}-articles-v{version}-{seq:06d}"


def _version_of(index: str) -> int:
    match = _VERSION_RE.search(index)
    if not match:
        raise NewsmonError(f"index {index} behind the articles alias is not named *-articles-v<N>-<seq>")
    return int(match.group(1))


def setup_index(
    settings: Settings, client: Elasticsearch | None = None, *, spec: dict[str, Any] | None = None
) -> SetupResult:
    """Create or update the template, the index and the alias; idempotent.

    ``spec`` replaces ``index/mapping.json`` (tests use it to exercise a version change).
    """
    client = client or es_client(settings)
    spec = spec or mapping_spec()
    try:
        check_analyzers(settings, client, _plugins_needed(spec))
        if settings.es_ilm:
            put_policy(settings, client)
        result = _Setup(settings, client, spec).run()
        result.runs_index = setup_runs_index(settings, client)
        return result
    except (ConnectionError, ConnectionTimeout) as exc:
        raise ESUnavailable(f"cannot reach Elasticsearch at {settings.es_url}: {exc}") from exc


def _plugins_needed(spec: dict[str, Any]) -> dict[str, str]:
    analyzers = spec["settings"].get("analysis", {}).get("analyzer", {}).values()
    types = {a["type"] for a in analyzers}
    return {t: plugin for t, plugin in ANALYZER_PLUGINS.items() if t in types}


def nodes_without(plugin: str, nodes_plugins: dict[str, Any]) -> list[str]:
    """Names of the nodes that lack ``plugin`` while other nodes have it (a ``_nodes/plugins``
    answer): index shards on those nodes could not be allocated. Empty when every node or no
    node has it (the local node provides the analyzers through its own plugin)."""
    nodes = nodes_plugins.get("nodes", {}).values()
    has = [plugin in {p["name"] for p in node.get("plugins", [])} for node in nodes]
    if all(has) or not any(has):
        return []
    return sorted(node.get("name", "?") for node, ok in zip(nodes, has, strict=True) if not ok)


def check_analyzers(settings: Settings, client: Elasticsearch, plugins: dict[str, str]) -> None:
    """Fail in one line, naming the plugin to install, when the cluster lacks an analyzer type
    or some of its nodes lack the plugin (instead of index creation failing with "Unknown
    analyzer type [nori]", or shards that cannot be allocated)."""
    # A user without the `monitor` privilege gets 403 here: then only _analyze checks.
    nodes_plugins = client.options(ignore_status=403).nodes.info(
        metric="plugins", filter_path="nodes.*.name,nodes.*.plugins.name"
    )
    for analyzer, plugin in plugins.items():
        missing_on = nodes_without(plugin, nodes_plugins.body)
        if missing_on:
            raise NewsmonError(
                f"Elasticsearch at {settings.es_url}: nodes {', '.join(missing_on)} lack the {plugin} "
                f"plugin that the other nodes have: install it there"
            )
        try:
            client.indices.analyze(analyzer=analyzer, text="newsmon")
        except BadRequestError as exc:
            raise NewsmonError(
                f"Elasticsearch at {settings.es_url} has no `{analyzer}` analyzer: install the "
                f"{plugin} plugin on every node (managed clusters: enable {plugin})"
            ) from exc


class _Setup:
    def __init__(self, settings: Settings, client: Elasticsearch, spec: dict[str, Any]) -> None:
        self.settings = settings
        self.client = client
        self.alias = articles_alias(settings)
        self.version: int = spec["version"]
        self.spec = spec
        digest = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
        self.meta = {"newsmon_mapping_version": self.version, "newsmon_mapping_hash": digest}
        self.result = SetupResult(alias=self.alias, write_index="", version=self.version)
        # The lifecycle is the template's business, not the mapping's: turning ILM on or off
        # updates the template (and the write index's settings) without a mapping update.
        self.lifecycle = lifecycle_settings(settings)
        self.index_settings = {**spec["settings"], **self.lifecycle}
        self.template_meta = {**self.meta, "newsmon_lifecycle": self.lifecycle}

    def run(self) -> SetupResult:
        self.result.template_updated = self._put_template()
        current = self._alias_indices()
        if not current:
            self._create_first()
            return self.result
        newest = max(_version_of(i) for i in current)
        if newest > self.version:
            raise NewsmonError(
                f"{self.alias} holds mapping version {newest}, newer than this code's {self.version}"
            )
        if newest == self.version:
            self.result.write_index = next((i for i, w in current.items() if w), max(current))
            self._update_mapping()
            if self.lifecycle and self.result.template_updated:
                # A generation created before ILM was turned on joins the policy too.
                self.client.indices.put_settings(index=self.result.write_index, settings=self.lifecycle)
        else:
            self._migrate(sorted(current))
        return self.result

    def _put_template(self) -> bool:
        name = self.alias
        try:
            found = self.client.indices.get_index_template(name=name)["index_templates"]
            old_meta = found[0]["index_template"].get("_meta", {}) if found else {}
        except NotFoundError:
            old_meta = {}
        if old_meta == self.template_meta:
            return False
        self.client.indices.put_index_template(
            name=name,
            index_patterns=[f"{self.alias}-v*"],
            priority=TEMPLATE_PRIORITY,
            version=self.version,
            meta=self.template_meta,
            template={"settings": self.index_settings, "mappings": self._mappings()},
        )
        return True

    def _mappings(self) -> dict[str, Any]:
        return {**self.spec["mappings"], "_meta": self.meta}

    def _alias_indices(self) -> dict[str, bool]:
        """Indices behind the alias -> whether each is the write index."""
        try:
            found = self.client.indices.get_alias(name=self.alias)
        except NotFoundError:
            return {}
        return {i: bool(a["aliases"][self.alias].get("is_write_index")) for i, a in found.items()}

    def _create_first(self) -> None:
        if self.client.indices.exists(index=self.alias):
            raise NewsmonError(
                f"{self.alias} is a concrete index (auto-created by a stray write?), not an alias: "
                "delete it, then run the setup again"
            )
        name = index_name(self.settings.index_prefix, self.version)
        try:
            self.client.indices.create(index=name, aliases={self.alias: {"is_write_index": True}})
        except BadRequestError as exc:
            if exc.error != "resource_already_exists_exception":
                raise
            # A concurrent setup won the race (or an earlier one died before the alias).
            self.client.indices.update_aliases(
                actions=[{"add": {"index": name, "alias": self.alias, "is_write_index": True}}]
            )
        self.result.write_index = name
        self.result.created = True

    def _update_mapping(self) -> None:
        index = self.result.write_index
        live = self.client.indices.get_mapping(index=index)[index]["mappings"].get("_meta", {})
        if live == self.meta:
            return
        mappings = self._mappings()
        try:
            self.client.indices.put_mapping(
                index=self.alias,
                properties=mappings["properties"],
                dynamic=mappings.get("dynamic"),
                meta=mappings["_meta"],
            )
        except BadRequestError as exc:
            raise NewsmonError(
                f"the mapping change cannot be applied to {self.alias} in place ({exc.message}): "
                "bump `version` in index/mapping.json to migrate to a new index"
            ) from exc
        self.result.mapping_updated = True

    def _migrate(self, old: list[str]) -> None:
        new = index_name(self.settings.index_prefix, self.version)
        if not self.client.indices.exists(index=new):  # else: an interrupted migration, resumed
            self.client.indices.create(index=new)
        old_list = ",".join(old)
        self.client.indices.put_settings(index=old_list, settings={"index.blocks.write": True})
        try:
            self.result.copied = self._copy(new)
            self.client.indices.refresh(index=new)
            have = self.client.count(index=new)["count"]
            want = self.client.count(index=self.alias)["count"]
            if have != want:
                raise NewsmonError(f"copy to {new} holds {have} documents, {self.alias} has {want}")
        except BaseException:
            self.client.indices.put_settings(index=old_list, settings={"index.blocks.write": False})
            raise
        actions: list[dict[str, Any]] = [{"remove": {"index": i, "alias": self.alias}} for i in old]
        actions.append({"add": {"index": new, "alias": self.alias, "is_write_index": True}})
        self.client.indices.update_aliases(actions=actions)
        self.result.write_index = new
        self.result.migrated_from = old

    def _copy(self, new: str) -> int:
        retry = Retry(attempts=self.settings.es_retries)
        copied = 0
        for hits in iter_pages(self.client, self.alias, {"match_all": {}}, retry):
            ops: list[dict[str, Any]] = []
            for hit in hits:
                ops += [
                    {"index": {"_index": new, "_id": hit["_id"]}},
                    {**hit["_source"], "mapping_version": self.version},
                ]
            failed = [item for item in send_bulk(self.client, ops, retry) if not item.ok]
            if failed:
                raise NewsmonError(
                    f"{len(failed)} documents do not fit the new mapping, e.g. {failed[0].reason}; "
                    f"{self.alias} is unchanged"
                )
            copied += len(hits)
        return copied
