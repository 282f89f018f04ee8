"""Log template mining: masking, new and spiking templates against a baseline, samples, determinism."""

from __future__ import annotations

from datetime import timedelta

import pytest

from blametrail.analysis import logs
from blametrail.analysis.logs import is_errorish, mine
from blametrail.analysis.observations import LogLine

from .factories import at
from .observability import lines

BASE_SECONDS, INCIDENT_SECONDS = 110 * 60.0, 40 * 60.0


def _baseline() -> list[LogLine]:
    healthy = lines("GET /api/orders/{n} 200 12ms", -120, 600, every_seconds=10)
    healthy += lines("user {n} signed in", -119, 300, every_seconds=20)
    healthy += lines("ERROR redis timeout after {n}ms", -115, 4, every_seconds=1500)
    healthy += lines("cache warmed in {n}ms", -118, 5, every_seconds=60)  # only in the baseline
    return sorted(healthy, key=lambda line: line.at)


def _incident(*extra: list[LogLine]) -> list[LogLine]:
    steady = lines("GET /api/orders/{n} 200 12ms", -10, 240, every_seconds=10)
    steady += lines("user {n} signed in", -10, 120, every_seconds=20)
    steady += lines("ERROR redis timeout after {n}ms", -5, 1, every_seconds=1)
    for group in extra:
        steady += group
    return sorted(steady, key=lambda line: line.at)


def _mine(incident: list[LogLine], **kwargs) -> list[logs.TemplateStat]:
    return mine(_baseline(), incident, baseline_seconds=BASE_SECONDS, incident_seconds=INCIDENT_SECONDS, **kwargs)


@pytest.mark.parametrize(("raw", "masked"), [
    ("took 200ms for order 12345", "took <*> for order <*>"),
    ("connect to 10.0.3.4:5432 failed", "connect to <*> failed"),
    ("request 7f3a9c2e-1b2c-4d5e-8f90-123456789abc done", "request <*> done"),
    ("trace=deadbeef12cafe span 0x1f", "trace=<*> span <*>"),
    ("at 2024-05-01T10:02:03Z job ran", "at <*> job ran"),
    ('File "/app/payments/client.py", line 42, in charge', 'File "/app/payments/client.py", line <*>, in charge'),
    ("x509: certificate has expired; sha256 v2.3 http2", "x509: certificate has expired; sha256 v2.3 http2"),
    ("decade face added", "decade face added"),  # hex-looking words without digits stay
])
def test_masking_hides_variable_parts_and_keeps_words(raw, masked):
    _, distinct = logs._mask_keys([raw])
    assert distinct == [masked]


def test_errorish_lines_are_recognised():
    for text in ("ERROR boom", "Traceback (most recent call last)", "x509: certificate has expired",
                 "connection refused", "upstream timed out", "status=503", "OOMKilled"):
        assert is_errorish(text), text
    for text in ("user 12 signed in", "GET /api 200 12ms", "cache warmed in a room"):
        assert not is_errorish(text), text


def test_new_error_template_is_found_with_first_seen_and_samples():
    new = lines('ERROR charge failed order={n}: TimeoutError in File "/app/payments/client.py", line 88', 2, 30)
    [stat] = _mine(_incident(new))
    assert stat.new and stat.error and stat.spike_ratio is None
    assert stat.template == 'ERROR charge failed order=<*> TimeoutError in File "/app/payments/client.py", line <*>'
    assert (stat.incident_count, stat.baseline_count, stat.service) == (30, 0, "checkout")
    assert stat.first_seen == at(2)
    assert len(stat.samples) == 5 and stat.samples[0] == new[0].text


def test_spiking_template_is_found_with_its_ratio_and_burst_start():
    burst = lines("ERROR redis timeout after {n}ms", 3, 60, every_seconds=5)
    [stat] = _mine(_incident(burst))
    assert not stat.new and stat.error
    assert stat.template == "ERROR redis timeout after <*>"
    assert stat.baseline_count == 4 and stat.incident_count == 61
    assert stat.spike_ratio == pytest.approx((61 / INCIDENT_SECONDS) / (4 / BASE_SECONDS), rel=0.01)
    assert stat.first_seen == at(3)  # the burst, not the lone background line at -5 minutes


def test_steady_and_baseline_only_templates_are_not_reported():
    assert _mine(_incident()) == []


def test_small_new_templates_and_mild_increases_are_not_reported():
    few = lines("ERROR worker crashed pid={n}", 4, 2)
    mild = lines("ERROR redis timeout after {n}ms", 3, 2, every_seconds=60)
    assert _mine(_incident(few, mild)) == []


def test_errors_never_merge_into_healthy_look_alikes():
    failing = lines("GET /api/orders/{n} failed 12ms", 1, 20)
    [stat] = _mine(_incident(failing))
    assert stat.new and stat.template == "GET /api/orders/<*> failed <*>"


def test_templates_are_kept_per_service():
    one = lines("ERROR payment declined code={n}", 1, 10, service="payments")
    two = lines("ERROR payment declined code={n}", 1, 10, service="checkout")
    stats = _mine(_incident(one, two))
    assert sorted(s.service for s in stats) == ["checkout", "payments"]
    assert all(s.incident_count == 10 for s in stats)


def test_mining_is_deterministic_and_ordered_by_first_seen():
    a = lines("ERROR stripe returned {n}", 7, 12)
    b = lines("ERROR queue full depth={n}", 2, 12)
    first, second = _mine(_incident(a, b)), _mine(_incident(b, a))
    assert first == second
    assert [s.first_seen for s in first] == [at(2), at(7)]


def test_empty_incident_window_finds_nothing():
    assert mine(_baseline(), []) == []
    assert mine([], [LogLine(at=at(1) + timedelta(seconds=i), text="ERROR new thing") for i in range(3)])[0].new


def test_headline_finds_the_error_line_of_a_stack_trace_in_every_stack():
    from blametrail.analysis.logs import headline

    python = ('2026-01-05 10:02:03,123 ERROR [pricing.api] unhandled exception in POST /v1/quotes\nTraceback (most '
              'recent call last):\n  File "/app/pricing/rules/engine.py", line 88, in evaluate_rule\n'
              'ZeroDivisionError: division by zero')
    java = ("2026-01-05 10:02:03.123 ERROR 1 --- [exec-7] o.a.c.c.C.[dispatcherServlet] : Servlet.service() threw "
            "exception\njava.lang.IllegalArgumentException: Unbalanced quotes in query\n\tat com.shopco.Q.parse(Q.java:9)")
    go = ('level=error ts=2026-01-05T10:02:03.123Z caller=middleware/recover.go:41 msg="panic: runtime error: index '
          'out of range [3] with length 3\\n\\ngoroutine 7 [running]:\\n\\t/src/internal/discount.go:12 +0x1f"')
    node = ('{"level":"error","time":1767607323123,"pid":1,"msg":"TypeError: template.render is not a function\\n'
            '    at renderTemplate (/app/src/render.ts:4:7)"}')
    assert headline(python) == "ZeroDivisionError: division by zero"
    assert headline(java) == "java.lang.IllegalArgumentException: Unbalanced quotes in query"
    assert headline(go) == "panic: runtime error: index out of range [3] with length 3"
    assert headline(node) == "TypeError: template.render is not a function"
    assert headline("ERROR tls: failed to verify certificate: x509: certificate has expired") == (
        "tls: failed to verify certificate: x509: certificate has expired")
