"""Linear as an action-item tracker (GraphQL API): create the issue in a team, read and move its workflow state, and
the webhook (Linear-Signature: hex HMAC-SHA256 of the body) that brings a state change back to the action item."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from blametrail.actions.trackers import ExternalIssue, IssueDraft
from blametrail.errors import UpstreamError
from blametrail.netguard import OutboundPolicy
from blametrail.vendors import assignees, tracker_http
from blametrail.vendors.base import BASE_URL, Setting, Stopwatch, TestResult, Vendor

DEFAULT_BASE_URL = "https://api.linear.app"
PRIORITY = {"high": 2, "medium": 3, "low": 4}  # Linear: 1 urgent, 2 high, 3 medium, 4 low
ITEM_STATUS = {"completed": "done", "canceled": "wont_do", "started": "in_progress", "unstarted": "open",
               "backlog": "open", "triage": "open"}
STATE_FOR = {"done": ("completed",), "wont_do": ("canceled",), "in_progress": ("started",),
             "open": ("unstarted", "backlog", "triage")}
ERRORS = {400: "Linear refused the request (HTTP 400): check the team id.",
          401: "Linear rejected the API key (HTTP 401): create a new personal API key in Settings → API."}
ISSUE_FIELDS = "id identifier url state { type name }"


def _endpoint(config: dict) -> str:
    return (config.get("base_url") or DEFAULT_BASE_URL).rstrip("/") + "/graphql"


def _gql(config: dict, policy: OutboundPolicy, timeout: float, query: str, variables: dict | None = None) -> dict:
    url = _endpoint(config)
    answer = tracker_http.call("Linear", policy, timeout, "POST", url,
                               headers={"Authorization": str(config.get("api_key") or ""),
                                        "Content-Type": "application/json"},
                               errors=ERRORS, where=urlsplit(url).netloc,
                               json={"query": query, "variables": variables or {}})
    if answer.get("errors"):
        first = answer["errors"][0]
        code = ((first.get("extensions") or {}).get("code") or "").upper()
        if code in ("AUTHENTICATION_ERROR", "UNAUTHENTICATED"):
            raise UpstreamError(ERRORS[401])
        raise UpstreamError(f"Linear refused the request: {str(first.get('message') or 'unknown error')[:200]}")
    return answer.get("data") or {}


def _status(issue: dict) -> str:
    return str(((issue.get("state") or {}).get("type")) or "unstarted")


class Linear:
    name = "linear"

    def create_issue(self, config: dict, draft: IssueDraft, *, policy, timeout: float) -> ExternalIssue:
        data = _gql(config, policy, timeout,
                    f"mutation($input: IssueCreateInput!) {{ issueCreate(input: $input) {{ success issue "
                    f"{{ {ISSUE_FIELDS} }} }} }}",
                    {"input": {"teamId": config.get("team_id"), "title": draft.title, "description": draft.description,
                               "priority": PRIORITY.get(draft.priority, 0),
                               **({"assigneeId": draft.assignee} if draft.assignee else {})}})
        issue = ((data.get("issueCreate") or {}).get("issue")) or {}
        if not issue.get("id"):
            raise UpstreamError("Linear did not create the issue.")
        return ExternalIssue(key=issue["identifier"], url=issue.get("url") or "", status=_status(issue))

    def read_status(self, config: dict, key: str, *, policy, timeout: float) -> str:
        data = _gql(config, policy, timeout, f"query($id: String!) {{ issue(id: $id) {{ {ISSUE_FIELDS} }} }}",
                    {"id": key})
        return _status(data.get("issue") or {})

    def set_status(self, config: dict, key: str, status: str, *, policy, timeout: float) -> str:
        team = _gql(config, policy, timeout, "query($id: String!) { team(id: $id) { states { nodes { id type name "
                                             "position } } } }", {"id": config.get("team_id")})
        states = sorted((((team.get("team") or {}).get("states") or {}).get("nodes") or []),
                        key=lambda s: s.get("position") or 0)
        wanted = STATE_FOR.get(status, ("unstarted",))
        target = next((s for kind in wanted for s in states if s.get("type") == kind), None)
        if target is None:
            raise UpstreamError(f"The Linear team has no workflow state of type {wanted[0]}.")
        data = _gql(config, policy, timeout,
                    f"mutation($id: String!, $input: IssueUpdateInput!) {{ issueUpdate(id: $id, input: $input) "
                    f"{{ success issue {{ {ISSUE_FIELDS} }} }} }}", {"id": key, "input": {"stateId": target["id"]}})
        return _status(((data.get("issueUpdate") or {}).get("issue")) or {})

    def item_status(self, tracker_status: str) -> str | None:
        return ITEM_STATUS.get(tracker_status)


TRACKER = Linear()
MAX_AGE_MS = 60_000  # Linear's advice: refuse a webhook whose webhookTimestamp is more than a minute away


def verify(body: bytes, header: str | None, secret: str) -> bool:
    """Tell whether Linear-Signature is the hex HMAC-SHA256 of the raw body under the webhook's signing secret."""
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return bool(header) and hmac.compare_digest((header or "").strip().lower().encode(), expected.encode())


def parse_event(payload: dict) -> tuple[str, str] | None:
    """Return (issue identifier, state type) from an Issue update; None for anything else."""
    data = payload.get("data") or {}
    if payload.get("type") != "Issue" or payload.get("action") not in ("update", "create") or not data.get("identifier"):
        return None
    return str(data["identifier"]), _status(data)


def test(config: dict, policy: OutboundPolicy, timeout: float) -> TestResult:
    """Ask who the key belongs to and whether the team exists."""
    watch = Stopwatch()
    try:
        data = _gql(config, policy, timeout, "query($id: String!) { viewer { name } team(id: $id) { name key } }",
                    {"id": config.get("team_id")})
    except UpstreamError as exc:
        return TestResult(ok=False, latency_ms=watch.ms, detail=str(exc))
    team = data.get("team") or {}
    if not team:
        return TestResult(ok=False, latency_ms=watch.ms, detail="Linear has no team with that id.")
    return TestResult(ok=True, latency_ms=watch.ms, detail=f"Connected as {(data.get('viewer') or {}).get('name')}; "
                                                           f"issues go to team {team.get('name')} ({team.get('key')}).")


VENDOR = Vendor(
    kind="linear", label="Linear",
    settings=(
        Setting("api_key", "API key", secret=True, hint="Settings → Security & access → Personal API keys."),
        Setting("team_id", "Team id", max_length=100, hint="The team's UUID (Settings → Teams → the team → copy id)."),
        Setting("webhook_secret", "Webhook signing secret", secret=True,
                hint="Settings → API → Webhooks → your webhook (Issues) → signing secret."),
        assignees.setting("<user uuid>"),
        BASE_URL,
    ),
    inbound=("webhook",), default_base_url=DEFAULT_BASE_URL, test=test, docs="linear",
)
