"""The fast real-incident subset, replayed through a real server over HTTP (the CI check), and `evaluate --real`."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from blametrail.app import create_app
from blametrail.cli import main
from blametrail.engines.base import NO_CONTEXT, Draft
from blametrail.engines.builtin import BuiltinEngine
from blametrail.scenarios import evaluate
from blametrail.scenarios.real.incidents import load_all, select
from blametrail.scenarios.real.run import run

# A config trigger, a certificate expiry with no change recorded, a multi-region OS update with two alerts, and a
# network maintenance change: four of the dev incidents, replayed in a few seconds.
FAST = ("cloudflare-2020-07-17-backbone-config", "azure-storage-2013-02-22-expired-cert",
        "datadog-2023-03-08-systemd-update", "gcp-2019-06-02-network-config")


def build_app(settings, rt):
    return create_app(settings, runtime=rt, background=True)


def test_the_fast_subset_replayed_over_http_meets_the_thresholds(database_url):
    report = run(build_app, select(load_all(), list(FAST)), database_url=database_url)
    assert [o.incident for o in report.outcomes] == list(FAST)
    assert report.passed(), report.table() + "\n" + report.misses()
    for o in report.outcomes:
        assert o.error is None and o.invented == 0 and o.duration_exact, o
        assert o.key_cited == o.key_total, o.missed_key
        assert o.rows >= o.key_total
    assert report.summary().trigger == 1.0  # both recorded changes are named as the trigger


class Forgetful:
    """The built-in engine with its timeline dropped: a regression the evaluation must catch."""

    label = "builtin-without-timeline"

    def draft(self, pack, context=NO_CONTEXT):
        sections = BuiltinEngine().draft(pack, context).sections
        return Draft({**sections, "timeline": []})

    def summarize(self, pack):
        return BuiltinEngine().summarize(pack)


def test_a_draft_that_loses_its_timeline_fails_the_gate(database_url):
    report = run(build_app, select(load_all(), list(FAST[:1])), database_url=database_url, engine=Forgetful())
    (o,) = report.outcomes
    assert o.error is None and o.key_cited == 0 and o.rows == 0
    assert not report.passed()
    assert re.search(r"^key events cited\s+0\.00\s+>= 0\.95\s+FAIL$", report.table(), re.M)
    assert report.engine == "builtin-without-timeline"


def test_cli_replays_the_chosen_incidents_and_prints_the_table(database_url, capsys):
    # why: a run of one incident is judged alone against the held-out bar; this dev incident clears all of it
    # (FAST[0] matches none of its postmortem's action items, so on its own it exits 1 since the "after" thresholds)
    chosen = FAST[3]
    assert main(["evaluate", "--real", "--only", chosen, "--database-url", database_url, "--misses"]) == 0
    out, err = capsys.readouterr()
    assert re.search(rf"^{chosen}\s+dev\s+ok\s+5/5\s", out, re.M)
    assert "thresholds, judged on all (1 incidents; none held out in this run):" in out
    assert f"replayed 1/1 {chosen}" in err


def test_cli_exits_1_under_the_thresholds_and_2_on_bad_input(monkeypatch, capsys):
    incidents = select(load_all(), list(FAST[:1]))

    def failing(build, chosen, **kwargs):
        from blametrail.scenarios.real.report import RealReport
        from blametrail.scenarios.real.score import failed

        assert [i.id for i in chosen] == [i.id for i in incidents] and callable(build)
        return RealReport(outcomes=(replace(failed(chosen[0], "no draft within 120 s"), split="holdout"),),
                          seconds=0.1)

    monkeypatch.setattr(evaluate, "run_real", failing)
    assert main(["evaluate", "--real", "--only", FAST[0]]) == 1
    out = capsys.readouterr().out
    assert "FAILED: no draft within 120 s" in out and re.search(r"replays that produced no draft.*FAIL", out)
    assert main(["evaluate", "--real", "--only", "no-such-incident"]) == 2
    assert "unknown incident id(s): no-such-incident" in capsys.readouterr().err


def test_cli_lists_the_incidents_of_a_split(capsys):
    assert main(["evaluate", "--list", "--split", "holdout"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    held = [i.id for i in load_all() if i.split == "holdout"]
    assert [line.split()[0] for line in lines] == held
    assert all(" holdout " in line for line in lines)


@pytest.mark.parametrize(("argv", "message"), [
    (["evaluate", "--real", "--split", "dev", "--only", "dyn-2016-10-21-ddos"], "no incident selected"),
    (["evaluate", "--only", "dyn-2016-10-21-ddos"], "--only, --split and --misses apply to --real"),
])
def test_cli_refuses_an_empty_selection_and_real_options_without_real(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
