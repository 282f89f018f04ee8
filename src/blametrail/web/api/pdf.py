"""GET /api/v1/incidents/{id}/postmortem/export.pdf: the postmortem as a PDF (the optional `pdf` extra)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from blametrail.web.deps import ApiActor, SessionDep
from blametrail.web.pages.evidence import print_context
from blametrail.web.params import IdPath, IdQuery
from blametrail.web.pdf import pdf_response

router = APIRouter(prefix="/api/v1/incidents/{incident_id}/postmortem", tags=["postmortems"])


@router.get("/export.pdf", response_class=Response, responses={
    200: {"content": {"application/pdf": {}}, "description": "The print page as a PDF"},
    501: {"description": "WeasyPrint (the pdf extra) is not installed"}})
def export_pdf(incident_id: IdPath, actor: ApiActor, session: SessionDep, version: IdQuery = None):
    """The current text (marked when it is not the published one), or published version `version`, as a PDF."""
    return pdf_response(print_context(session, actor=actor, incident_id=incident_id, version=version))
