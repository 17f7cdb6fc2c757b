"""Errors that the CLI reports as one clear line (no traceback)."""


class NewsmonError(Exception):
    """A user-facing failure; ``str(err)`` is the single line shown to the user."""


class ConfigError(NewsmonError):
    """A setting has a bad value."""


class ESNodeError(NewsmonError):
    """The local Elasticsearch node could not be built, started or stopped."""


def one_line(exc: BaseException, es_url: str) -> str | None:
    """The line a user is shown for ``exc``: a NewsmonError's own, or one for an Elasticsearch
    failure that no caller explained; None for anything else (a bug, whose traceback counts)."""
    from elastic_transport import TransportError
    from elasticsearch import ApiError

    if isinstance(exc, NewsmonError):
        return str(exc)
    if isinstance(exc, TransportError):
        return f"cannot reach Elasticsearch at {es_url}: {_root_cause(exc)}"
    if isinstance(exc, ApiError):
        return f"Elasticsearch at {es_url} refused the request: {exc.meta.status} {exc.message}"
    return None


def _root_cause(exc: BaseException) -> str:
    """The innermost OS-level reason ('Connection refused') instead of urllib3's nesting."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    return " ".join(str(exc).split())[:200]
