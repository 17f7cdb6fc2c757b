"""The index mappings' field types (articles, crawl health), for tests that check fields by name."""

from __future__ import annotations

from typing import Any

from newsmon.index.docs import mapping_spec
from newsmon.index.runs import runs_spec


def field_types(properties: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Every field path (multi-fields and object members included) -> its type."""
    out: dict[str, str] = {}
    for name, spec in properties.items():
        path = prefix + name
        out[path] = spec.get("type", "object")
        out.update(field_types(spec.get("properties", {}), path + "."))
        out.update(field_types(spec.get("fields", {}), path + "."))
    return out


FIELDS = field_types(mapping_spec()["mappings"]["properties"])

RUNS_FIELDS = field_types(runs_spec()["mappings"]["properties"])
# Each data view of the Kibana files -> the field types of the index it shows.
FIELDS_BY_VIEW = {"newsmon-articles": FIELDS, "newsmon-runs": RUNS_FIELDS}
