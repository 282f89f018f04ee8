"""Redaction for customer text: each kind of internal detail goes, is recorded with its reason, and prose stays."""

from __future__ import annotations

from blametrail.analysis.redact import Redactor


def test_every_kind_of_internal_detail_is_taken_out_and_recorded():
    r = Redactor(people=["Dana Smith", "dana@acme.io"], services=["checkout", "payments-api"],
                 teams=["Team Payments"])
    text = r("Dana Smith rolled back checkout v2.3.1 (commit a1b2c3d) on db-01.prod.internal [upd_5, deploy_2] "
             "after payments-api errors rose; see https://grafana.acme.io/d/x and 10.0.3.4:5432. "
             "team payments owns it. Mail dana@acme.io. We deployed 9f8e7d6c5b.")
    assert text == ("An engineer rolled back one of our services on an internal system after one of our services "
                    "errors rose; see an internal system. Our team owns it. Mail an engineer. We deployed a change.")
    reasons = {x.text: x.reason for x in r.removed}
    assert reasons == {"[upd_5, deploy_2]": "evidence id", "https://grafana.acme.io/d/x": "link",
                       "dana@acme.io": "e-mail address", "10.0.3.4:5432": "IP address",
                       "db-01.prod.internal": "host name", "v2.3.1": "version", "(commit a1b2c3d)": "commit",
                       "9f8e7d6c5b": "commit", "team payments": "team", "payments-api": "internal service name",
                       "Dana Smith": "person", "checkout": "internal service name"}


def test_ordinary_prose_numbers_and_file_names_stay():
    r = Redactor(people=["Al", "Bo"], services=["api"])
    text = "Error rate rose to 3.5% for 12 minutes; config.yaml was fine, e.g. the cache. Also api-gateway is new."
    assert r(text) == text.replace("api-gateway", "api-gateway")  # 'api' only as a whole name; short names ignored
    assert r.removed == []


def test_a_bare_evidence_id_and_a_lone_version_go_too():
    r = Redactor()
    assert r("Latency rose (alert_3) after 2.4.0 shipped upd_12.") == "Latency rose after shipped."
    assert [x.reason for x in r.removed] == ["evidence id", "evidence id", "version"]
