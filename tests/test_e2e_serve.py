"""The whole flow through a running `blametrail serve` (real uvicorn, real queue consumer) and the CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def env(settings, redis_url):
    e = {k: v for k, v in os.environ.items() if not k.startswith("BLAMETRAIL_")}
    e.update(BLAMETRAIL_DATA_DIR=str(settings.data_dir), BLAMETRAIL_DATABASE_URL=settings.resolved_database_url,
             PYTHONPATH=str(ROOT / "src"))
    if redis_url:
        e["BLAMETRAIL_QUEUE_URL"] = redis_url
    return e


def cli(env, *args, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "blametrail.cli", *args], env=env, capture_output=True, text=True,
                          timeout=60)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def server(env):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "blametrail.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise AssertionError("server did not start: " + (proc.stdout.read() if proc.stdout else ""))
    yield base, proc
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("serve did not stop on SIGTERM")


def test_cli_then_full_flow_through_running_server(env, server):
    base, proc = server
    org = json.loads(cli(env, "org", "create", "acme", "--name", "Acme", "--plan", "starter").stdout)
    assert org["slug"] == "acme" and org["plan"] == "starter"
    cli(env, "user", "create", "owner@acme.test", "--org", "acme", "--role", "owner", "--password", "correct-horse")
    cli(env, "user", "create", "dev@acme.test", "--org", "acme", "--role", "member")
    owner = {"Authorization": "Bearer " + json.loads(cli(env, "token", "create", "owner@acme.test", "--org", "acme").stdout)["token"]}
    dev = {"Authorization": "Bearer " + json.loads(cli(env, "token", "create", "dev@acme.test", "--org", "acme").stdout)["token"]}

    with httpx.Client(base_url=base, timeout=10) as c:
        c.post("/api/v1/deploys", headers=dev, json={
            "service": "checkout", "environment": "production", "version": "v2.14.0",
            "commits": [{"sha": "4e7a91c0", "author": "Jo", "message": "Limit payment pool to 5",
                         "files": ["payments/client.py"]}]}).raise_for_status()
        iid = c.post("/api/v1/incidents", headers=dev, json={"title": "Checkout 502s", "severity": "SEV-2",
                                                              "services": ["checkout"]}).json()["id"]
        c.post(f"/api/v1/incidents/{iid}/updates", headers=dev,
               json={"body": "Payment pool exhausted since checkout v2.14.0; rolling back."}).raise_for_status()
        r = c.post(f"/api/v1/incidents/{iid}/resolve", headers=dev)
        assert r.status_code == 200 and r.json()["resolved_by"] == "dev@acme.test"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pm = c.get(f"/api/v1/incidents/{iid}/postmortem", headers=dev).json()
            if pm["status"] not in ("queued", "generating"):
                break
            time.sleep(0.1)
        assert pm["status"] == "draft", pm
        assert "v2.14.0" in pm["sections"]["root_cause"]
        r = c.patch(f"/api/v1/incidents/{iid}/postmortem", headers=dev,
                    json={"version": pm["version"], "sections": {"summary": "Checkout card payments failed for a while."}})
        assert r.status_code == 200 and r.json()["status"] == "edited"
        assert c.post(f"/api/v1/incidents/{iid}/postmortem/publish", headers=dev).status_code == 403
        r = c.post(f"/api/v1/incidents/{iid}/postmortem/publish", headers=owner)
        assert r.status_code == 200 and r.json()["status"] == "published"
        md = c.get(f"/api/v1/incidents/{iid}/postmortem/export.md", headers=dev)
        assert md.headers["content-type"].startswith("text/markdown")
        assert "Checkout card payments failed for a while." in md.text
        assert c.get("/api/v1/org/usage", headers=owner).json()["used"] == 1


def test_first_run_prints_the_setup_link(env):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "blametrail.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "/setup?token=" in line:
                break
        assert any(f"http://127.0.0.1:{port}/setup?token=" in line for line in lines), "".join(lines)
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_cli_errors_are_one_line_and_nonzero(env):
    cli(env, "org", "create", "acme", "--plan", "pro")
    dup = cli(env, "org", "create", "acme", check=False)
    assert dup.returncode == 2
    assert dup.stderr.strip() == "blametrail: error: An organization with slug 'acme' already exists."
    bad = cli(env, "user", "create", "not-an-email", "--org", "acme", "--role", "owner", check=False)
    assert bad.returncode == 2 and "Invalid email address" in bad.stderr
    missing = cli(env, "token", "create", "nobody@acme.test", "--org", "acme", check=False)
    assert missing.returncode == 2 and "is not a member" in missing.stderr
    assert cli(env, "org", "create", "Bad Slug", check=False).returncode == 2
    assert json.loads(cli(env, "org", "plan", "acme", "free").stdout)["plan"] == "free"
