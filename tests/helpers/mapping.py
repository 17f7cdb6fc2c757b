"""The index mapping's field types, for tests that check fields by name."""

from __future__ import annotations

from typing import Any

from newsmon.index.docs import mapping_spec


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
