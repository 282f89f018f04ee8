"""Metric change points: robust binary segmentation (clipped CUSUM, then medians and MADs) on one series."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from blametrail.analysis.observations import Series
from blametrail.analysis.times import utc

_MAD_SCALE = 1.4826  # MAD → standard deviation for Gaussian noise
_CLIP = 3.0  # robust z-scores are clipped here so single outliers cannot drive a split
_BAND = 3.0  # onset refinement: walk back while points sit this many sigmas beyond the old level
_RAMP_WINDOW = 10  # points after the onset used to extrapolate a ramp back to the old level
_MIN_PERSIST = 10  # points: a shift back at the old level sooner than this is a blip (an alert flap), not an onset


@dataclass(frozen=True)
class ChangePoint:
    """A persistent level shift in a series: where it starts and the robust levels on each side."""

    onset: datetime
    index: int  # position of the first shifted point among the series' finite points
    before: float  # median of the segment before the onset
    after: float  # median of the segment after the onset
    magnitude: float  # relative change, (after - before) / max(|before|, |after| / 100)
    direction: str  # "up" | "down"
    score: float  # the shift in robust noise units


def detect(
    series: Series, *, min_segment: int = 5, threshold: float = 4.0, min_effect: float = 3.0,
    min_relative: float = 0.2, max_changes: int = 4, since: datetime | None = None,
) -> ChangePoint | None:
    """Return the first significant level shift at or after `since`, or None for flat, noisy or flapping series."""
    points, values = _finite(series)
    if values.size < 2 * min_segment:
        return None
    cuts = segment(values, min_segment=min_segment, threshold=threshold, min_effect=min_effect,
                   min_relative=min_relative)
    bounds = [0, *cuts, values.size]
    levels = [_stats(values[lo:hi]) for lo, hi in zip(bounds, bounds[1:])]
    blips = [_reverts(values, cut, bounds[i + 2], bounds[min(i + 3, len(bounds) - 1)], levels[i][0],
                      levels[i + 1][0]) for i, cut in enumerate(cuts)]
    if len(cuts) - 2 * sum(blips) > max_changes:
        return None  # flapping: too many lasting shifts to call any one of them the onset (blips do not count)
    first = bisect_left(points, utc(since), key=lambda p: utc(p[0])) if since is not None else 0
    for i, cut in enumerate(cuts):
        left, right = levels[i], levels[i + 1]
        before, after = left[0], right[0]
        start = _refine(values, bounds[i], cut, before, left[1], after - before)
        if start < first or not _novel(values[:start], before, after):
            continue  # before the range of interest, or a return to a level seen earlier (recovery, flapping)
        if blips[i] or _reverts(values, start, bounds[i + 2], bounds[min(i + 3, len(bounds) - 1)], before, after):
            continue  # a blip: real onsets hold their new level until someone mitigates them
        return ChangePoint(
            onset=utc(points[start][0]), index=start, before=before, after=after,
            magnitude=_relative(before, after), direction="up" if after > before else "down",
            score=round(_effect(left, right), 3),
        )
    return None


def segment(
    values: np.ndarray, *, min_segment: int = 5, threshold: float = 4.0, min_effect: float = 3.0,
    min_relative: float = 0.2, limit: int = 16,
) -> list[int]:
    """Return sorted indices where significant robust level shifts start (split, prune, then sharpen)."""
    found: list[int] = []
    pending = [(0, values.size)]
    while pending and len(found) < limit:
        lo, hi = pending.pop()
        cut = _best_split(values[lo:hi], min_segment, threshold)
        if cut is not None:
            found.append(lo + cut)
            pending += [(lo, lo + cut), (lo + cut, hi)]
    cuts = sorted(found)

    def strength(i: int) -> float:  # ≥ 1 when cut i separates clearly different medians
        lo, hi = cuts[i - 1] if i else 0, cuts[i + 1] if i + 1 < len(cuts) else values.size
        left, right = _stats(values[lo:cuts[i]]), _stats(values[cuts[i]:hi])
        return min(_effect(left, right) / min_effect, abs(_relative(left[0], right[0])) / min_relative)

    strengths = [strength(i) for i in range(len(cuts))]
    # Drop the weakest cut until every remaining one is clear; only its neighbours' segments change.
    while cuts:
        weakest = min(range(len(cuts)), key=strengths.__getitem__)
        if strengths[weakest] >= 1.0:
            break
        del cuts[weakest], strengths[weakest]
        for i in (weakest - 1, weakest):
            if 0 <= i < len(cuts):
                strengths[i] = strength(i)
    bounds = [0, *cuts, values.size]
    return [_sharpen(values, bounds[i], cut, bounds[i + 2]) for i, cut in enumerate(cuts)]


def _finite(series: Series) -> tuple[list, np.ndarray]:
    points = list(series.points)
    try:
        values = np.fromiter((v for _, v in points), dtype=np.float64, count=len(points))
    except (TypeError, ValueError):
        values = np.array([_number(v) for _, v in points], dtype=np.float64)
    keep = np.isfinite(values)
    if not keep.all():
        points = [p for p, ok in zip(points, keep.tolist()) if ok]
        values = values[keep]
    return points, values


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def _relative(before: float, after: float) -> float:
    # From (or to) zero the change is capped at 100×, so the figure stays finite and readable.
    return (after - before) / max(abs(before), abs(after) / 100, 1e-12)


def _stats(values: np.ndarray) -> tuple[float, float]:
    """Return a segment's median and robust noise scale (MAD, else mean absolute deviation, else 0)."""
    if values.size == 0:
        return 0.0, 0.0
    center = float(np.median(values))
    deviation = np.abs(values - center)
    mad = float(np.median(deviation)) * _MAD_SCALE
    return center, mad if mad > 0 else float(np.mean(deviation)) * 1.2533


def _effect(left: tuple[float, float], right: tuple[float, float]) -> float:
    """Return the median shift between two segments (median, sigma) in noise units."""
    delta = abs(right[0] - left[0])
    quiet, pooled = min(left[1], right[1]), float(np.sqrt((left[1] ** 2 + right[1] ** 2) / 2))
    # The quieter side's noise decides (shifts often bring noise of their own), but never less than half the
    # pooled noise, so wandering series stay quiet.
    return delta / max(quiet, 0.5 * pooled, delta * 1e-6, 1e-12)


def _best_split(values: np.ndarray, min_segment: int, threshold: float) -> int | None:
    n = values.size
    if n < 2 * min_segment:
        return None
    # Noise from first differences: a level shift adds one outlier there, so it does not inflate the scale.
    noise = float(np.median(np.abs(np.diff(values)))) * _MAD_SCALE / np.sqrt(2)
    noise = noise if noise > 0 else _stats(values)[1]
    if noise <= 0:
        return None  # constant
    z = np.clip((values - np.median(values)) / noise, -_CLIP, _CLIP)
    sums = np.cumsum(z - z.mean())[:-1]  # sums[k-1]: deviation of the first k points
    k = np.arange(1, n)
    stat = np.abs(sums) / np.sqrt(k * (n - k) / n)
    stat[: min_segment - 1] = 0
    stat[n - min_segment:] = 0
    best = int(np.argmax(stat))
    return best + 1 if stat[best] >= threshold else None


def _sharpen(values: np.ndarray, start: int, cut: int, end: int) -> int:
    """Move a cut to where the L1 cost against its two segments' medians is lowest (clipping blurs the CUSUM)."""
    reach = max((end - start) // 10, 10)
    lo, hi = max(start + 1, cut - reach), min(end - 1, cut + reach)
    left, right = np.median(values[start:cut]), np.median(values[cut:end])
    window = values[lo:hi]
    gain = np.abs(window - left) - np.abs(window - right)  # extra cost of keeping a point on the left
    costs = np.concatenate(([0.0], np.cumsum(gain)))  # costs[j]: split at lo + j
    return lo + int(np.argmin(costs))


def _novel(history: np.ndarray, before: float, after: float) -> bool:
    """Tell whether the new level was rare before the onset (at most 10% of earlier points reached halfway)."""
    if history.size == 0:
        return True
    halfway = (before + after) / 2
    reached = history >= halfway if after > before else history <= halfway
    return float(np.mean(reached)) <= 0.1


def _reverts(values: np.ndarray, start: int, end: int, next_end: int, before: float, after: float) -> bool:
    """Tell whether a shift starting at `start` ends at `end` within _MIN_PERSIST points, back on the old side."""
    if end >= values.size or end - start >= _MIN_PERSIST:
        return False
    following = float(np.median(values[end:next_end]))
    return (following - (before + after) / 2) * (after - before) < 0


def _refine(values: np.ndarray, lo: int, cut: int, before: float, sigma: float, delta: float) -> int:
    """Move the onset back to where a gradual rise (a ramp) left the old level, not where it crossed halfway."""
    band = max(_BAND * sigma, 0.05 * abs(delta))
    sign = 1.0 if delta > 0 else -1.0
    start = cut
    while start - 1 > lo and sign * (values[start - 1] - before) > band:
        start -= 1
    # On a ramp the first point beyond the band is late by band/slope: extrapolate the rise back to the old level.
    window = values[start:start + _RAMP_WINDOW]
    # A step seen through a rate window (rate(x[5m])) rises for a few points, then holds: fit the rise alone,
    # or the flat part tilts the line and the onset lands minutes early.
    arrived = np.flatnonzero(sign * (window - (before + delta)) >= -band)
    if arrived.size:
        window = window[:arrived[0] + 1]
    if window.size >= 4:
        slope, intercept = np.polyfit(np.arange(window.size), window, 1)
        lead = sign * (intercept - before) / (sign * slope) if sign * slope > 0 else np.inf
        # Only a rise that starts low is a ramp; a noisy step starts at its new level.
        if 0 < lead <= window.size and (intercept - before) / delta < 0.5:
            start = max(lo + 1, start - int(round(lead)))
    return start
