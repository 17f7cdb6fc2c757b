"""Alert rules: the rules file, its validation, and rules as Elasticsearch queries."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from newsmon.alerts.rules import DEFAULT_RULES, AlertRuleError, load_rules, parse_rules
from newsmon.alerts.sample import sample_articles
from newsmon.index.matches import build_query


def test_default_rule_is_immediate_export_controls_in_ko_zh_en() -> None:
    [rule] = load_rules(DEFAULT_RULES)
    assert rule.name == "export-controls"
    assert rule.mode == "immediate"
    assert rule.query.export_controls is True
    assert set(rule.query.languages) == {"ko", "zh", "en"}
    assert rule.recipients == []  # i.e. NEWSMON_ALERT_TO


def _rule(**fields: object) -> dict[str, object]:
    return {"name": "chips", "query": {"terms": ["HBM"]}} | fields


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"rules": [_rule(mode="hourly")]}, "rule 'chips': field 'mode'"),
        ({"rules": [_rule(qurey={})]}, "rule 'chips': field 'qurey': Extra inputs"),
        ({"rules": [_rule(query={"languages": ["korean"]})]}, "rule 'chips': field 'query.languages'"),
        ({"rules": [_rule(query={"min_score": -1})]}, "rule 'chips': field 'query.min_score'"),
        ({"rules": [_rule(query={"terms": [" "]})]}, "rule 'chips': field 'query.terms'"),
        ({"rules": [_rule(query={})]}, "rule 'chips': field 'query': needs at least one criterion"),
        ({"rules": [_rule(recipients=["ops team"])]}, "rule 'chips': field 'recipients'"),
        ({"rules": [_rule(name="Chips Alerts")]}, "rule 'Chips Alerts': field 'name'"),
        ({"rules": [{"query": {"terms": ["x"]}}]}, "rule #1: field 'name': Field required"),
        ({"rules": [_rule(), _rule()]}, "rule 'chips': field 'name': used by another rule"),
        ({"rules": []}, "no rules defined"),
        ({"rule": [_rule()]}, "rules: Field required"),
        (["not", "a", "mapping"], "Input should be a valid dictionary"),
    ],
)
def test_invalid_rules_give_one_line_naming_rule_and_field(
    raw: object, expected: str, tmp_path: Path
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(AlertRuleError) as err:
        load_rules(path)
    message = str(err.value)
    assert expected in message
    assert "\n" not in message and str(path) in message


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(AlertRuleError, match="cannot read"):
        load_rules(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: [unclosed\n", encoding="utf-8")
    with pytest.raises(AlertRuleError, match=r"not valid YAML \(line \d+\)"):
        load_rules(bad)


FULL_RULE = {
    "name": "chips",
    "mode": "digest",
    "recipients": ["chips@example.com"],
    "query": {
        "export_controls": True,
        "min_score": 0.5,
        "topics": ["semiconductors"],
        "entities": ["BIS"],
        "terms": ["수출 통제", "出口管制"],
        "languages": ["KO", "zh"],
        "sites": ["etnews"],
    },
}


def test_query_criteria_are_anded_and_list_values_ored() -> None:
    [rule] = parse_rules({"rules": [FULL_RULE]})
    since, until = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC)
    filters = build_query(rule.query, since, until)["bool"]["filter"]
    assert filters[0] == {"range": {"indexed": {"gt": since.isoformat(), "lte": until.isoformat()}}}
    assert {"term": {"alert.export_controls": True}} in filters
    assert {"range": {"alert.score": {"gte": 0.5}}} in filters
    assert {"terms": {"topics": ["semiconductors"]}} in filters
    assert {"terms": {"entities": ["BIS"]}} in filters
    assert {"terms": {"lang": ["ko", "zh"]}} in filters  # language codes are normalised
    sites = next(f for f in filters if "bool" in f and "site" in str(f))
    assert sites["bool"]["minimum_should_match"] == 1
    terms = next(f for f in filters if "multi_match" in str(f))
    phrases = [c["multi_match"] for c in terms["bool"]["should"]]
    assert [(p["query"], p["type"]) for p in phrases] == [("수출 통제", "phrase"), ("出口管制", "phrase")]
    assert "text.ko" in phrases[0]["fields"] and "text.zh" in phrases[1]["fields"]  # nori / smartcn
    assert rule.query.summary().startswith("export_controls=true, min_score>=0.5, topics=semiconductors")


def test_explanations_and_highlight_terms() -> None:
    [rule] = parse_rules({"rules": [FULL_RULE]})
    article = sample_articles()[0]
    reasons = rule.explain(article)
    assert reasons[0] == "export-control decision: yes (score 0.93)"
    assert "topic semiconductors (0.88)" in reasons
    assert "entity BIS" in reasons
    assert "term “수출 통제”" in reasons and "term “出口管制”" not in reasons
    assert rule.evidence(article) == ["control: 수출 통제", "control: Entity List", "control: BIS"]
    assert rule.highlight_terms(article) == ["수출 통제", "出口管制", "BIS", "Entity List"]


def test_rules_command_lists_and_checks(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from newsmon.alerts.cli import alerts_app

    result = CliRunner().invoke(alerts_app, ["rules"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "export-controls" in result.output and "export_controls=true, languages=ko|zh|en" in result.output
    assert "(NEWSMON_ALERT_TO is empty)" in result.output and "1 rule(s) OK" in result.output

    bad = tmp_path / "rules.yaml"
    bad.write_text("rules:\n  - name: x\n    mode: hourly\n    query: {terms: [a]}\n", encoding="utf-8")
    result = CliRunner().invoke(alerts_app, ["rules", "--rules", str(bad)])
    assert isinstance(result.exception, AlertRuleError)
    assert "rule 'x': field 'mode'" in str(result.exception)
