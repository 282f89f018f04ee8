"""The postmortem as a PDF (WeasyPrint, the pdf extra), rendered for real: the text, the version it carries, labelled
citations; viewers may download it; another organization's is a 404; without WeasyPrint a clear 501."""

from __future__ import annotations

import io
import sys
import time

from pypdf import PdfReader

from tests.web.test_pages import browser, drafted_incident, team  # noqa: F401 — fixtures

API = "/api/v1"


def pdf_text(data: bytes) -> str:
    """Read a PDF's text back (pypdf), whitespace squeezed."""
    reader = PdfReader(io.BytesIO(data))
    return " ".join(" ".join(page.extract_text() or "" for page in reader.pages).split())


def _pdf(client, who, iid, version=None):
    url = f"{API}/incidents/{iid}/postmortem/export.pdf" + (f"?version={version}" if version else "")
    return client.get(url, headers=who.headers)


def test_the_pdf_is_a_real_document_with_the_version_it_carries(client, rt, clock, team, browser):
    t = team()
    iid = drafted_incident(rt, clock, t["owner"], title="Checkout errors after the deploy")
    started = time.perf_counter()
    r = _pdf(client, t["viewer"], iid)
    elapsed = time.perf_counter() - started
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"] == f'attachment; filename="postmortem-{iid}-draft.pdf"'
    assert r.content.startswith(b"%PDF-") and r.content.rstrip().endswith(b"%%EOF")
    text = pdf_text(r.content)
    assert "Checkout errors after the deploy" in text and "NOT PUBLISHED" in text.upper()  # the draft, marked
    for title in ("Summary", "Timeline", "Root cause", "Action items", "Confidence"):
        assert title in text, title
    assert f"Update from {t['owner'].actor.label}" in text  # citations as readable labels, not upd_N
    assert "Rolled back checkout v2.3" in text
    assert elapsed < 30  # a sanity bound, not a speed goal

    assert client.post(f"{API}/incidents/{iid}/postmortem/publish", headers=t["owner"].headers).status_code == 200
    published = _pdf(client, t["viewer"], iid, version=1)
    assert published.status_code == 200
    assert published.headers["content-disposition"] == f'attachment; filename="postmortem-{iid}-v1.pdf"'
    assert "PUBLISHED VERSION 1" in pdf_text(published.content).upper()
    assert _pdf(client, t["viewer"], iid, version=2).status_code == 404
    current = _pdf(client, t["viewer"], iid)  # the current text is version 1 until someone edits it
    assert current.headers["content-disposition"] == f'attachment; filename="postmortem-{iid}-v1.pdf"'

    url = f"{API}/incidents/{iid}/postmortem"
    version_now = client.get(url, headers=t["member"].headers).json()["version"]
    edit = client.patch(url, json={"version": version_now, "sections": {"summary": "Rewritten after publishing."}},
                        headers=t["member"].headers)
    assert edit.status_code == 200, edit.text
    edited = _pdf(client, t["viewer"], iid)
    assert edited.headers["content-disposition"] == f'attachment; filename="postmortem-{iid}-v1-edited.pdf"'
    edited_text = pdf_text(edited.content)
    assert "Rewritten after publishing." in edited_text and "EDITED AFTER PUBLISHING" in edited_text.upper()
    assert "Rewritten after publishing." not in pdf_text(_pdf(client, t["viewer"], iid, version=1).content)

    page = browser(t["viewer"]).get(f"/incidents/{iid}/postmortem/export.pdf?version=1")
    assert page.status_code == 200 and page.content.startswith(b"%PDF-")


def test_another_organizations_pdf_is_a_404_and_missing_weasyprint_a_501(client, rt, clock, team, monkeypatch):
    t, other = team(), team()
    iid = drafted_incident(rt, clock, t["owner"])
    r = _pdf(client, other["owner"], iid)
    assert r.status_code == 404
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # as if the pdf extra were not installed
    r = _pdf(client, t["owner"], iid)
    assert r.status_code == 501 and r.json()["type"] == "/problems/pdf-unavailable"
    assert "pip install -e '.[pdf]'" in r.json()["detail"]
