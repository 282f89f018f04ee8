"""A check's verdict (pure) and its error kinds against a real local HTTP server."""

from __future__ import annotations

import socket
import ssl

import httpx
import pytest

from blametrail.monitors.checks import MAX_BODY_BYTES, CheckTarget, classify, evaluate, run_check, status_expected
from blametrail.monitors.engine import make_client
from tests.monitors import LocalServer, refused_port


@pytest.fixture
def server():
    with LocalServer() as s:
        yield s


@pytest.fixture
def client():
    c = make_client(4)
    yield c
    c.close()


# --- pure ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "expected", "ok"), [
    (200, (), True), (204, (), True), (301, (), True), (399, (), True), (400, (), False), (500, (), False),
    (199, (), False), (503, (503,), True), (200, (201, 202), False), (202, (201, 202), True),
])
def test_status_expected(code, expected, ok):
    assert status_expected(code, expected) is ok


def test_evaluate_ok():
    assert evaluate(200, "status: ok", (), "ok") == (True, None, None)
    assert evaluate(200, None, (), None) == (True, None, None)


def test_evaluate_unexpected_status_wins_over_keyword():
    ok, kind, error = evaluate(500, "no keyword here", (), "healthy")
    assert (ok, kind) == (False, "status")
    assert "500" in error and "2xx or 3xx" in error


def test_evaluate_names_the_expected_codes():
    _, kind, error = evaluate(200, "", [204], None)
    assert kind == "status" and "expected 204" in error


def test_evaluate_missing_keyword():
    ok, kind, error = evaluate(200, "Service degraded", (), "healthy")
    assert (ok, kind) == (False, "keyword") and "'healthy'" in error
    assert evaluate(200, None, (), "healthy")[1] == "keyword"


def test_evaluate_keyword_is_case_sensitive():
    assert evaluate(200, "HEALTHY", (), "healthy")[1] == "keyword"


def _raised_from(outer: Exception, inner: BaseException) -> Exception:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise outer from exc
    except Exception as exc:  # noqa: BLE001
        return exc


T = CheckTarget(monitor_id=1, url="https://shop.example.test/health", timeout_seconds=3)


@pytest.mark.parametrize(("exc", "kind"), [
    (httpx.ReadTimeout("timed out"), "timeout"),
    (httpx.ConnectTimeout("timed out"), "timeout"),
    (httpx.TooManyRedirects("Exceeded maximum allowed redirects."), "too_many_redirects"),
    (_raised_from(httpx.ConnectError("[Errno -2] Name or service not known"),
                  socket.gaierror(-2, "Name or service not known")), "dns"),
    (_raised_from(httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
                  ssl.SSLCertVerificationError(1, "certificate verify failed")), "tls"),
    (_raised_from(httpx.ConnectError("[Errno 111] Connection refused"), ConnectionRefusedError(111, "refused")),
     "connect"),
    (httpx.ConnectError("[Errno 113] No route to host"), "connect"),
    (httpx.RemoteProtocolError("Server disconnected without sending a response."), "other"),
    (ValueError("weird"), "other"),
])
def test_classify_maps_exceptions_to_kinds(exc, kind):
    got, message = classify(exc, T)
    assert got == kind
    assert message and len(message) <= 500


def test_classify_messages_are_specific():
    assert classify(httpx.ReadTimeout("x"), T)[1] == "No complete response from shop.example.test:443 within 3 s."
    refused = _raised_from(httpx.ConnectError("[Errno 111] Connection refused"), ConnectionRefusedError(111, "r"))
    assert classify(refused, T)[1] == "Connection refused by shop.example.test:443."


# --- against a real local server ----------------------------------------------------------------

def test_ok_check_measures_latency(server, client):
    out = run_check(client, CheckTarget(monitor_id=1, url=server.url(), keyword="good", timeout_seconds=2))
    assert out.ok and out.status_code == 200 and out.error_kind is None
    assert out.latency_ms is not None and 0 <= out.latency_ms < 2000


def test_500_is_status(server, client):
    server.status = 500
    out = run_check(client, CheckTarget(monitor_id=1, url=server.url(), timeout_seconds=2))
    assert (out.ok, out.status_code, out.error_kind) == (False, 500, "status")
    assert out.error == "Unexpected status 500 (expected 2xx or 3xx)."


def test_expected_status_list_is_respected(server, client):
    server.status = 503
    out = run_check(client, CheckTarget(monitor_id=1, url=server.url(), expected_statuses=(503,), timeout_seconds=2))
    assert out.ok


def test_slow_answer_is_timeout(server, client):
    server.delay = 1.5
    out = run_check(client, CheckTarget(monitor_id=1, url=server.url(), timeout_seconds=0.3))
    assert (out.ok, out.error_kind, out.status_code) == (False, "timeout", None)
    assert "within 0.3 s" in out.error


def test_refused_port_is_connect(client):
    out = run_check(client, CheckTarget(monitor_id=1, url=f"http://127.0.0.1:{refused_port()}/", timeout_seconds=2))
    assert (out.ok, out.error_kind) == (False, "connect")
    assert out.error.startswith("Connection refused by 127.0.0.1:")


def test_missing_keyword_is_keyword(server, client):
    server.body = "maintenance mode"
    out = run_check(client, CheckTarget(monitor_id=1, url=server.url(), keyword="all good", timeout_seconds=2))
    assert (out.ok, out.status_code, out.error_kind) == (False, 200, "keyword")


def test_keyword_only_in_the_first_megabyte(server, client):
    server.body = "x" * (MAX_BODY_BYTES + 10) + "needle"
    out = run_check(client, CheckTarget(monitor_id=1, url=server.url(), keyword="needle", timeout_seconds=5))
    assert out.error_kind == "keyword"
    server.body = "needle" + "x" * (MAX_BODY_BYTES + 10)
    assert run_check(client, CheckTarget(monitor_id=1, url=server.url(), keyword="needle", timeout_seconds=5)).ok


def test_head_and_post_methods(server, client):
    assert run_check(client, CheckTarget(monitor_id=1, url=server.url(), method="HEAD", timeout_seconds=2)).ok
    assert run_check(client, CheckTarget(monitor_id=1, url=server.url(), method="POST", timeout_seconds=2)).ok


def test_redirect_loop_is_too_many_redirects(client):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Loop(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(302)
            self.send_header("Location", "/again")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            return None

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Loop)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        out = run_check(client, CheckTarget(monitor_id=1, url=f"http://127.0.0.1:{srv.server_address[1]}/",
                                            timeout_seconds=2))
    finally:
        srv.shutdown()
        srv.server_close()
    assert (out.ok, out.error_kind) == (False, "too_many_redirects")


def test_untrusted_certificate_is_tls(tmp_path, client):
    import datetime as dt
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))

    class Ok(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            return None

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    srv.socket = context.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        out = run_check(client, CheckTarget(monitor_id=1, url=f"https://127.0.0.1:{srv.server_address[1]}/",
                                            timeout_seconds=2))
    finally:
        srv.shutdown()
        srv.server_close()
    assert (out.ok, out.error_kind) == (False, "tls")
    assert "certificate" in out.error.lower()
