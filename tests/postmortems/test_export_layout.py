"""A template's extra sections and section order reach the postmortem: people write the extra sections (only the
ones the template defines), and the Markdown export follows the organization's order with the extra titles."""

from __future__ import annotations

from tests.web.test_pages import drafted_incident, team  # noqa: F401 (fixtures)

API = "/api/v1"


def test_extra_sections_are_written_checked_and_exported_in_the_templates_order(client, rt, clock, team):
    t = team()
    owner, member = t["owner"], t["member"]
    template = {"extra_sections": [{"key": "customer_comms", "title": "Customer communication",
                                    "instruction": "Who was told what, and when."}],
                "section_order": ["summary", "customer_comms", "timeline"]}
    assert client.put(f"{API}/org/template", headers=owner.headers, json=template).status_code == 200
    iid = drafted_incident(rt, clock, owner)
    url = f"{API}/incidents/{iid}/postmortem"
    pm = client.get(url, headers=member.headers).json()
    assert "extra" not in pm["sections"]  # drafts and readers of the original shape see no new key
    bad = client.patch(url, headers=member.headers, json={"version": pm["version"],
                                                           "sections": {"extra": {"press": "No."}}})
    assert bad.status_code == 422 and "unknown extra section" in bad.text
    bad = client.patch(url, headers=member.headers, json={"version": pm["version"],
                                                           "sections": {"extra": {"customer_comms": "x" * 20_001}}})
    assert bad.status_code == 422
    ok = client.patch(url, headers=member.headers, json={"version": pm["version"], "sections": {
        "extra": {"customer_comms": "Status page updated at 10:05; **two** e-mails to affected customers."}}})
    assert ok.status_code == 200, ok.text
    assert ok.json()["sections"]["extra"] == {
        "customer_comms": "Status page updated at 10:05; **two** e-mails to affected customers."}
    md = client.get(f"{url}/export.md", headers=member.headers).text
    headings = [line[3:] for line in md.splitlines() if line.startswith("## ")]
    assert headings[:3] == ["Summary", "Customer communication", "Timeline"]
    assert headings[3:] == ["Severity", "Customer impact", "Root cause", "Contributing factors", "What went well",
                            "What went poorly", "Action items", "Confidence"]
    assert "Status page updated at 10:05" in md
