"""`blametrail serve`: the uvicorn it starts believes no forwarded header; BLAMETRAIL_TRUSTED_PROXIES alone does."""

from __future__ import annotations

import contextlib
import os

import httpx
import pytest
import uvicorn

from blametrail import cli
from tests.live import serving


@pytest.fixture
def serve_env(monkeypatch, settings):
    """The environment `serve` reads: this test's database, no background work, quiet logs."""
    for name in [n for n in os.environ if n.startswith("BLAMETRAIL_")]:
        monkeypatch.delenv(name)
    for name in ("FORWARDED_ALLOW_IPS", "WEB_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    env = {"DATA_DIR": str(settings.data_dir), "DATABASE_URL": settings.resolved_database_url,
           "QUEUE_URL": "memory://", "EMBEDDED_WORKERS": "0", "MONITOR_SCHEDULER": "false", "LOG_LEVEL": "WARNING"}
    for name, value in env.items():
        monkeypatch.setenv("BLAMETRAIL_" + name, value)
    return lambda **more: [monkeypatch.setenv("BLAMETRAIL_" + k.upper(), v) for k, v in more.items()]


def run_serve(monkeypatch, *argv: str) -> dict:
    """Run `blametrail serve` up to the point it hands uvicorn its app and options; return them."""
    handed: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: handed.update(app=app, options=options))
    cli.cmd_serve(cli.build_parser().parse_args(["serve", *argv]))
    return handed


@contextlib.contextmanager
def served(monkeypatch, *argv: str):
    """Serve for real what `blametrail serve` built, with the uvicorn options it chose, on a loopback port."""
    handed = run_serve(monkeypatch, *argv)
    try:
        with serving(handed["app"], **handed["options"]) as url:
            yield url
    finally:
        handed["app"].state.runtime.close()


def failed_logins(url: str, forwarded: list[str]) -> list[int]:
    """Fail one login per forwarded-for value (a new unknown email each, so no account limit is reached)."""
    with httpx.Client(base_url=url, timeout=30) as c:
        token = c.get("/login").cookies["csrftoken"]
        return [c.post("/login", headers={"X-Forwarded-For": hop},
                       data={"email": f"nobody{i}@example.test", "password": "wrong", "csrftoken": token}).status_code
                for i, hop in enumerate(forwarded)]


def test_a_forged_forwarded_for_does_not_escape_the_per_address_limit(monkeypatch, serve_env):
    with served(monkeypatch) as url:  # from 127.0.0.1, which uvicorn believes by default
        statuses = failed_logins(url, [f"198.51.100.{n}" for n in range(40)])
    assert statuses == [400] * 30 + [429] * 10


def test_behind_a_trusted_proxy_the_rightmost_untrusted_hop_counts(monkeypatch, serve_env):
    serve_env(trusted_proxies="127.0.0.1", login_ip_max_failures="3")
    with served(monkeypatch) as url:
        # the client wrote the left entries; the proxy appended the address it saw
        statuses = failed_logins(url, ["203.0.113.1, 198.51.100.7", "203.0.113.2, 198.51.100.7", "198.51.100.7",
                                       "203.0.113.3, 198.51.100.7", "198.51.100.8", "198.51.100.7, 127.0.0.1"])
    assert statuses == [400, 400, 400, 429, 400, 429]


def test_serve_turns_uvicorn_proxy_headers_off_in_every_mode(monkeypatch, serve_env):
    assert run_serve(monkeypatch)["options"]["proxy_headers"] is False
    many = run_serve(monkeypatch, "--workers", "3")
    assert many["app"] == "blametrail.cli:web_app" and many["options"]["workers"] == 3
    assert many["options"]["proxy_headers"] is False and "forwarded_allow_ips" not in many["options"]


def test_the_removed_forwarded_allow_ips_option_says_what_replaced_it(monkeypatch, serve_env, capsys):
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("serve started"))
    assert cli.main(["serve", "--forwarded-allow-ips", "*"]) == 2
    assert "BLAMETRAIL_TRUSTED_PROXIES" in capsys.readouterr().err
