"""Jira Cloud as an action-item tracker (REST API v3): create the issue in a project, read its status category, move
it with a transition, and the webhook (X-Hub-Signature: sha256=<hex HMAC>) that brings a status change back."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote, urlsplit

from blametrail.actions.trackers import ExternalIssue, IssueDraft
from blametrail.errors import UpstreamError
from blametrail.netguard import OutboundPolicy
from blametrail.vendors import assignees, tracker_http
from blametrail.vendors.base import Setting, Stopwatch, TestResult, Vendor

ERRORS = {
    400: "Jira refused the issue (HTTP 400): check the project key and that it has a Task issue type.",
    401: "Jira rejected the e-mail and API token (HTTP 401): create a new API token at id.atlassian.com → Security.",
    403: "The account may not create or move issues in that project (HTTP 403).",
    404: "Jira has no such project or issue, or the account cannot see it (HTTP 404).",
}
CATEGORY_ITEM = {"new": "open", "indeterminate": "in_progress", "done": "done"}
WONT_DO = {"won't do", "wont do", "won't fix", "declined", "cancelled", "canceled"}


def _site(config: dict) -> str:
    return str(config.get("site_url") or "").rstrip("/")


def _call(config: dict, policy: OutboundPolicy, timeout: float, method: str, path: str, **kwargs) -> dict:
    raw = f"{config.get('email', '')}:{config.get('api_token', '')}".encode()
    headers = {"Authorization": "Basic " + base64.b64encode(raw).decode(), "Accept": "application/json"}
    return tracker_http.call("Jira", policy, timeout, method, _site(config) + path, headers=headers, errors=ERRORS,
                             where=urlsplit(_site(config)).netloc, **kwargs)


def _adf(text: str) -> dict:
    """Markdown-ish text as Atlassian Document Format: one paragraph per line (Jira v3 takes no plain text)."""
    paragraphs = [{"type": "paragraph", "content": [{"type": "text", "text": line}]}
                  for line in text.splitlines() if line.strip()]
    return {"type": "doc", "version": 1, "content": paragraphs or [{"type": "paragraph", "content": []}]}


def _status(fields: dict) -> str:
    status = fields.get("status") or {}
    category = ((status.get("statusCategory") or {}).get("key")) or "new"
    resolution = ((fields.get("resolution") or {}).get("name") or "").lower()
    if category == "done" and (resolution in WONT_DO or (status.get("name") or "").lower() in WONT_DO):
        return "done:wont_do"
    return category


class Jira:
    name = "jira"

    def create_issue(self, config: dict, draft: IssueDraft, *, policy, timeout: float) -> ExternalIssue:
        made = _call(config, policy, timeout, "POST", "/rest/api/3/issue", json={"fields": {
            "project": {"key": config.get("project_key")}, "summary": draft.title[:255],
            "issuetype": {"name": "Task"}, "description": _adf(draft.description),
            "labels": ["blametrail", f"priority-{draft.priority}"],
            **({"assignee": {"accountId": draft.assignee}} if draft.assignee else {})}})
        key = made.get("key")
        if not key:
            raise UpstreamError("Jira did not create the issue.")
        return ExternalIssue(key=key, url=f"{_site(config)}/browse/{key}", status="new")

    def read_status(self, config: dict, key: str, *, policy, timeout: float) -> str:
        issue = _call(config, policy, timeout, "GET", f"/rest/api/3/issue/{quote(key, safe='')}",
                      params={"fields": "status,resolution"})
        return _status(issue.get("fields") or {})

    def set_status(self, config: dict, key: str, status: str, *, policy, timeout: float) -> str:
        path = f"/rest/api/3/issue/{quote(key, safe='')}/transitions"
        transitions = _call(config, policy, timeout, "GET", path).get("transitions") or []
        category = {"done": "done", "wont_do": "done", "in_progress": "indeterminate"}.get(status, "new")
        chosen = next((t for t in transitions
                       if ((t.get("to") or {}).get("statusCategory") or {}).get("key") == category), None)
        if chosen is None:
            raise UpstreamError(f"Jira offers no transition of {key} to a '{category}' status from where it is.")
        _call(config, policy, timeout, "POST", path, json={"transition": {"id": chosen["id"]}})
        return "done:wont_do" if status == "wont_do" else category

    def item_status(self, tracker_status: str) -> str | None:
        return "wont_do" if tracker_status == "done:wont_do" else CATEGORY_ITEM.get(tracker_status)


TRACKER = Jira()


def verify(body: bytes, header: str | None, secret: str) -> bool:
    """Tell whether X-Hub-Signature is sha256=<hex HMAC-SHA256 of the raw body> under the webhook's secret."""
    scheme, _, presented = (header or "").strip().partition("=")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return scheme == "sha256" and hmac.compare_digest(presented.lower().encode(), expected.encode())


def parse_event(payload: dict) -> tuple[str, str] | None:
    """Return (issue key, status) from a jira:issue_updated event; None for anything else."""
    issue = payload.get("issue") or {}
    if payload.get("webhookEvent") not in ("jira:issue_updated", "jira:issue_created") or not issue.get("key"):
        return None
    return str(issue["key"]), _status(issue.get("fields") or {})


def test(config: dict, policy: OutboundPolicy, timeout: float) -> TestResult:
    """Ask who the token belongs to and read the project."""
    watch = Stopwatch()
    try:
        me = _call(config, policy, timeout, "GET", "/rest/api/3/myself")
        project = _call(config, policy, timeout, "GET",
                        f"/rest/api/3/project/{quote(str(config.get('project_key') or ''), safe='')}")
    except UpstreamError as exc:
        return TestResult(ok=False, latency_ms=watch.ms, detail=str(exc))
    return TestResult(ok=True, latency_ms=watch.ms, detail=f"Connected as {me.get('displayName')}; issues go to "
                                                           f"{project.get('name')} ({project.get('key')}).")


VENDOR = Vendor(
    kind="jira", label="Jira Cloud",
    settings=(
        Setting("site_url", "Site URL", url=True, max_length=2000, hint="https://your-team.atlassian.net"),
        Setting("email", "Account e-mail", max_length=320),
        Setting("api_token", "API token", secret=True, hint="id.atlassian.com → Security → API tokens."),
        Setting("project_key", "Project key", max_length=40, hint="e.g. OPS"),
        Setting("webhook_secret", "Webhook secret", secret=True, required=False,
                hint="The secret set on the Jira webhook (issue updated); without it status changes are not accepted."),
        assignees.setting("5b10a2844c20165700ede21g"),
    ),
    inbound=("webhook",), test=test, docs="jira",
)
