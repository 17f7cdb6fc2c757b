"""Alerts: rules over newly indexed articles, one email per new story (GitHub issue #7)."""

from newsmon.alerts.rules import AlertRule, load_rules
from newsmon.alerts.run import AlertRunStats, run_alerts

__all__ = ["AlertRule", "AlertRunStats", "load_rules", "run_alerts"]
