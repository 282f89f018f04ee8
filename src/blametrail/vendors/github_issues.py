"""GitHub Issues as an action-item tracker (REST API): create the issue, read and set its state, and the `issues`
webhook (X-Hub-Signature-256) that brings a close or reopen back to the action item."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote, urlsplit

from blametrail.actions.trackers import ExternalIssue, IssueDraft
from blametrail.errors import UpstreamError
from blametrail.netguard import OutboundPolicy
from blametrail.vendors import assignees, tracker_http
from blametrail.vendors.base import BASE_URL, Setting, Stopwatch, TestResult, Vendor

DEFAULT_BASE_URL = "https://api.github.com"
ERRORS = {
    401: "GitHub rejected the token (HTTP 401): create a new fine-grained token with Issues read and write.",
    403: "The token may not write issues in that repository (HTTP 403): give it Issues read and write.",
    404: "GitHub has no such repository, or the token cannot see it (HTTP 404): check owner/name and the token's "
         "repository access.",
    410: "Issues are turned off in that repository (HTTP 410).",
    422: "GitHub refused the issue (HTTP 422): check that the repository accepts issues.",
}


def _base(config: dict) -> str:
    return (config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")


def _repo(config: dict) -> str:
    repo = str(config.get("repository") or "").strip()
    owner, _, name = repo.partition("/")
    if not owner or not name or "/" in name:
        raise UpstreamError("The repository must be written owner/name (acme/checkout).")
    return f"{quote(owner, safe='')}/{quote(name, safe='')}"


def _call(config: dict, policy: OutboundPolicy, timeout: float, method: str, path: str, **kwargs) -> dict:
    headers = {"Authorization": f"Bearer {config.get('token', '')}", "Accept": "application/vnd.github+json",
               "X-GitHub-Api-Version": "2022-11-28"}
    return tracker_http.call("GitHub", policy, timeout, method, _base(config) + path, headers=headers, errors=ERRORS,
                             where=urlsplit(_base(config)).netloc, **kwargs)


def _number(key: str) -> str:
    number = key.rpartition("#")[2]
    if not number.isdigit():
        raise UpstreamError(f"{key!r} is not a GitHub issue key (owner/name#number).")
    return number


def _state(issue: dict) -> str:
    if issue.get("state") == "closed":
        return "closed:not_planned" if issue.get("state_reason") == "not_planned" else "closed"
    return "open"


class GitHubIssues:
    name = "github_issues"

    def create_issue(self, config: dict, draft: IssueDraft, *, policy, timeout: float) -> ExternalIssue:
        body = {"title": draft.title, "body": draft.description, "labels": [f"priority: {draft.priority}"]}
        if draft.assignee:
            body["assignees"] = [draft.assignee]
        issue = _call(config, policy, timeout, "POST", f"/repos/{_repo(config)}/issues", json=body)
        return ExternalIssue(key=f"{config['repository']}#{issue['number']}", url=issue.get("html_url") or "",
                             status=_state(issue))

    def read_status(self, config: dict, key: str, *, policy, timeout: float) -> str:
        return _state(_call(config, policy, timeout, "GET", f"/repos/{_repo(config)}/issues/{_number(key)}"))

    def set_status(self, config: dict, key: str, status: str, *, policy, timeout: float) -> str:
        body = ({"state": "closed", "state_reason": "not_planned" if status == "wont_do" else "completed"}
                if status in ("done", "wont_do") else {"state": "open"})
        return _state(_call(config, policy, timeout, "PATCH", f"/repos/{_repo(config)}/issues/{_number(key)}",
                            json=body))

    def item_status(self, tracker_status: str) -> str | None:
        return {"open": "open", "closed": "done", "closed:not_planned": "wont_do"}.get(tracker_status)


TRACKER = GitHubIssues()


def verify(body: bytes, header: str | None, secret: str) -> bool:
    """Tell whether X-Hub-Signature-256 is sha256=<hex HMAC-SHA256 of the raw body> under the webhook secret."""
    scheme, _, presented = (header or "").strip().partition("=")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return scheme == "sha256" and hmac.compare_digest(presented.lower().encode(), expected.encode())


def parse_event(event: str | None, payload: dict) -> tuple[str, str] | None:
    """Return (issue key, tracker status) from an `issues` event that changes state; None for anything else."""
    if event != "issues" or payload.get("action") not in ("closed", "reopened", "edited"):
        return None
    issue, repo = payload.get("issue") or {}, (payload.get("repository") or {}).get("full_name")
    if not repo or not issue.get("number"):
        return None
    return f"{repo}#{issue['number']}", _state(issue)


def test(config: dict, policy: OutboundPolicy, timeout: float) -> TestResult:
    """Read the repository with the token: it names the repository and whether issues are on."""
    watch = Stopwatch()
    try:
        repo = _call(config, policy, timeout, "GET", f"/repos/{_repo(config)}")
    except UpstreamError as exc:
        return TestResult(ok=False, latency_ms=watch.ms, detail=str(exc))
    if repo.get("has_issues") is False:
        return TestResult(ok=False, latency_ms=watch.ms, detail=f"Issues are turned off in {repo.get('full_name')}.")
    return TestResult(ok=True, latency_ms=watch.ms, detail=f"Can open issues in {repo.get('full_name')}.")


VENDOR = Vendor(
    kind="github_issues", label="GitHub Issues",
    settings=(
        Setting("token", "Token", secret=True, hint="A fine-grained personal access token with Issues: read and write "
                                                     "on the repository."),
        Setting("repository", "Repository", max_length=200, hint="owner/name, e.g. acme/checkout"),
        Setting("webhook_secret", "Webhook secret", secret=True, hint="The secret you set on the repository's "
                                                                       "webhook (issues events)."),
        assignees.setting("dana-gh"),
        BASE_URL,
    ),
    inbound=("webhook",), default_base_url=DEFAULT_BASE_URL, test=test, docs="github-issues",
)
