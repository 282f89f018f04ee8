"""The pure deploy parsers against real-looking GitHub payloads and generic bodies."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest

from blametrail.deploys import parsers
from blametrail.errors import ValidationFailed

REPOSITORY = {
    "id": 614728391, "node_id": "R_kgDOJKQxRw", "name": "checkout", "full_name": "acme/checkout", "private": True,
    "owner": {"login": "acme", "id": 98120231, "type": "Organization", "site_admin": False},
    "html_url": "https://github.com/acme/checkout", "description": "Checkout service", "fork": False,
    "url": "https://api.github.com/repos/acme/checkout", "created_at": "2023-03-14T09:12:44Z",
    "updated_at": "2026-11-20T16:03:10Z", "pushed_at": "2026-11-26T09:48:51Z", "default_branch": "main",
    "visibility": "private", "language": "Python", "topics": [], "archived": False,
}
SENDER = {"login": "jo-dev", "id": 4410032, "type": "User", "site_admin": False}
SHA = "4e7a91c0b8e2d35f1f6c0a3d9e2b7c4f5a6d8e91"

DEPLOYMENT_STATUS_SUCCESS = {
    "action": "created",
    "deployment_status": {
        "url": "https://api.github.com/repos/acme/checkout/deployments/1712093311/statuses/3302041198",
        "id": 3302041198, "node_id": "DES_kwDOJKQxR87ExYnu", "state": "success",
        "creator": {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"},
        "description": "Deployment finished successfully.", "environment": "production",
        "target_url": "https://github.com/acme/checkout/actions/runs/11920344210/job/33221190842",
        "created_at": "2026-11-26T09:50:12Z", "updated_at": "2026-11-26T09:50:12Z",
        "deployment_url": "https://api.github.com/repos/acme/checkout/deployments/1712093311",
        "repository_url": "https://api.github.com/repos/acme/checkout", "environment_url": "https://checkout.acme.test",
        "log_url": "https://github.com/acme/checkout/actions/runs/11920344210/job/33221190842",
    },
    "deployment": {
        "url": "https://api.github.com/repos/acme/checkout/deployments/1712093311", "id": 1712093311,
        "node_id": "DE_kwDOJKQxR85mDcB_", "task": "deploy", "original_environment": "production",
        "environment": "production", "description": "Limit payment pool to 5", "sha": SHA, "ref": "v2.14.0",
        "payload": {}, "creator": {"login": "jo-dev", "id": 4410032, "type": "User"},
        "created_at": "2026-11-26T09:46:03Z", "updated_at": "2026-11-26T09:50:12Z",
        "statuses_url": "https://api.github.com/repos/acme/checkout/deployments/1712093311/statuses",
        "repository_url": "https://api.github.com/repos/acme/checkout", "transient_environment": False,
        "production_environment": True,
    },
    "check_run": None, "workflow_run": None,
    "repository": REPOSITORY,
    "organization": {"login": "acme", "id": 98120231},
    "sender": SENDER,
}

PUSH_MAIN = {
    "ref": "refs/heads/main",
    "before": "9d2b1c0e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c",
    "after": SHA,
    "repository": {**REPOSITORY, "pushed_at": 1795686531, "created_at": 1678785164, "master_branch": "main"},
    "pusher": {"name": "jo-dev", "email": "jo@acme.test"},
    "organization": {"login": "acme", "id": 98120231},
    "sender": SENDER,
    "created": False, "deleted": False, "forced": False, "base_ref": None,
    "compare": "https://github.com/acme/checkout/compare/9d2b1c0e7f6a...4e7a91c0b8e2",
    "commits": [
        {
            "id": "1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e", "tree_id": "aa01bb02cc03dd04ee05ff06aa07bb08cc09dd0a",
            "distinct": True, "message": "Add payment pool metrics\n\nExport pool size and wait time.",
            "timestamp": "2026-11-26T10:41:09+01:00",
            "url": "https://github.com/acme/checkout/commit/1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e",
            "author": {"name": "Sam Ops", "email": "sam@acme.test", "username": "sam-ops"},
            "committer": {"name": "GitHub", "email": "noreply@github.com", "username": "web-flow"},
            "added": ["checkout/metrics.py"], "removed": [], "modified": ["checkout/pool.py"],
        },
        {
            "id": SHA, "tree_id": "bb01cc02dd03ee04ff05aa06bb07cc08dd09ee0b", "distinct": True,
            "message": "Limit payment pool to 5", "timestamp": "2026-11-26T09:45:30Z",
            "url": f"https://github.com/acme/checkout/commit/{SHA}",
            "author": {"name": "Jo Dev", "email": "jo@acme.test", "username": "jo-dev"},
            "committer": {"name": "Jo Dev", "email": "jo@acme.test", "username": "jo-dev"},
            "added": [], "removed": ["checkout/old_pool.py"], "modified": ["checkout/config.py", "checkout/pool.py"],
        },
    ],
    "head_commit": {
        "id": SHA, "tree_id": "bb01cc02dd03ee04ff05aa06bb07cc08dd09ee0b", "distinct": True,
        "message": "Limit payment pool to 5", "timestamp": "2026-11-26T09:45:30Z",
        "url": f"https://github.com/acme/checkout/commit/{SHA}",
        "author": {"name": "Jo Dev", "email": "jo@acme.test", "username": "jo-dev"},
        "added": [], "removed": ["checkout/old_pool.py"], "modified": ["checkout/config.py", "checkout/pool.py"],
    },
}

PING = {
    "zen": "Design for failure.", "hook_id": 512340987,
    "hook": {"type": "Repository", "id": 512340987, "name": "web", "active": True,
             "events": ["deployment_status", "push"],
             "config": {"content_type": "json", "insecure_ssl": "0",
                        "url": "https://blametrail.acme.test/webhooks/github/x"},
             "updated_at": "2026-11-26T08:00:00Z", "created_at": "2026-11-26T08:00:00Z"},
    "repository": REPOSITORY, "sender": SENDER,
}


def test_deployment_status_success_is_a_deploy():
    parsed = parsers.github_event("deployment_status", DEPLOYMENT_STATUS_SUCCESS)
    assert parsed.status == "deploy"
    d = parsed.deploy
    assert (d.service, d.environment, d.version) == ("checkout", "production", "v2.14.0")
    assert d.deployed_at == datetime(2026, 11, 26, 9, 50, 12, tzinfo=UTC)
    assert d.external_id == "gh-deployment-status:3302041198"
    assert d.url == "https://github.com/acme/checkout/actions/runs/11920344210/job/33221190842"
    assert [c.sha for c in d.commits] == [SHA]
    assert d.commits[0].author == "jo-dev" and d.commits[0].message == "Limit payment pool to 5"


@pytest.mark.parametrize("state", ["failure", "error", "pending", "in_progress", "queued", "inactive"])
def test_deployment_status_other_states_are_ignored(state):
    payload = copy.deepcopy(DEPLOYMENT_STATUS_SUCCESS)
    payload["deployment_status"]["state"] = state
    parsed = parsers.github_event("deployment_status", payload)
    assert parsed.status == "ignored" and parsed.deploy is None and state in parsed.reason


def test_deployment_payload_service_and_sha_version():
    payload = copy.deepcopy(DEPLOYMENT_STATUS_SUCCESS)
    payload["deployment"]["payload"] = json.dumps({"service": "payments-api"})  # GitHub keeps strings as sent
    payload["deployment"]["ref"] = SHA
    d = parsers.github_event("deployment_status", payload, default_service="ignored-when-payload-says").deploy
    assert d.service == "payments-api" and d.version == SHA[:12]


def test_deployment_status_uses_webhook_default_service_and_filters_environment():
    d = parsers.github_event("deployment_status", DEPLOYMENT_STATUS_SUCCESS, default_service="checkout-web").deploy
    assert d.service == "checkout-web"
    skipped = parsers.github_event("deployment_status", DEPLOYMENT_STATUS_SUCCESS, environment="staging")
    assert skipped.status == "ignored" and "staging" in skipped.reason


def test_push_to_default_branch_is_a_deploy_when_the_webhook_has_an_environment():
    parsed = parsers.github_event("push", PUSH_MAIN, environment="production")
    assert parsed.status == "deploy"
    d = parsed.deploy
    assert (d.service, d.environment, d.version) == ("checkout", "production", SHA[:12])
    assert d.external_id == f"gh-push:{SHA}"
    assert d.deployed_at == datetime(2026, 11, 26, 9, 48, 51, tzinfo=UTC)  # repository.pushed_at (epoch)
    assert d.url.startswith("https://github.com/acme/checkout/compare/")
    first, second = d.commits
    assert first.sha == "1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e" and first.author == "Sam Ops"
    assert first.message == "Add payment pool metrics\n\nExport pool size and wait time."
    assert first.files == ["checkout/metrics.py", "checkout/pool.py"]
    assert first.committed_at == datetime(2026, 11, 26, 9, 41, 9, tzinfo=UTC)
    assert second.files == ["checkout/config.py", "checkout/pool.py", "checkout/old_pool.py"]


def test_push_without_webhook_environment_is_ignored():
    parsed = parsers.github_event("push", PUSH_MAIN)
    assert parsed.status == "ignored" and "environment" in parsed.reason


def test_push_to_another_branch_is_ignored():
    payload = {**PUSH_MAIN, "ref": "refs/heads/feature/pool-size"}
    parsed = parsers.github_event("push", payload, environment="production")
    assert parsed.status == "ignored" and "refs/heads/feature/pool-size" in parsed.reason


def test_push_of_a_tag_or_branch_deletion_is_ignored():
    assert parsers.github_event("push", {**PUSH_MAIN, "ref": "refs/tags/v2.14.0"}, environment="p").status == "ignored"
    deleted = {**PUSH_MAIN, "deleted": True, "after": "0" * 40, "commits": [], "head_commit": None}
    assert parsers.github_event("push", deleted, environment="production").status == "ignored"


def test_ping_and_other_events():
    assert parsers.github_event("ping", PING).status == "ok"
    other = parsers.github_event("issues", {"action": "opened"})
    assert other.status == "ignored" and "issues" in other.reason


def test_github_schema_errors_are_validation_failures():
    with pytest.raises(ValidationFailed) as exc:
        parsers.github_event("deployment_status", {"repository": REPOSITORY})
    assert "deployment_status" in exc.value.detail
    bad = copy.deepcopy(PUSH_MAIN)
    bad["commits"][0]["id"] = "not-a-sha"
    with pytest.raises(ValidationFailed) as exc:
        parsers.github_event("push", bad, environment="production")
    assert "commits.0.sha" in exc.value.detail


def test_load_json_errors():
    with pytest.raises(parsers.MalformedPayload):
        parsers.load_json(b"{not json")
    with pytest.raises(parsers.MalformedPayload):
        parsers.load_json(b"")
    with pytest.raises(parsers.MalformedPayload):
        parsers.load_json(b"\xff\xfe")
    with pytest.raises(ValidationFailed):
        parsers.load_json(b"[1, 2]")


def test_load_json_accepts_githubs_form_encoding():
    from urllib.parse import urlencode

    body = urlencode({"payload": json.dumps(PING)}).encode()
    assert parsers.load_json(body, "application/x-www-form-urlencoded")["hook_id"] == 512340987


def test_generic_deploy_is_the_api_body_plus_external_id_and_url():
    parsed = parsers.generic_deploy({
        "service": "checkout", "version": "v2.14.0", "deployed_at": "2026-11-26T09:50:00Z",
        "external_id": "jenkins-4411", "url": "https://ci.acme.test/job/4411",
        "commits": [{"sha": "4e7a91c0", "author": "Jo", "message": "Limit pool", "files": ["pool.py"]}],
    }, environment="staging")
    d = parsed.deploy
    assert parsed.status == "deploy" and d.environment == "staging"  # the webhook's environment fills the gap
    assert d.external_id == "jenkins-4411" and d.commits[0].files == ["pool.py"]


def test_generic_deploy_rejects_unknown_fields_and_filters_environment():
    with pytest.raises(ValidationFailed) as exc:
        parsers.generic_deploy({"service": "checkout", "version": "1", "colour": "blue"})
    assert "colour" in exc.value.detail
    with pytest.raises(ValidationFailed):
        parsers.generic_deploy({"service": "checkout", "version": "1", "commits": [{"sha": "abcd", "extra": 1}]})
    skipped = parsers.generic_deploy({"service": "checkout", "version": "1", "environment": "dev"},
                                     environment="production")
    assert skipped.status == "ignored"
    assert parsers.generic_deploy({"version": "1"}, default_service="checkout").deploy.service == "checkout"
