"""Secret scrubbing: every kind of credential is redacted; ordinary incident text is left alone."""

from __future__ import annotations

import pytest

from blametrail.ai.scrub import scrub

SECRETS = [
    ("openai_key", "OPENAI_API_KEY is sk-proj-AbCdEfGhIjKlMnOpQrStUvWx123", "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx123"),
    ("openai_key", "key sk-AbCdEfGhIjKlMnOpQrStUvWx1234567890", "sk-AbCdEfGhIjKlMnOpQrStUvWx1234567890"),
    ("anthropic_key", "using sk-ant-api03-AbCdEfGhIjKlMnOp_qrstuv-1234", "sk-ant-api03-AbCdEfGhIjKlMnOp_qrstuv-1234"),
    ("aws_access_key", "creds AKIAIOSFODNN7EXAMPLE loaded", "AKIAIOSFODNN7EXAMPLE"),
    ("github_token", "push with ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
    ("slack_token", "slack xoxb-123456789012-abcdefABCDEF", "xoxb-123456789012-abcdefABCDEF"),
    ("blametrail_token", "curl -H 'X: bt_Zx8f3kLmNoPqRsTuVwXy12' ", "bt_Zx8f3kLmNoPqRsTuVwXy12"),
    ("webhook_secret", "secret whsec_q1w2e3r4t5y6u7i8o9p0asdfgh", "whsec_q1w2e3r4t5y6u7i8o9p0asdfgh"),
    ("bearer_token", "Authorization: Bearer abcDEF123456ghiJKL789", "abcDEF123456ghiJKL789"),
    ("password", "DATABASE_URL=postgres://app:s3cr3tPa55@db.internal:5432/app", "s3cr3tPa55"),
    ("password", "redis://:hunter2pass@cache:6379/0", "hunter2pass"),
    ("secret", "login failed password=hunter2 for user x", "hunter2"),
    ("secret", "GET /cb?code=1&token=abc123xyz&state=9", "abc123xyz"),
    ("secret", 'config {"client_secret": "s3cr3t-value"}', "s3cr3t-value"),
    ("jwt", "cookie eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
     "eyJhbGciOiJIUzI1NiJ9"),
    ("private_key", "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1234\nabcd\n-----END RSA PRIVATE KEY-----",
     "MIIEpAIBAAKCAQEA1234"),
    ("private_key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\n-----END OPENSSH PRIVATE KEY-----",
     "b3BlbnNzaC1rZXktdjEAAAA"),
]


@pytest.mark.parametrize(("kind", "text", "secret"), SECRETS, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(SECRETS)])
def test_each_secret_kind_is_redacted(kind, text, secret):
    out = scrub(text)
    assert secret not in out
    assert f"[REDACTED:{kind}]" in out


def test_connection_string_keeps_the_useful_parts():
    out = scrub("could not connect to postgres://app:pw123456@db.internal:5432/app")
    assert out == "could not connect to postgres://app:[REDACTED:password]@db.internal:5432/app"


@pytest.mark.parametrize("text", [
    "Checkout returning 500s since about 10:00; p99 latency 1200ms on checkout-api v2.3.",
    "Rolled back deploy_4 (commit abc1234) and restarted the payment pool; errors gone at 10:24 UTC.",
    "The token refresh failed: timeout after 30s. See https://grafana.example.com/d/abc?orgId=1",
    "author=alice service=checkout status=firing severity=critical",
    "PoolTimeout: payment client pool exhausted after <*> ms",
    "The skeleton key task is done; ask-ant team. sk-1 is a short label.",
])
def test_normal_text_is_untouched(text):
    assert scrub(text) == text


def test_scrubbing_is_idempotent():
    text = "password=hunter2 and sk-proj-AbCdEfGhIjKlMnOpQrStUvWx123"
    assert scrub(scrub(text)) == scrub(text)
