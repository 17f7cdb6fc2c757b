"""Helpers the test modules share: a real SMTP sink, article factories, and settings for a
test's own slice of the ES node."""
