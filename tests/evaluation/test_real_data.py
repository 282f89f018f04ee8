"""The real-incident set: every file loads, the set covers what the issue asks, and the loader refuses bad files."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pytest

from blametrail.scenarios.real.incidents import (
    DATA,
    DataError,
    Terms,
    load,
    load_all,
    normalize,
    select,
    split_of,
)

EXAMPLE = DATA / "cloudflare-2019-07-02-waf-regex.json"


@pytest.fixture(scope="module")
def incidents():
    return load_all()


def test_at_least_thirty_incidents_load_with_a_held_out_third(incidents):
    assert len(incidents) >= 30
    assert len({i.id for i in incidents}) == len(incidents)
    held = [i for i in incidents if i.split == "holdout"]
    assert 8 <= len(held) <= len(incidents) // 2
    assert all(i.split == split_of(i.id) for i in incidents)  # the rule, not a hand-picked list
    assert [i.started_at for i in incidents] == sorted(i.started_at for i in incidents)


def test_the_set_covers_the_kinds_of_outage_the_issue_names(incidents):
    categories = Counter(c for i in incidents for c in i.categories)
    for kind in ("cdn", "dns", "certificate", "database", "capacity", "config-change", "deploy", "network"):
        assert categories[kind] >= 1, kind
    organizations = {i.organization for i in incidents}
    assert len(organizations) >= 15
    kinds = Counter(e.kind for i in incidents for e in i.events)
    assert set(kinds) == {"update", "alert", "deploy", "config_change", "mitigation"}


def test_every_incident_is_replayable_and_scoreable(incidents):
    for i in incidents:
        assert i.source_url.startswith("https://")
        assert i.key_events, i.id
        assert i.started_at <= i.detected_at and i.mitigated_at <= i.resolved_at
        assert all(e.service in i.services for e in i.events if e.kind == "alert"), i.id
        assert i.root_cause.terms.groups and i.contributing_factors and i.action_items
        if i.trigger is not None:
            assert i.event(i.trigger).is_change


def test_select_by_id_and_split(incidents):
    first, second = incidents[0].id, incidents[1].id
    assert [i.id for i in select(incidents, [second, first])] == [second, first]
    assert all(i.split == "holdout" for i in select(incidents, split="holdout"))
    with pytest.raises(DataError, match="unknown incident id"):
        select(incidents, ["no-such-incident"])


def test_terms_need_every_group_and_match_whole_words_or_prefixes():
    terms = Terms((("regular expression", "regex"), ("backtrack*",)))
    assert terms.matches("The WAF's regex backtracked on request bodies")
    assert not terms.matches("the regex was fine")  # one group missing
    assert terms.share("the regex was fine") == 0.5
    assert not Terms((("cpu",),)).matches("cpus")  # whole words unless marked with *
    assert Terms((("1 200",),)).matches("about 1,200 servers")
    assert normalize("Status-Site, DNS!") == " status site dns "


def _broken(tmp_path, mutate, name="cloudflare-2019-07-02-waf-regex"):
    raw = json.loads(EXAMPLE.read_text())
    mutate(raw)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(raw))
    return path


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda r: r["times"].pop("resolved_at"), "times.resolved_at: an ISO-8601 UTC time"),
    (lambda r: r["times"].update(resolved_at="2019-07-02T13:00:00Z"), "started_at <= detected_at"),
    (lambda r: r.update(split="holdout"), "split: must be 'dev'"),
    (lambda r: r.update(source_url="http://example.com"), "source_url"),
    (lambda r: r["events"][1].update(service="elsewhere"), "an alert must name one of the incident's services"),
    (lambda r: r["events"][0].update(at="2019-07-01T09:00:00Z"), "triggering change must fall within"),
    (lambda r: r["events"][3].update(at="2019-07-02T13:00:00Z"), "cannot precede the start"),
    (lambda r: r["events"][3].update(kind="tweet"), "events[3].kind"),
    (lambda r: r["expected"]["contributing_factors"][0].update(terms=[["http-proxy"], ["waf"]]),
     "met by the list of services"),
    (lambda r: r["expected"]["action_items"][0].update(kind="later"), "detect, mitigate, prevent"),
    (lambda r: r["expected"]["root_cause"].update(terms=[]), "terms: a non-empty list"),
])
def test_the_loader_names_the_file_and_field_of_a_bad_incident(tmp_path, mutate, message):
    with pytest.raises(DataError, match="cloudflare-2019-07-02-waf-regex.json") as err:
        load(_broken(tmp_path, mutate))
    assert message in str(err.value)


def test_the_id_must_be_the_file_name(tmp_path):
    path = tmp_path / "another-name.json"
    shutil.copy(EXAMPLE, path)
    with pytest.raises(DataError, match="must equal the file name"):
        load(path)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="not readable JSON"):
        load(tmp_path / "bad.json")
