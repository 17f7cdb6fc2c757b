"""newsmon: news monitoring for the Korean and Chinese tech press."""

__version__ = "0.1.0"
