"""The evidence-id grammar: make, parse and classify ids."""

from blametrail.analysis import ids


def test_make_ids_for_every_kind():
    assert ids.update_id(3) == "upd_3"
    assert ids.entry_id("status", 4) == "st_4"
    assert ids.entry_id("monitor", 5) == "mon_5"
    assert ids.entry_id("alert", 6) == "alert_6"
    assert ids.deploy_id(7) == "deploy_7"
    assert ids.commit_id(8) == "commit_8"
    assert ids.metric_id(1) == "metric_1"
    assert ids.log_id(2) == "log_2"
    assert ids.incident_id(41) == "inc_41"  # another incident (a recent one on the same service)


def test_parse_accepts_only_whole_well_formed_ids():
    assert ids.parse("deploy_12") == ("deploy", 12)
    assert ids.parse("upd_1") == ("upd", 1)
    for bad in ("", None, "deploy_", "deploy_x", "foo_1", " upd_1", "upd_1 ", "upd_1234567890123"):
        assert ids.parse(bad) is None
    assert ids.is_id("log_4") and not ids.is_id("log")


def test_pattern_finds_ids_in_text_and_sources_map_prefixes():
    assert ids.ID_PATTERN.findall("see upd_1, deploy_2 and commit_33; not xupd_4") == ["upd_1", "deploy_2", "commit_33"]
    assert ids.source_of("commit_4") == "deploy"
    assert ids.source_of("st_1") == "status"
    assert set(ids.SOURCE) == set(ids.PREFIXES)
    assert ids.ENTRY_KIND["mon"] == "monitor"
    assert ids.parse("inc_41") == ("inc", 41) and ids.ID_PATTERN.findall("see inc_41") == ["inc_41"]


def test_sort_key_orders_by_number():
    assert sorted(["log_10", "log_2", "log_1"], key=ids.sort_key) == ["log_1", "log_2", "log_10"]
