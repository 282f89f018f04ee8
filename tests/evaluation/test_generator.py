"""The scenario generator: deterministic, every fault type, ground truth that agrees with the data, noise on."""

from __future__ import annotations

from datetime import timedelta

import pytest

from blametrail.analysis import causes
from blametrail.scenarios import DEFAULT_SEED
from blametrail.scenarios.generator import (
    CATEGORY,
    FAULTS,
    LOOKBACK,
    METRICS,
    generate,
    scenario,
    shifted,
)

DEPLOY_FAULTS = ("bad_deploy", "config_change")


@pytest.fixture(scope="module")
def scenarios():
    return generate(27, DEFAULT_SEED)


def test_same_seed_same_scenarios_other_seed_others(scenarios):
    again = generate(4, DEFAULT_SEED)
    assert again == scenarios[:4]  # and a scenario depends on its index, not on how many are made
    assert [g.text for g in again[2].logs] == [g.text for g in scenarios[2].logs]
    assert generate(2, DEFAULT_SEED + 1) != scenarios[:2]


def test_every_fault_type_cycles(scenarios):
    assert len(FAULTS) == 9 and set(CATEGORY) == set(FAULTS)
    assert [s.fault for s in scenarios[:9]] == list(FAULTS)
    assert [s.fault for s in scenarios[18:27]] == list(FAULTS)
    assert len({s.id for s in scenarios}) == len(scenarios)


def test_categories_are_deploy_or_a_known_cause():
    for fault, key in CATEGORY.items():
        if fault in DEPLOY_FAULTS:
            assert key == "deploy"
        elif fault == "no_culprit":
            assert key is None
        else:
            assert causes.label(key)  # a category the analysis knows


def test_service_names_are_unique_per_scenario(scenarios):
    seen: dict[str, str] = {}
    for s in scenarios:
        names = {m.service for m in s.series} | {g.service for g in s.logs} | {d.service for d in s.deploys}
        assert set(s.services) <= names
        for name in names:
            assert name.endswith(s.id[-5:]), (name, s.id)
            assert seen.setdefault(name, s.id) == s.id


def test_times_are_ordered_and_the_data_covers_the_window(scenarios):
    for s in scenarios:
        assert s.truth.onset <= s.started_at < s.resolved_at
        assert s.started_at - s.truth.onset <= timedelta(minutes=30)
        window_start = s.started_at - LOOKBACK
        for m in s.series:
            times = [t for t, _ in m.points]
            assert times == sorted(times) and m.unit == METRICS[m.name]
            assert times[0] <= window_start and times[-1] >= s.resolved_at
        assert [g.at for g in s.logs] == sorted(g.at for g in s.logs)
        assert {g.level for g in s.logs} <= {"error", "warn"}
        assert all(s.data_start <= g.at <= s.data_end for g in s.logs)
        assert all(u.at >= s.started_at and u.at < s.resolved_at for u in s.updates)


def test_deploy_faults_name_a_deploy_of_the_service_just_before_the_onset(scenarios):
    for s in (s for s in scenarios if s.fault in DEPLOY_FAULTS):
        culprit = next(d for d in s.deploys if d.key == s.truth.culprit)
        assert s.truth.category == "deploy" and culprit.service in s.services
        assert timedelta(0) < s.truth.onset - culprit.at <= timedelta(minutes=5)
        assert culprit.at >= s.started_at - LOOKBACK and culprit.commits
        assert s.truth.key_events[0].kind == "deploy" and s.truth.key_events[0].ref == culprit.key
        if s.fault == "config_change":
            assert all(f.startswith(("config/", "deploy/")) for c in culprit.commits for f in c.files)
        else:  # the broken file shows up in the new errors
            errors = [g.text for g in s.logs if g.at >= s.truth.onset]
            assert any(path in text for c in culprit.commits for path in c.files for text in errors)


def test_other_faults_and_no_culprit_have_no_culprit_deploy(scenarios):
    for s in scenarios:
        if s.fault not in DEPLOY_FAULTS:
            assert s.truth.culprit is None and s.truth.category == CATEGORY[s.fault]
        if s.fault == "no_culprit":
            assert s.truth.key_events == ()


def test_key_events_match_the_data(scenarios):
    for s in scenarios:
        for ev in s.truth.key_events:
            if ev.kind == "metric":
                m = next(m for m in s.series if m.name == ev.ref and m.service == ev.service)
                before = [v for t, v in m.points if s.truth.onset - timedelta(minutes=30) <= t < s.truth.onset]
                after = [v for t, v in m.points if s.truth.onset + timedelta(minutes=6) <= t < s.resolved_at
                         - timedelta(minutes=8)]
                assert max(after) > 1.2 * max(before), (s.id, ev)
            elif ev.kind == "log":  # the first new error: absent before the onset, present after it
                lines = [g for g in s.logs if g.service == ev.service and ev.ref in g.text]
                assert lines and min(g.at for g in lines) >= s.truth.onset, (s.id, ev)


def test_noise_is_on(scenarios):
    assert any(not s.updates for s in scenarios) and any(s.updates for s in scenarios)
    assert sum(any(d.service not in s.services for d in s.deploys) for s in scenarios) > len(scenarios) // 2
    for s in scenarios:  # errors and warnings the service always logs are there before the incident too
        baseline = [g for g in s.logs if g.at < s.truth.onset - timedelta(minutes=30) and g.service in s.services]
        assert baseline, s.id
    assert sum(any(g.level == "error" for g in s.logs if g.at < s.truth.onset) for s in scenarios) > 20
    innocent = [s for s in scenarios if s.fault == "no_culprit"
                and any(d.service in s.services and timedelta(0) < s.truth.onset - d.at <= timedelta(minutes=25)
                        for d in s.deploys)]
    assert len(innocent) >= 2  # no-culprit cases with an unrelated deploy of the service close to the onset


def test_rollbacks_put_back_the_version_before_the_culprit(scenarios):
    def number(version: str) -> tuple[int, ...]:
        return tuple(int(x) for x in version[1:].split("."))

    checked = 0
    for s in scenarios:
        if s.truth.culprit is None:
            continue
        culprit = next(d for d in s.deploys if d.key == s.truth.culprit)
        same = [d for d in s.deploys if d.service == culprit.service]
        i = same.index(culprit)
        assert [number(d.version) for d in same[:i + 1]] == sorted(number(d.version) for d in same[:i + 1])
        rollbacks = [d for d in same[i + 1:] if not d.commits]  # a deploy without commits puts a version back
        if rollbacks:
            assert number(rollbacks[0].version) < number(culprit.version)
            assert i == 0 or rollbacks[0].version == same[i - 1].version
            checked += 1
    assert checked


def test_shifted_moves_every_time():
    s = scenario("certificate_expiry", index=4)
    moved = shifted(s, timedelta(days=30))
    assert moved.started_at - s.started_at == timedelta(days=30)
    assert moved.truth.onset - s.truth.onset == timedelta(days=30)
    assert moved.series[0].points[0][0] - s.series[0].points[0][0] == timedelta(days=30)
    assert moved.logs[-1].at - s.logs[-1].at == timedelta(days=30)
    assert [g.text for g in moved.logs] == [g.text for g in s.logs]


def test_a_tag_and_avoided_services_choose_the_names():
    s = scenario("dns", index=3, tag="", avoid=frozenset({"checkout", "cart", "orders"}))
    assert not set(s.services) & {"checkout", "cart", "orders"}
    assert all("-s" not in name for name in s.services)
    with pytest.raises(ValueError, match="unknown fault"):
        scenario("volcano")


def test_families_recur_on_one_service_with_distractors_beside_them():
    from blametrail.scenarios.generator import families

    pairs = families(3, 4)
    assert len(pairs) == 3 * 6
    fam = [s for f, s in pairs if f == "family-00"]
    assert len(fam) == 4 and len({s.fault for s in fam}) == 1
    assert set.intersection(*(set(s.services) for s in fam))  # one service in every one of them
    assert len({s.started_at.date() for s in fam}) == 4  # different days
    distractors = [s for f, s in pairs[:6] if f is None]
    assert any(set(s.services) & set(fam[0].services) and s.fault != fam[0].fault for s in distractors)  # same service only
    assert any(not set(s.services) & set(fam[0].services) and s.fault == fam[0].fault for s in distractors)  # same cause only
    assert families(3, 4) == pairs  # deterministic
