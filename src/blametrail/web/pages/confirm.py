"""The server's half of a confirmation: an action that changes things for others runs only with confirm=yes.

app.js asks in a dialog and sends confirm=yes; a post without it (no JavaScript) gets the question back as a page
whose button repeats the post confirmed, as the model page does for a change of provider.
"""

from __future__ import annotations

from fastapi import Request
from starlette.datastructures import FormData

from blametrail.web.pages.common import field, render

CONFIRMED = "yes"


def confirmed(form: FormData) -> bool:
    """Return whether the post carries the person's confirmation."""
    return field(form, "confirm") == CONFIRMED


def ask(request: Request, *, actor, title: str, question: str, action: str, button: str, cancel_url: str,
        fields: dict[str, str] | None = None, nav: str = "incidents"):
    """Answer an unconfirmed post with a page asking the question; its button posts again with confirm=yes."""
    # why: 409 like the model page's question: nothing happened yet, and a script can tell it from a success
    return render(request, "confirm.html", {
        "title": title, "question": question, "action": action, "button": button, "cancel_url": cancel_url,
        "fields": fields or {}, "nav": nav, "confirm_value": CONFIRMED,
    }, actor=actor, status_code=409)
