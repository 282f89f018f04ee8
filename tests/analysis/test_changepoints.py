"""Metric change points: real shifts found at the right point, noise, outliers and flapping ignored."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from blametrail.analysis.changepoints import detect, segment
from blametrail.analysis.observations import Series

from .factories import T0
from .observability import series, step


def test_step_up_is_found_at_its_onset_with_robust_levels():
    change = detect(series(step(at_index=120)))
    assert change is not None
    assert change.index == 120
    assert change.onset == T0 - timedelta(hours=2) + timedelta(minutes=120)
    assert change.direction == "up"
    assert change.before == pytest.approx(0.002, abs=3e-4)
    assert change.after == pytest.approx(0.14, abs=3e-4)
    assert change.magnitude == pytest.approx(69, rel=0.1)
    assert change.score > 10


def test_step_down_is_found_with_negative_magnitude():
    change = detect(series(step(before=1000, after=400, noise=30), name="throughput", unit="req/s"))
    assert change is not None and change.direction == "down"
    assert change.index == 120
    assert change.magnitude == pytest.approx(-0.6, abs=0.05)


@pytest.mark.parametrize("seed", range(8))
def test_noisy_steps_are_located_within_one_point(seed):
    rng = np.random.default_rng(seed)
    onset = int(rng.integers(60, 150))
    change = detect(series(step(at_index=onset, before=100, after=130, noise=5, seed=seed)))
    assert change is not None and abs(change.index - onset) <= 1


@pytest.mark.parametrize("seed", range(10))
def test_noise_without_a_shift_is_ignored(seed):
    rng = np.random.default_rng(seed)
    assert detect(series(rng.normal(100, 5, 300))) is None
    assert detect(series(100 + 3 * rng.standard_t(2, 300))) is None  # heavy tails
    assert detect(series(rng.poisson(0.5, 300).astype(float))) is None  # sparse counts


def test_flat_series_is_ignored():
    assert detect(series(np.full(100, 7.0))) is None
    assert detect(series([1.0, 2.0, 3.0])) is None  # too short to judge


def test_spike_outliers_are_not_a_shift():
    values = np.random.default_rng(3).normal(100, 5, 200)
    values[[50, 90, 91, 92, 150]] = [900, 1200, 1100, 950, 800]
    assert detect(series(values)) is None


def test_flapping_series_is_ignored():
    values = np.tile(np.r_[np.zeros(8), np.full(8, 5.0)], 12) + np.random.default_rng(4).normal(0, 0.3, 192)
    assert detect(series(values)) is None


def test_recovery_after_an_incident_is_not_the_onset():
    values = step(n=200, at_index=120)
    values[150:] = 0.002
    change = detect(series(values))
    assert change is not None and change.index == 120 and change.direction == "up"


def test_ramp_onset_is_where_the_rise_starts():
    rng = np.random.default_rng(5)
    values = np.r_[np.full(100, 500.0), 500 + 6.0 * np.arange(80)] + rng.normal(0, 5, 180)
    change = detect(series(values, name="memory_rss", unit="bytes"))
    assert change is not None and abs(change.index - 100) <= 2


def test_nan_and_irregular_gaps_are_handled():
    values = step(n=180, at_index=120)
    values[::7] = np.nan
    base = T0 - timedelta(hours=2)
    offsets = np.cumsum(np.where(np.arange(180) % 13 == 0, 300, 60))  # a 5-minute gap every 13 points
    points = tuple((base + timedelta(seconds=float(o)), float(v)) for o, v in zip(offsets, values))
    change = detect(Series(name="error_rate", service="checkout", points=points))
    assert change is not None
    assert change.onset == base + timedelta(seconds=float(offsets[120]))


def test_since_skips_earlier_shifts():
    values = step(n=240, at_index=60, before=100, after=200, noise=3)
    values[180:] += 200
    first = detect(series(values))
    later = detect(series(values), since=T0 - timedelta(hours=2) + timedelta(minutes=150))
    assert first is not None and first.index == 60
    assert later is not None and later.index == 180 and later.before == pytest.approx(200, abs=5)


def test_segment_returns_every_significant_cut():
    values = np.r_[np.zeros(50), np.full(50, 10.0), np.full(50, 3.0)] + np.random.default_rng(6).normal(0, 0.5, 150)
    assert segment(values) == [50, 100]


def test_ten_thousand_points_find_the_onset():
    values = step(n=10_000, at_index=8_000, before=0, after=5, noise=1)
    s = series(values, step_seconds=10)
    change = detect(s)  # speed: scripts/bench_analysis.py
    assert change is not None and change.index == 8_000
