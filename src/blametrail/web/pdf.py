"""The postmortem as a PDF: the print page's HTML rendered by WeasyPrint (the optional `pdf` extra).

The PDF is the print page (web/pages/evidence.print_context + templates/evidence/print.html), so it carries the same
text, version mark and labelled citations. WeasyPrint gets no network and no file access: print.css is inlined and its
URL fetcher accepts only `data:` URLs. Without WeasyPrint installed the routes answer 501 `pdf-unavailable`.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import Response

from blametrail.errors import DomainError
from blametrail.web.pages.common import templates

PRINT_CSS = Path(__file__).resolve().parents[1] / "static" / "print.css"
INSTALL_HINT = "PDF export needs the pdf extra: pip install -e '.[pdf]' (or pip install 'blametrail[pdf]')."


class PdfUnavailable(DomainError):
    slug, status, title = "pdf-unavailable", 501, "PDF export is not installed"


def render_pdf(html: str) -> bytes:
    """Render an HTML page to PDF bytes, with nothing fetched from anywhere."""
    try:
        import weasyprint
        from weasyprint.urls import URLFetcher
    except ImportError as exc:  # why: an optional extra; the rest of the product works without it
        raise PdfUnavailable(INSTALL_HINT) from exc
    fetcher = URLFetcher(allowed_protocols=("data",), fail_on_errors=False)
    return weasyprint.HTML(string=html, base_url="data:,", url_fetcher=fetcher).write_pdf()


def _filename(incident_id: int, pm: dict, shown: dict) -> str:
    """Name the file after the version it carries: v<N>, v<N>-edited (changed since), or draft (never published)."""
    published = shown.get("published")
    if published:
        tag = f"v{published['version']}"
    elif pm.get("published_version"):
        # why: the current text of a published postmortem is version N as long as nobody edited it since
        tag = f"v{pm['published_version']}" + ("-edited" if shown.get("unapproved") else "")
    else:
        tag = "draft"
    return f"postmortem-{int(incident_id)}-{tag}.pdf"


def pdf_response(ctx: dict) -> Response:
    """Answer the print page's context (web/pages/evidence.print_context) as a PDF download."""
    html = templates.get_template("evidence/print.html").render(
        {**ctx, "inline_css": PRINT_CSS.read_text(encoding="utf-8")})
    data = render_pdf(html)
    name = re.sub(r"[^A-Za-z0-9._-]", "", _filename(ctx["incident"].id, ctx["pm"], ctx["shown"]))
    return Response(data, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "Cache-Control": "private, no-store"})
