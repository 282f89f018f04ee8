"""docs/analysis.md states the rules the code applies: definitions and thresholds are checked against the code."""

from __future__ import annotations

import re
from pathlib import Path

from blametrail.analysis import actions, detection, factors, response, severity, writer
from blametrail.analysis.severity import DEFAULT_DEFINITIONS, IMPACTS
from blametrail.evidence import pack

DOC = (Path(__file__).parents[2] / "docs" / "analysis.md").read_text(encoding="utf-8")
FLAT = " ".join(DOC.split())


def _rules(definition: severity.Definition) -> str:
    out = []
    for rule in definition.rules:
        if rule.impacts >= frozenset(IMPACTS):
            out.append("any")
            continue
        parts = [" or ".join(k for k in reversed(IMPACTS) if k in rule.impacts)]
        if rule.min_minutes:
            parts.append(f"{rule.min_minutes} min")
        if rule.min_services > 1:
            parts.append(f"{rule.min_services} services")
        out.append(", ".join(parts))
    return " · ".join(out)


def test_the_severity_table_is_the_default_definitions():
    rows = re.findall(r"^\| (SEV-\d) \| (.+?) \| (.+?) \|$", DOC, re.M)
    assert [(d.severity, d.meaning, _rules(d)) for d in DEFAULT_DEFINITIONS] == rows


def test_every_threshold_is_documented_with_its_value():
    documented = {
        "response.SLOW_FIRST_UPDATE_MINUTES": (response.SLOW_FIRST_UPDATE_MINUTES, "15 minutes"),
        "response.LONG_GAP_MINUTES": (response.LONG_GAP_MINUTES, "30 minutes"),
        "response.SLOW_MITIGATION_MINUTES": (response.SLOW_MITIGATION_MINUTES, "60 minutes"),
        "response.QUICK_ALERT_MINUTES": (response.QUICK_ALERT_MINUTES, "within 5 minutes"),
        "factors.SLOW_ROLLBACK_MINUTES": (factors.SLOW_ROLLBACK_MINUTES, "15 minutes from the first rollback"),
        "factors.SLOW_DETECTION_MINUTES": (factors.SLOW_DETECTION_MINUTES, "5 minutes or more after the onset, before"),
        "factors.LATE_ALERT_MINUTES": (factors.LATE_ALERT_MINUTES, "5 minutes or more after the onset"),
        "factors.SPREAD_MINUTES": (factors.SPREAD_MINUTES, "2 minutes or more"),
        "factors.MAX_FAILED_ATTEMPTS": (factors.MAX_FAILED_ATTEMPTS, "up to 3"),
        "factors.REPEAT_WINDOW": (factors.REPEAT_WINDOW.days, "30 days"),
        "detection.FLAP_MIN_CYCLES": (detection.FLAP_MIN_CYCLES, "3 times or more"),
        "actions.AUTO_ROLLBACK_MINUTES": (actions.AUTO_ROLLBACK_MINUTES, "within 10 minutes"),
        "writer.MAX_SUMMARY_SENTENCES": (writer.MAX_SUMMARY_SENTENCES, "at most five sentences"),
        "evidence.pack.AFTER_RESOLUTION": (pack.AFTER_RESOLUTION.days, "within a day"),
    }
    words = {"five": 5, "a day": 1}
    for name, (value, phrase) in documented.items():
        assert f"`{name}`" in DOC, name
        assert phrase in FLAT, (name, phrase)
        number = re.search(r"\d+|five|a day", phrase).group(0)
        assert int(words.get(number, number) if number in words else number) == value, (name, value)
    assert f"{severity.OUTAGE_CHECK_SHARE:.0%}" in DOC and f"{severity.OUTAGE_ERROR_RATIO:.0%}" in DOC
    assert f"{severity.PARTIAL_ERROR_RATIO:.0%}" in DOC
