"""Errors that the CLI reports as one clear line (no traceback)."""


class NewsmonError(Exception):
    """A user-facing failure; ``str(err)`` is the single line shown to the user."""


class ConfigError(NewsmonError):
    """A setting has a bad value."""


class ESNodeError(NewsmonError):
    """The local Elasticsearch node could not be built, started or stopped."""
