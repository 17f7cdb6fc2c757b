"""Kibana saved objects (the ``*.ndjson`` files next to this module) and their import.

The objects refer to the data views ``newsmon-articles`` and ``newsmon-runs`` (the crawl-health
index); for another index prefix the data views' ids and titles are rewritten to
``{prefix}-articles`` and ``{prefix}-runs`` on the way out.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

from newsmon.errors import NewsmonError

KIBANA_DIR = Path(__file__).parent
DATA_VIEWS = ("newsmon-articles", "newsmon-runs")  # ids and titles of the data views in the files


def saved_objects(prefix: str = "newsmon") -> list[dict[str, Any]]:
    """Every saved object in ``index/kibana``, pointed at ``{prefix}-articles`` and ``{prefix}-runs``."""
    views = {view: prefix + view.removeprefix("newsmon") for view in DATA_VIEWS}
    objects = []
    for path in sorted(KIBANA_DIR.glob("*.ndjson")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            obj = json.loads(line)
            if obj["type"] == "index-pattern" and obj["id"] in views:
                obj["id"] = obj["attributes"]["title"] = views[obj["id"]]
            for ref in obj.get("references", []):
                ref["id"] = views.get(ref["id"], ref["id"])
            objects.append(obj)
    return objects


def _multipart(field: str, filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        "Content-Type: application/ndjson\r\n\r\n"
    ).encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def tls_context(ca_certs: Path | None = None) -> ssl.SSLContext:
    """The system trust store, plus the Elasticsearch CA file when one is set.

    Added, not instead: Kibana may sit behind a public certificate (a reverse proxy) while only
    Elasticsearch uses the cluster's own CA, or behind that CA as in ``docker/``.
    """
    context = ssl.create_default_context()
    if ca_certs:
        context.load_verify_locations(cafile=str(ca_certs))
    return context


def kibana_import(
    url: str,
    space: str | None = None,
    *,
    prefix: str = "newsmon",
    overwrite: bool = True,
    user: str | None = None,
    password: str | None = None,
    ca_certs: Path | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """POST the saved objects to Kibana's ``_import`` API; returns Kibana's JSON answer."""
    endpoint = url.rstrip("/") + (f"/s/{quote(space)}" if space else "") + "/api/saved_objects/_import"
    if overwrite:
        endpoint += "?overwrite=true"
    ndjson = "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in saved_objects(prefix))
    body, content_type = _multipart("file", "newsmon.ndjson", ndjson.encode())
    headers = {"kbn-xsrf": "newsmon", "Content-Type": content_type}  # Kibana refuses writes without kbn-xsrf
    if user:
        token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    request = urllib.request.Request(endpoint, data=body, headers=headers, method="POST")
    context = tls_context(ca_certs)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:
            answer: dict[str, Any] = json.load(resp)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:300]
        raise NewsmonError(f"Kibana import failed: HTTP {exc.code} from {endpoint}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise NewsmonError(f"cannot reach Kibana at {url}: {getattr(exc, 'reason', exc)}") from None
    if not answer.get("success"):
        errors = answer.get("errors") or []
        first = errors[0] if errors else {}
        raise NewsmonError(
            f"Kibana imported {answer.get('successCount', 0)} objects and refused {len(errors)}, "
            f"e.g. {first.get('type')} {first.get('id')}: {first.get('error')}"
        )
    return answer
