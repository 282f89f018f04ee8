"""Login throttling: per account and per client address, in the database, refusing before any password check."""

from __future__ import annotations

import threading

import httpx
import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient

from blametrail import db
from blametrail.orgs import service as orgs
from blametrail.orgs import throttle
from blametrail.settings import Settings
from tests.live import serving

PASSWORD = "correct-horse-battery"
LOCKED = "Too many failed logins. Try again in 15 minutes."


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"login_ip_max_failures": 12, "trusted_proxies": "10.0.0.0/8, 127.0.0.1"})


@pytest.fixture
def browser(app):
    """Open browsers (one cookie jar each) that connect from a given address."""
    opened: list[TestClient] = []

    def open_browser(peer: str = "192.0.2.10") -> TestClient:
        c = TestClient(app, client=(peer, 40000))
        opened.append(c)
        return c

    yield open_browser
    for c in opened:
        c.close()


@pytest.fixture
def password_checks(monkeypatch):
    """Count real password verifications (the real function still runs)."""
    calls = []
    real = orgs.verify_password

    def counting(password, hashed):
        calls.append(1)
        return real(password, hashed)

    monkeypatch.setattr(orgs, "verify_password", counting)
    return calls


@pytest.fixture
def account(factory):
    slug = factory.org()
    return lambda: factory.member(slug, "member", password=PASSWORD).email


def log_in(c: TestClient, email: str, password: str = PASSWORD, headers: dict | None = None):
    if c.cookies.get("csrftoken") is None:
        c.get("/login")
    return c.post("/login", data={"email": email, "password": password, "csrftoken": c.cookies.get("csrftoken")},
                  headers=headers, follow_redirects=False)


def error_text(response) -> str:
    node = BeautifulSoup(response.text, "html.parser").select_one(".form-error")
    return " ".join(node.get_text().split()) if node else ""


def fail(c: TestClient, email: str, times: int, **kwargs) -> None:
    for _ in range(times):
        r = log_in(c, email, "wrong-password", **kwargs)
        assert r.status_code == 400, error_text(r)
        assert error_text(r) == "Wrong email or password."


def test_an_account_is_locked_after_five_failures_and_the_password_is_not_checked(browser, account, password_checks):
    c, email = browser(), account()
    fail(c, email, 5)
    assert len(password_checks) == 5
    r = log_in(c, email)  # the right password, but the account is locked
    assert r.status_code == 429
    assert r.headers["retry-after"] == "900"
    assert error_text(r) == LOCKED
    assert BeautifulSoup(r.text, "html.parser").select_one("input#login-email")["value"] == email
    assert len(password_checks) == 5
    assert log_in(browser("198.51.100.7"), email).status_code == 429  # the account, from anywhere


def test_unknown_emails_are_locked_the_same_way(browser, account):
    c, known = browser(), account()
    fail(c, known, 5)
    fail(c, "nobody@nowhere.test", 5)
    for email in (known, "NoBody@Nowhere.test "):
        r = log_in(c, email)
        assert (r.status_code, r.headers["retry-after"], error_text(r)) == (429, "900", LOCKED)


def test_other_accounts_still_log_in_while_one_is_locked(browser, account):
    c, locked, other = browser(), account(), account()
    fail(c, locked, 5)
    assert log_in(c, locked).status_code == 429
    r = log_in(browser(), other)
    assert r.status_code == 303 and r.headers["location"] == "/incidents"


def test_the_lock_ends_after_the_lockout(browser, account, clock):
    c, email = browser(), account()
    fail(c, email, 5)
    clock.advance(seconds=600)
    r = log_in(c, email)
    assert r.status_code == 429 and r.headers["retry-after"] == "300"
    assert error_text(r) == "Too many failed logins. Try again in 5 minutes."
    clock.advance(seconds=300)
    assert log_in(c, email).status_code == 303


def test_a_successful_login_clears_the_account_count(browser, account):
    email = account()
    fail(browser(), email, 4)
    assert log_in(browser(), email).status_code == 303
    fail(browser(), email, 4)  # would be locked at the fifth failure had the success not cleared the count
    assert log_in(browser(), email).status_code == 303


def test_failures_slide_out_of_the_window(browser, account, clock):
    c, email = browser(), account()
    fail(c, email, 3)
    clock.advance(seconds=600)
    fail(c, email, 2)
    assert log_in(c, email).status_code == 429  # five within 900 s
    other = account()
    fail(c, other, 3)
    clock.advance(seconds=901)
    fail(c, other, 4)  # the first three slid out: four in the window
    assert log_in(c, other).status_code == 303


def test_one_address_is_limited_across_accounts(browser, account):
    c = browser("203.0.113.5")
    for _ in range(3):
        fail(c, account(), 4)  # 12 failures, none of the accounts at its limit
    fresh = account()
    r = log_in(c, fresh)
    assert (r.status_code, error_text(r)) == (429, LOCKED)
    assert log_in(browser("203.0.113.6"), fresh).status_code == 303


def test_forwarded_for_counts_only_behind_a_trusted_proxy(browser, account):
    proxy = browser("10.0.0.2")
    for _ in range(3):
        fail(proxy, account(), 4, headers={"X-Forwarded-For": "198.51.100.9, 10.0.0.1"})
    fresh = account()
    assert log_in(proxy, fresh, headers={"X-Forwarded-For": "198.51.100.9"}).status_code == 429
    assert log_in(proxy, fresh, headers={"X-Forwarded-For": "198.51.100.10"}).status_code == 303
    stranger = browser("192.0.2.99")  # not a trusted proxy: its header is ignored, rotating it does not help
    for n in range(3):
        fail(stranger, account(), 4, headers={"X-Forwarded-For": f"203.0.113.{n}"})
    assert log_in(stranger, account(), headers={"X-Forwarded-For": "203.0.113.200"}).status_code == 429


def test_client_address_walks_forwarded_for_from_the_right():
    trusted = throttle.trusted_networks("10.0.0.0/8, 2001:db8::/32")
    assert throttle.client_address("192.0.2.1", ["203.0.113.9"], trusted) == "192.0.2.1"
    assert throttle.client_address("10.0.0.1", ["203.0.113.9"], trusted) == "203.0.113.9"
    assert throttle.client_address("10.0.0.1", ["1.1.1.1, 203.0.113.9, 10.2.3.4"], trusted) == "203.0.113.9"
    assert throttle.client_address("10.0.0.1", ["1.1.1.1", "203.0.113.9:443"], trusted) == "203.0.113.9"
    assert throttle.client_address("10.0.0.1", ["garbage, 10.9.9.9"], trusted) == "10.9.9.9"
    assert throttle.client_address("10.0.0.1", [], trusted) == "10.0.0.1"
    assert throttle.client_address("::ffff:10.0.0.1", ["[2001:db8::5]:80, 198.51.100.1"], trusted) == "198.51.100.1"
    assert throttle.client_address("testclient", ["1.2.3.4"], trusted) == "testclient"
    assert throttle.client_address("10.0.0.1", ["1.2.3.4"], ()) == "10.0.0.1"
    assert throttle.address_subject("2001:db8:1:2:3::4") == throttle.address_subject("2001:db8:1:2:ffff::1")
    assert throttle.address_subject("2001:db8:1:2:3::4") != throttle.address_subject("2001:db8:1:3::1")
    assert throttle.account_subject(" Ann@Example.test") == throttle.account_subject("ann@example.test")
    with pytest.raises(ValueError):
        Settings(trusted_proxies="10.0.0.0/8, not-a-network", _env_file=None)


def test_wrong_setup_tokens_are_throttled_per_address(browser, rt, clock):
    with db.transaction(rt.factory) as s:
        token = orgs.create_setup_token(session=s, now=clock.now())
    c = browser("203.0.113.50")
    c.get(f"/setup?token={token}")
    fields = {"org_name": "Acme", "org_slug": "", "email": "first@acme.test", "password": PASSWORD,
              "csrftoken": c.cookies.get("csrftoken")}
    r = c.post("/setup", data={**fields, "password": "short", "token": token})
    assert r.status_code == 422  # not a wrong secret: not counted
    for _ in range(12):
        assert c.post("/setup", data={**fields, "token": "guess"}).status_code == 403
    r = c.post("/setup", data={**fields, "token": token}, follow_redirects=False)
    assert r.status_code == 429 and r.headers["retry-after"] == "900"
    assert error_text(r) == LOCKED
    other = browser("203.0.113.51")
    other.get(f"/setup?token={token}")
    r = other.post("/setup", data={**fields, "csrftoken": other.cookies.get("csrftoken"), "token": token},
                   follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/incidents"


def test_concurrent_guesses_over_http_check_at_most_five_passwords(app, account, password_checks):
    email = account()
    results: list = [None] * 12
    with serving(app) as url:
        token = httpx.get(f"{url}/login", verify=False).cookies["csrftoken"]
        barrier = threading.Barrier(len(results))

        def guess(i: int) -> None:
            with httpx.Client(base_url=url, cookies={"csrftoken": token}, timeout=60, verify=False) as c:
                barrier.wait()
                results[i] = c.post("/login", data={"email": email, "password": f"guess-{i}", "csrftoken": token})

        threads = [threading.Thread(target=guess, args=(i,)) for i in range(len(results))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    statuses = sorted(r.status_code for r in results)
    assert set(statuses) <= {400, 429} and statuses.count(400) <= 5, statuses
    assert len(password_checks) == statuses.count(400)
    assert 429 in statuses
