"""Training and evaluation (not imported by the runtime pipeline)."""
