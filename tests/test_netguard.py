"""The SSRF guard: which outbound addresses are refused (in every spelling), and that the guarded HTTP clients
refuse them on every hop, connect only to the address they vetted, and honour the operator's allow list."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from blametrail import netguard
from blametrail.errors import UpstreamError
from blametrail.netguard import OutboundBlocked, OutboundPolicy, literal_address, parse_allow
from blametrail.settings import Settings

DEFAULT = OutboundPolicy()
SHARED = OutboundPolicy(block_private=True)
METADATA = "is a link-local/cloud metadata address; BlameTrail refuses it unless BLAMETRAIL_OUTBOUND_ALLOW lists it."


# --- classification (pure) ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "words"), [
    ("http://169.254.169.254/latest/meta-data", "169.254.169.254 " + METADATA),
    ("http://169.254.10.1/", "link-local/cloud metadata"),
    ("http://[fe80::1]/", "link-local/cloud metadata"),
    ("http://[fe80::1%25eth0]/", "link-local/cloud metadata"),
    ("http://[fd00:ec2::254]/", "link-local/cloud metadata"),
    ("http://100.100.100.200/", "link-local/cloud metadata"),
    ("http://metadata.google.internal/computeMetadata/v1/", "metadata.google.internal is a cloud metadata host name"),
    ("http://METADATA.Google.Internal./", "cloud metadata host name"),
    ("http://metadata/", "cloud metadata host name"),
    # odd spellings of 169.254.169.254 that getaddrinfo accepts
    ("http://2852039166/", "2852039166 (169.254.169.254) is a link-local"),
    ("http://0xa9fea9fe/", "(169.254.169.254) is a link-local"),
    ("http://0xA9.0xFE.0xA9.0xFE/", "(169.254.169.254) is a link-local"),
    ("http://0251.0376.0251.0376/", "(169.254.169.254) is a link-local"),
    ("http://169.254.43518/", "(169.254.169.254) is a link-local"),
    ("http://169.16689662/", "(169.254.169.254) is a link-local"),
    ("http://%31%36%39.254.169.254/", "169.254.169.254 is a link-local"),
    ("http://169.254.169.254.:80/", "169.254.169.254 is a link-local"),
    # IPv4 inside IPv6
    ("http://[::ffff:169.254.169.254]/", "(169.254.169.254 inside IPv6) is a link-local"),
    ("http://[::ffff:a9fe:a9fe]/", "(169.254.169.254 inside IPv6) is a link-local"),
    ("http://[::169.254.169.254]/", "(169.254.169.254 inside IPv6) is a link-local"),
    ("http://[64:ff9b::a9fe:a9fe]/", "(169.254.169.254 inside IPv6) is a link-local"),
    ("http://[2002:a9fe:a9fe::1]/", "(169.254.169.254 inside IPv6) is a link-local"),
    # the rest of the always-refused space
    ("http://0.0.0.0:8080/", "0.0.0.0 is an unspecified address"),
    ("http://0/", "0 (0.0.0.0) is an unspecified address"),
    ("http://0.1.2.3/", "unspecified"),
    ("http://[::]/", ":: is an unspecified address"),
    ("http://[::ffff:0.0.0.0]/", "unspecified"),
    ("http://224.0.0.251/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://255.255.255.255/", "broadcast"),
    ("http://240.0.0.1/", "reserved"),
    ("ftp://files.example.test/", "is not an http:// or https:// URL"),
    ("file:///etc/passwd", "is not an http:// or https:// URL"),
    # allowed by default: this is self-hosted, internal services are the point
    ("http://127.0.0.1:9090/", None),
    ("http://127.1/", None),
    ("http://localhost:3100/", None),
    ("http://[::1]/", None),
    ("http://10.0.0.5/", None),
    ("http://172.16.3.4/", None),
    ("http://192.168.1.1/", None),
    ("http://[fd12:3456::1]/", None),
    ("http://100.64.0.1/", None),
    ("https://prometheus.internal:9090/", None),
    ("https://api.datadoghq.eu", None),
    ("http://[::ffff:10.0.0.1]/", None),
    ("http://deadbeef/", None),
])
def test_default_policy(url, words):
    refusal = DEFAULT.refusal_for_url(url)
    if words is None:
        assert refusal is None
    else:
        assert refusal is not None and words in refusal, refusal


@pytest.mark.parametrize(("url", "words"), [
    ("http://127.0.0.1/", "127.0.0.1 is a loopback address"),
    ("http://0x7f.1/", "0x7f.1 (127.0.0.1) is a loopback address"),
    ("http://[::1]/", "loopback"),
    ("http://localhost:8080/", "localhost is a loopback host name"),
    ("http://10.1.2.3/", "10.1.2.3 is a private (RFC 1918) address"),
    ("http://172.31.255.255/", "private (RFC 1918)"),
    ("http://192.168.0.10/", "private (RFC 1918)"),
    ("http://[::ffff:192.168.0.10]/", "private (RFC 1918)"),
    ("http://[fd12:3456::1]/", "unique local"),
    ("http://100.64.0.1/", "carrier-grade NAT"),
    ("http://169.254.169.254/", "link-local/cloud metadata"),  # still the metadata sentence, not the private one
    ("http://100.100.100.200/", "link-local/cloud metadata"),
    ("https://grafana.example.com/", None),
    ("http://8.8.8.8/", None),
    ("http://172.32.0.1/", None),
])
def test_block_private_policy(url, words):
    refusal = SHARED.refusal_for_url(url)
    if words is None:
        assert refusal is None
    else:
        assert refusal is not None and words in refusal, refusal
        if "metadata" not in words:
            assert "BLAMETRAIL_OUTBOUND_BLOCK_PRIVATE is on" in refusal and "BLAMETRAIL_OUTBOUND_ALLOW" in refusal


def test_the_allow_list_takes_addresses_ranges_and_host_names():
    policy = OutboundPolicy.from_settings(Settings(
        _env_file=None, outbound_block_private=True,
        outbound_allow="169.254.169.254, 10.20.0.0/16 metadata.google.internal,[fd00:ec2::254]"))
    assert policy.refusal_for_url("http://169.254.169.254/latest") is None
    assert policy.refusal_for_url("http://2852039166/") is None
    assert policy.refusal_for_url("http://[::ffff:169.254.169.254]/") is None  # the IPv4 entry covers its IPv6 form
    assert policy.refusal_for_url("http://169.254.169.253/") is not None
    assert policy.refusal_for_url("http://10.20.3.4/") is None
    assert "private" in policy.refusal_for_url("http://10.21.3.4/")
    assert policy.refusal_for_url("http://Metadata.Google.Internal./") is None
    assert policy.refusal_for_url("http://[fd00:ec2::254]/") is None
    assert policy.vet("metadata.google.internal", ["169.254.169.254"]) == ["169.254.169.254"]


def test_bad_allow_entries_stop_start_up():
    assert parse_allow("") == ((), frozenset())
    with pytest.raises(ValueError, match="BLAMETRAIL_OUTBOUND_ALLOW entry '10.0.0.0/33'"):
        parse_allow("10.0.0.0/33")
    with pytest.raises(ValueError):
        Settings(_env_file=None, outbound_allow="good.example, not a/host")


def test_literal_addresses_are_parsed_without_dns():
    assert str(literal_address("2852039166")) == "169.254.169.254"
    assert str(literal_address("[::1]")) == "::1"
    assert literal_address("prometheus.internal") is None
    assert literal_address("cafe.be") is None  # hex letters alone do not make an address


def test_any_blocked_answer_refuses_the_host():
    assert DEFAULT.vet("svc.test", ["127.0.0.1", "10.0.0.2"]) == ["127.0.0.1", "10.0.0.2"]
    with pytest.raises(OutboundBlocked) as info:
        DEFAULT.vet("svc.test", ["127.0.0.1", "169.254.169.254"])
    assert str(info.value) == "svc.test resolves to 169.254.169.254, " + METADATA.removeprefix("is ")
    assert isinstance(info.value, UpstreamError)


# --- the guarded clients, against real local servers --------------------------------------------------------

class Target:
    """A local HTTP server: /ok answers 200, /hop redirects to `location`; it records every path it serves."""

    def __init__(self) -> None:
        self.location = "http://169.254.169.254/latest/meta-data"
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.paths.append(self.path)
                if self.path.startswith("/hop"):
                    self.send_response(302)
                    self.send_header("Location", outer.location)
                    self.send_header("Content-Length", "0")
                else:
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                self.end_headers()
                if not self.path.startswith("/hop"):
                    self.wfile.write(b"ok")

            def log_message(self, *args):
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.port = self.server.server_address[1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def target():
    t = Target()
    yield t
    t.close()


@pytest.fixture
def dns(monkeypatch):
    """Answer getaddrinfo for names in a table (each: a list of answers used in turn, or None: does not resolve)."""
    table: dict[str, list[list[str]] | None] = {}
    calls: list[str] = []
    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in table:
            return real(host, port, *args, **kwargs)
        calls.append(name)
        answers = table[name]
        if answers is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        current = answers.pop(0) if len(answers) > 1 else answers[0]
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in current]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return type("DNS", (), {"table": table, "calls": calls})


def test_a_redirect_to_the_metadata_address_is_refused_by_the_guard(target):
    with netguard.client(DEFAULT, follow_redirects=True) as c:
        assert c.get(f"http://127.0.0.1:{target.port}/ok").text == "ok"
        with pytest.raises(OutboundBlocked, match="169.254.169.254 is a link-local/cloud metadata address"):
            c.get(f"http://127.0.0.1:{target.port}/hop")
        target.location = "http://2852039166/latest/meta-data"
        with pytest.raises(OutboundBlocked, match=r"2852039166 \(169.254.169.254\)"):
            c.get(f"http://127.0.0.1:{target.port}/hop")
    assert target.paths == ["/ok", "/hop", "/hop"]


def test_the_address_connected_to_is_the_one_vetted_so_dns_rebinding_cannot_swap_it(target, dns, monkeypatch):
    # the name first answers the local server, then the metadata address: the first request connects to what was
    # vetted and never looks the name up again; the next connection's lookup is vetted and refused
    dns.table["rebind.test"] = [["127.0.0.1"], ["169.254.169.254"]]
    connected: list = []
    guarded_connect = socket.socket.connect

    def record(sock, address):
        connected.append(address[0])
        return guarded_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", record)
    with netguard.client(DEFAULT, limits=httpx.Limits(max_keepalive_connections=0)) as c:
        assert c.get(f"http://rebind.test:{target.port}/ok").text == "ok"
        with pytest.raises(OutboundBlocked, match="rebind.test resolves to 169.254.169.254"):
            c.get(f"http://rebind.test:{target.port}/ok")
    assert dns.calls == ["rebind.test", "rebind.test"]
    assert connected == ["127.0.0.1"]


def test_a_name_with_one_blocked_answer_is_refused(target, dns):
    dns.table["split.test"] = [["127.0.0.1", "169.254.169.254"]]
    with netguard.client(DEFAULT) as c, pytest.raises(OutboundBlocked, match="split.test resolves to 169.254"):
        c.get(f"http://split.test:{target.port}/ok")
    assert target.paths == []


def test_the_allow_list_lets_a_metadata_name_through(target, dns):
    dns.table["metadata.google.internal"] = [["127.0.0.1"]]
    url = f"http://metadata.google.internal:{target.port}/ok"
    with netguard.client(DEFAULT) as c, pytest.raises(OutboundBlocked, match="cloud metadata host name"):
        c.get(url)
    allowed = OutboundPolicy.from_settings(Settings(_env_file=None, outbound_allow="metadata.google.internal"))
    with netguard.client(allowed) as c:
        assert c.get(url).text == "ok"


def test_block_private_refuses_loopback_at_connect_time(target, dns):
    dns.table["internal.test"] = [["127.0.0.1"]]
    with netguard.client(SHARED) as c, pytest.raises(OutboundBlocked, match="BLAMETRAIL_OUTBOUND_BLOCK_PRIVATE"):
        c.get(f"http://internal.test:{target.port}/ok")
    allowed = OutboundPolicy(block_private=True, allow_networks=parse_allow("127.0.0.1")[0])
    with netguard.client(allowed) as c:
        assert c.get(f"http://internal.test:{target.port}/ok").text == "ok"


def test_through_a_proxy_the_name_is_vetted_as_this_machine_resolves_it(target, dns, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{target.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    dns.table["site.test"] = [["127.0.0.1"]]
    dns.table["meta.test"] = [["169.254.169.254"]]
    with netguard.client(DEFAULT) as c:
        assert c.get("http://site.test/ok").text == "ok"  # the local server plays the proxy
        with pytest.raises(OutboundBlocked, match="meta.test resolves to 169.254.169.254"):
            c.get("http://meta.test/latest")
        with pytest.raises(OutboundBlocked, match="169.254.169.254 is a link-local"):
            c.get("http://169.254.169.254/latest")
    assert target.paths == ["http://site.test/ok"]


def test_an_unresolvable_name_is_still_a_dns_error(dns):
    dns.table["gone.test"] = None
    with netguard.client(DEFAULT) as c, pytest.raises(httpx.ConnectError, match="Name or service not known") as info:
        c.get("http://gone.test/")
    from blametrail.monitors.checks import CheckTarget, classify

    assert classify(info.value, CheckTarget(monitor_id=1, url="http://gone.test/"))[0] == "dns"


def test_the_llm_client_refuses_a_metadata_endpoint_and_sends_nothing(dns):
    """The AI engine's async httpx2 client: a blocked base URL and a name resolving to metadata are refused."""
    from blametrail.ai.llm import LLMEngine
    from blametrail.ai.providers import ProviderSpec
    from tests.ai.test_providers import FakeProvider, llm_pack

    dns.table["llm.test"] = [["169.254.169.254"]]
    with FakeProvider() as fp:
        for base in ("http://169.254.169.254/v1", "http://llm.test/v1"):
            spec = ProviderSpec(name="openai", model="gpt-test", base_url=base, api_key="sk-test")
            engine = LLMEngine(spec, timeout_seconds=5, max_retries=3, sleep=lambda s: pytest.fail("retried"))
            with pytest.raises(UpstreamError, match="was not called: .*169.254.169.254.*BLAMETRAIL_OUTBOUND_ALLOW"):
                engine.draft(llm_pack())
        assert fp.requests == []
