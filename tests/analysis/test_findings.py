"""Findings from raw data: deterministic ids, windows, chart points, and their place in the evidence pack."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import numpy as np

from blametrail.analysis.findings import analyse_observations, downsample

from .factories import T0, at, make_pack
from .observability import lines, log, metric, series, step


def _window() -> dict:
    return {"window_start": at(-120), "incident_start": T0, "window_end": at(40)}


def _data():
    start = at(-120)
    errors = series(step(n=160, at_index=122), start=start)  # rises at 10:02
    latency = series(step(n=160, at_index=123, before=120, after=480, noise=8), name="latency_p99", unit="ms",
                     start=start)
    quiet = series(np.random.default_rng(2).normal(50, 2, 160), name="cpu", start=start)
    raw = lines("GET /api/orders/{n} 200 12ms", -120, 960, every_seconds=10)
    raw += lines('ERROR charge failed: TimeoutError in File "/app/payments/client.py", line {n}', 3, 50)
    raw += lines("WARN retrying payment call attempt={n}", 2, 40)
    return [latency, quiet, errors], sorted(raw, key=lambda line: line.at)


def test_metric_and_log_findings_get_ids_in_time_order():
    metrics, logs = analyse_observations(*_data(), **_window())
    assert [(m.id, m.series, m.onset) for m in metrics] == [
        ("metric_1", "error_rate", at(2)), ("metric_2", "latency_p99", at(3))]
    assert metrics[0].before < 0.003 < 0.13 < metrics[0].after and metrics[0].direction == "up"
    assert [(g.id, g.first_seen, g.new) for g in logs] == [("log_1", at(2), True), ("log_2", at(3), True)]
    assert logs[1].template.startswith("ERROR charge failed: TimeoutError")
    assert logs[1].incident_count == 50 and len(logs[1].samples) == 5


def test_findings_are_deterministic_whatever_the_input_order():
    series_list, raw = _data()
    first = analyse_observations(series_list, raw, **_window())
    again = analyse_observations(list(reversed(series_list)), list(reversed(raw)), **_window())
    assert first == again


def test_lines_outside_the_window_are_ignored_and_the_baseline_ends_before_the_start():
    _, raw = _data()
    early = lines("ERROR ancient failure {n}", -300, 20)  # before the window
    late = lines("ERROR after resolution {n}", 90, 20)  # after the window
    lead = lines("ERROR starts before the incident {n}", -8, 20)  # inside the 10-minute lead: incident side
    _, logs = analyse_observations([], raw + early + late + lead, **_window())
    templates = {g.template for g in logs}
    assert "ERROR starts before the incident <*>" in templates
    assert not any("ancient" in t or "after resolution" in t for t in templates)


def test_chart_points_are_downsampled_keeping_extremes():
    values = np.zeros(10_000)
    values[4321] = 99.0
    points = series(values, step_seconds=1).points
    kept = downsample(points)
    assert len(kept) <= 200
    assert max(v for _, v in kept) == 99.0
    assert [p[0] for p in kept] == sorted(p[0] for p in kept)
    assert downsample(points[:50]) == points[:50]


def test_chart_points_of_a_finding_are_capped():
    values = step(n=1_000, at_index=900)
    metrics, _ = analyse_observations([series(values, start=at(-120), step_seconds=7.2)], [], **_window())
    assert len(metrics) == 1 and 0 < len(metrics[0].points) <= 200


def test_naive_datetimes_are_read_as_utc():
    series_list, raw = _data()
    naive = {k: v.replace(tzinfo=None) for k, v in _window().items()}
    assert analyse_observations(series_list, raw, **naive) == analyse_observations(series_list, raw, **_window())


def test_pack_lists_findings_among_evidence_and_in_its_json():
    sample = "x" * 5_000
    pack = replace(make_pack(), metrics=(metric("metric_1", 2),),
                   logs=(log("log_1", 3, "ERROR boom <*>", samples=(sample,) * 5),))
    assert {"metric_1", "log_1"} <= pack.evidence_ids()
    data = pack.to_json()
    json.dumps(data)
    assert data["metrics"][0]["onset"] == "2024-05-01T10:02:00Z" and data["observed"] is True
    assert len(data["logs"][0]["samples"]) == 3 and len(data["logs"][0]["samples"][0]) == 2_000
    assert make_pack().to_json()["observed"] is False


def test_a_change_long_before_the_incident_is_not_a_finding():
    values = step(n=400, at_index=20)  # shifted more than 90 minutes before the start
    start = T0 - timedelta(minutes=380)
    metrics, _ = analyse_observations([series(values, start=start)], [], window_start=start, incident_start=T0,
                                      window_end=at(20))
    assert metrics == ()
