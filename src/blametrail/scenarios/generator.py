"""Seeded incident scenarios with ground truth: eight fault types and no-culprit cases, with realistic noise (pure)."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import numpy as np

from blametrail.scenarios import DEFAULT_SEED

FAULTS = ("bad_deploy", "config_change", "dependency_outage", "database_saturation", "memory_leak",
          "certificate_expiry", "traffic_spike", "dns", "no_culprit")
CATEGORY = {"bad_deploy": "deploy", "config_change": "deploy", "dependency_outage": "dependency",
            "database_saturation": "database", "memory_leak": "memory", "certificate_expiry": "certificate",
            "traffic_spike": "traffic", "dns": "dns", "no_culprit": None}
BASE = datetime(2026, 1, 5, tzinfo=UTC)
LOOKBACK = timedelta(minutes=120)  # the default evidence window before the incident start (settings.lookback_minutes)
LEAD = timedelta(minutes=20)  # data begins this long before the window, so 5-minute rates are full at its edge
TAIL = timedelta(minutes=10)
RATE_MINUTES = 5  # counters are served as `rate(...[5m])` returns them: a step reaches full height after 5 points
METRICS = {"error_rate": "ratio", "latency_p99": "s", "request_rate": "req/s", "memory_working_set_bytes": "bytes",
           "db_connections": ""}


# --- the scenario ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Commit:
    sha: str
    author: str
    message: str
    files: tuple[str, ...]
    at: datetime


@dataclass(frozen=True)
class Deploy:
    key: str  # stable within the scenario, e.g. "d2"
    service: str
    version: str
    at: datetime
    commits: tuple[Commit, ...] = ()
    environment: str = "production"


@dataclass(frozen=True)
class Update:
    at: datetime
    author: str
    body: str


@dataclass(frozen=True)
class MetricSeries:
    name: str  # the signal name, a key of METRICS
    service: str
    unit: str
    points: tuple[tuple[datetime, float], ...]


@dataclass(frozen=True)
class LogRecord:
    at: datetime
    service: str
    level: str  # "error" | "warn"
    text: str


@dataclass(frozen=True)
class KeyEvent:
    """An event the postmortem timeline should cite: a deploy (ref = its key), a metric onset (ref = the series
    name) or the first new error (ref = text every line of that error contains)."""

    kind: str  # "deploy" | "metric" | "log"
    ref: str
    service: str | None = None


@dataclass(frozen=True)
class Truth:
    culprit: str | None  # the key of the deploy that caused it
    category: str | None  # "deploy", a causes.py category key, or None when nothing caused it
    onset: datetime
    key_events: tuple[KeyEvent, ...] = ()


@dataclass(frozen=True)
class Scenario:
    id: str
    fault: str
    title: str
    description: str
    severity: str | None
    services: tuple[str, ...]  # the incident's affected services
    started_at: datetime
    resolved_at: datetime
    deploys: tuple[Deploy, ...]  # of every service, the incident's and others
    updates: tuple[Update, ...]
    series: tuple[MetricSeries, ...]
    logs: tuple[LogRecord, ...]
    truth: Truth
    notes: tuple[str, ...] = field(default=(), compare=False)  # how the scenario was built, for reading failures

    @property
    def data_start(self) -> datetime:
        """Return when the scenario's data begins (a whole minute, a little before the evidence window)."""
        return (self.started_at - LOOKBACK - LEAD).replace(second=0, microsecond=0)

    @property
    def data_end(self) -> datetime:
        """Return when the scenario's data ends, a little after it was resolved."""
        return self.resolved_at + TAIL


def generate(n: int, seed: int = DEFAULT_SEED) -> list[Scenario]:
    """Return n scenarios cycling through FAULTS; the same (n, seed) always gives the same scenarios."""
    return [scenario(FAULTS[i % len(FAULTS)], seed=seed, index=i) for i in range(n)]


def scenario(fault: str, *, seed: int = DEFAULT_SEED, index: int = 0, tag: str | None = None,
             avoid: frozenset[str] = frozenset(), primary: str | None = None) -> Scenario:
    """Build one scenario; service names end in `-s<index>` (or `tag`) so they are unique per scenario; `primary`
    names the catalogue service it happens to (else one is drawn)."""
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; choose one of {', '.join(FAULTS)}")
    return _Builder(fault, seed, index, f"-s{index:03d}" if tag is None else tag, avoid, primary).build()


FAMILY_FAULTS = tuple(f for f in FAULTS if f != "no_culprit")


def families(count: int = 10, size: int = 4, seed: int = DEFAULT_SEED) -> list[tuple[str | None, Scenario]]:
    """Return recurring incident families, for measuring similar-incident search: each family is `size` incidents of
    one fault on one service (the same tagged service names, a week apart, each with its own noise); beside each
    family, one incident of another fault on the same service (it shares only the service) and one of the same
    fault on another family's service (it shares only the cause). Pairs are (family id, scenario); distractors
    have None."""
    out: list[tuple[str | None, Scenario]] = []
    picks = []
    for f in range(count):
        rng = random.Random(f"blametrail-family:{seed}:{f}")
        fault = FAMILY_FAULTS[f % len(FAMILY_FAULTS)]
        pool = [p for p in CATALOG if (p.db or fault != "database_saturation")
                and (p.externals or fault != "dependency_outage")]
        picks.append((fault, pool[rng.randrange(len(pool))].name))
    for f, (fault, primary) in enumerate(picks):
        tag, base = f"-f{f:02d}", 2000 + f * (size + 2) * 7
        for k in range(size):
            out.append((f"family-{f:02d}", scenario(fault, seed=seed, index=base + 7 * k, tag=tag, primary=primary)))
        anywhere = [x for x in FAMILY_FAULTS if x not in ("database_saturation", "dependency_outage", fault)]
        other = anywhere[f % len(anywhere)]  # a fault any service can have, never the family's own
        out.append((None, scenario(other, seed=seed, index=base + 7 * size, tag=tag, primary=primary)))
        out.append((None, scenario(fault, seed=seed, index=base + 7 * size + 3, tag=f"-x{f:02d}")))
    return out


def shifted(s: Scenario, delta: timedelta) -> Scenario:
    """Return the scenario moved in time by delta (for demo data relative to today)."""
    return replace(
        s, started_at=s.started_at + delta, resolved_at=s.resolved_at + delta,
        deploys=tuple(replace(d, at=d.at + delta, commits=tuple(replace(c, at=c.at + delta) for c in d.commits))
                      for d in s.deploys),
        updates=tuple(replace(u, at=u.at + delta) for u in s.updates),
        series=tuple(replace(m, points=tuple((t + delta, v) for t, v in m.points)) for m in s.series),
        logs=tuple(replace(g, at=g.at + delta) for g in s.logs),
        truth=replace(s.truth, onset=s.truth.onset + delta),
    )


# --- the world: services, their code, their dependencies ------------------------------------------------------


@dataclass(frozen=True)
class _Spot:
    """A place in a service's code a bad change can break: the file, the function, the error it then raises."""

    path: str
    func: str
    route: str
    errors: tuple[str, ...]
    message: str  # the commit message of the change that breaks it


@dataclass(frozen=True)
class _Profile:
    name: str
    lang: str  # python | go | java | node
    rps: float
    latency: float  # p99 seconds
    memory_gib: float  # per pod
    pods: int
    db: str | None  # postgres | mysql | None
    externals: tuple[str, ...]
    callees: tuple[str, ...]
    routes: tuple[str, ...]
    spots: tuple[_Spot, ...]


_J = "src/main/java/com/shopco"
CATALOG = (
    _Profile("checkout", "python", 180, 0.45, 0.6, 6, "postgres", ("api.stripe.com", "api.taxjar.com"),
             ("payments", "inventory", "pricing"), ("POST /api/checkout", "POST /api/checkout/pay", "GET /api/cart"), (
        _Spot("checkout/payments/client.py", "charge_card", "POST /api/checkout/pay",
              ("KeyError: 'currency'", "TypeError: unsupported operand type(s) for *: 'decimal.Decimal' and 'float'"),
              "Send the order currency with card charges"),
        _Spot("checkout/cart/totals.py", "apply_promotions", "POST /api/checkout",
              ("AttributeError: 'NoneType' object has no attribute 'discount_pct'",),
              "Stack promotions when computing cart totals"))),
    _Profile("orders", "python", 120, 0.3, 0.5, 4, "postgres", ("api.shipengine.com",), ("inventory", "shipping"),
             ("POST /api/orders", "GET /api/orders/<id>", "GET /api/orders"), (
        _Spot("orders/fulfilment/allocator.py", "allocate_stock", "POST /api/orders",
              ("IndexError: list index out of range",), "Allocate stock across warehouses by distance"),
        _Spot("orders/api/serializers.py", "order_to_dict", "GET /api/orders/<id>",
              ("KeyError: 'shipping_address'",), "Flatten the shipping address in the order serializer"))),
    _Profile("pricing", "python", 400, 0.12, 0.4, 4, None, ("api.exchangerate.host",), ("catalog",),
             ("GET /v1/prices", "POST /v1/quotes"), (
        _Spot("pricing/rules/engine.py", "evaluate_rule", "POST /v1/quotes",
              ("ZeroDivisionError: division by zero",), "Support percentage-of-basket pricing rules"),
        _Spot("pricing/currency/convert.py", "to_minor_units", "GET /v1/prices",
              ("decimal.InvalidOperation: [<class 'decimal.InvalidOperation'>]",),
              "Round converted prices to minor units per currency"))),
    _Profile("cart", "go", 650, 0.08, 0.25, 8, None, (), ("pricing", "inventory"),
             ("POST /v1/cart/items", "GET /v1/cart", "DELETE /v1/cart/items"), (
        _Spot("internal/pricing/discount.go", "(*Engine).applyDiscount", "POST /v1/cart/items",
              ("runtime error: index out of range [3] with length 3",), "Apply tiered discounts per cart line"),
        _Spot("internal/session/store.go", "(*RedisStore).Load", "GET /v1/cart",
              ("runtime error: invalid memory address or nil pointer dereference",),
              "Load cart sessions lazily from Redis"))),
    _Profile("inventory", "go", 900, 0.06, 0.3, 6, "postgres", (), ("catalog",),
             ("GET /v1/stock", "POST /v1/reservations"), (
        _Spot("internal/reservations/reserve.go", "(*Service).Reserve", "POST /v1/reservations",
              ("runtime error: slice bounds out of range [:5] with capacity 4",),
              "Reserve stock in batches of five lines"),
        _Spot("internal/warehouse/sync.go", "(*Syncer).applyDelta", "GET /v1/stock",
              ("assignment to entry in nil map",), "Apply warehouse stock deltas incrementally"))),
    _Profile("shipping", "go", 90, 0.5, 0.2, 3, "mysql", ("api.shipengine.com", "api.easypost.com"), (),
             ("POST /v1/rates", "POST /v1/labels"), (
        _Spot("internal/rates/quote.go", "(*Quoter).Quote", "POST /v1/rates",
              ("runtime error: invalid memory address or nil pointer dereference",),
              "Quote rates from the cheapest carrier first"),)),
    _Profile("payments", "java", 140, 0.6, 1.2, 4, "postgres", ("api.stripe.com", "api.adyen.com"), ("ledger",),
             ("POST /v1/payments", "POST /v1/refunds"), (
        _Spot(f"{_J}/payments/gateway/CardAuthorizer.java", "authorize", "POST /v1/payments",
              ('java.lang.NullPointerException: Cannot invoke "String.length()" because "token" is null',),
              "Tokenize cards before authorization"),
        _Spot(f"{_J}/payments/refunds/RefundPolicy.java", "eligibleAmount", "POST /v1/refunds",
              ("java.lang.ArithmeticException: Non-terminating decimal expansion; no exact representable decimal "
               "result.",), "Prorate refunds for partially shipped orders"))),
    _Profile("search", "java", 300, 0.9, 2.0, 6, None, (), ("catalog",), ("GET /v1/search", "GET /v1/suggest"), (
        _Spot(f"{_J}/search/query/QueryParser.java", "parse", "GET /v1/search",
              ("java.lang.IllegalArgumentException: Unbalanced quotes in query",), "Parse quoted phrases in queries"),
        _Spot(f"{_J}/search/rank/BoostRules.java", "apply", "GET /v1/search",
              ("java.lang.ClassCastException: class java.lang.Integer cannot be cast to class java.lang.Double",),
              "Boost in-stock products in ranking"))),
    _Profile("ledger", "java", 60, 0.4, 1.0, 3, "postgres", (), (), ("POST /v1/entries", "GET /v1/balances"), (
        _Spot(f"{_J}/ledger/posting/EntryPoster.java", "post", "POST /v1/entries",
              ("java.lang.IllegalStateException: Entry currency does not match account currency",),
              "Post multi-currency ledger entries"),)),
    _Profile("accounts", "node", 220, 0.25, 0.5, 4, "postgres", ("api.sendgrid.com",), ("notifications",),
             ("POST /sessions", "GET /me", "POST /password-reset"), (
        _Spot("src/routes/sessions/login.ts", "createSession", "POST /sessions",
              ("TypeError: Cannot read properties of undefined (reading 'mfaEnabled')",), "Require MFA for admins"),
        _Spot("src/lib/tokens/refresh.ts", "rotateRefreshToken", "POST /sessions",
              ("TypeError: Cannot destructure property 'jti' of 'payload' as it is null.",),
              "Rotate refresh tokens on every use"))),
    _Profile("notifications", "node", 70, 0.7, 0.4, 3, None, ("api.sendgrid.com", "api.twilio.com"), (),
             ("POST /v1/send", "POST /v1/webhooks/sendgrid"), (
        _Spot("src/channels/email/render.ts", "renderTemplate", "POST /v1/send",
              ("TypeError: template.render is not a function",), "Render email templates with MJML"),)),
    _Profile("catalog", "java", 500, 0.2, 1.5, 4, "mysql", (), (), ("GET /v1/products", "GET /v1/products/<id>"), (
        _Spot(f"{_J}/catalog/media/ImageUrls.java", "resize", "GET /v1/products/<id>",
              ("java.lang.StringIndexOutOfBoundsException: begin 0, end -1, length 0",),
              "Serve resized product images from the CDN"),)),
)
_BY_NAME = {p.name: p for p in CATALOG}
AUTHORS = ("Ana Ribeiro", "Ben Okafor", "Chen Wei", "Dana Kowalski", "Eli Shapiro", "Fatima Zahra", "Gus Lindqvist",
           "Hana Sato", "Ivan Petrov", "Jules Martin", "Kofi Mensah", "Lena Vogel", "Maya Patel", "Noah Becker")
RESPONDERS = ("oncall-sre", "Priya N.", "Tom H.", "Sofia R.", "Marcus L.")
_DEPENDENCY_FILES = {"python": ("requirements.txt",), "go": ("go.mod", "go.sum"), "java": ("pom.xml",),
                     "node": ("package.json", "package-lock.json")}
_PACKAGES = {"python": ("structlog", "urllib3", "pydantic", "sqlalchemy"), "go": ("otel", "zap", "pgx", "chi"),
             "java": ("jackson-databind", "micrometer", "spring-boot"), "node": ("pino", "undici", "zod")}


def _test_file(p: _Profile) -> str:
    return {"python": f"tests/test_{p.name}_admin.py", "go": "internal/admin/handler_test.go",
            "java": f"src/test/java/com/shopco/{p.name}/AdminTest.java", "node": "test/admin.test.ts"}[p.lang]


def _harmless_commits(p: _Profile) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Changes that break nothing: docs, dashboards, dependency bumps, tests, unrelated features."""
    ext = {"python": "py", "go": "go", "java": "java", "node": "ts"}[p.lang]
    code = {"python": f"{p.name}/", "go": "internal/", "java": f"{_J}/{p.name}/", "node": "src/"}[p.lang]
    tests = _test_file(p)
    admin = f"{code}admin/{'Reports.java' if p.lang == 'java' else 'reports.' + ext}"
    return (
        ("Update README with local setup steps", ("README.md",)),
        ("Add runbook link to alert annotations", ("deploy/alerts.yaml", "docs/runbook.md")),
        (f"Bump {_PACKAGES[p.lang][0]} to the latest patch release", _DEPENDENCY_FILES[p.lang]),
        ("Add CSV export to the admin reports page", (admin, tests)),
        ("Log the request id on slow requests",
         (f"{code}middleware/{'Timing.java' if p.lang == 'java' else 'timing.' + ext}",)),
        ("Increase test coverage for the admin API", (tests,)),
        ("Add Grafana dashboard for the holiday campaign", ("dashboards/holiday.json",)),
        ("Rename internal metrics to follow OpenTelemetry conventions",
         (f"{code}telemetry/{'Names.java' if p.lang == 'java' else 'names.' + ext}",)),
    )


# --- log line formats ------------------------------------------------------------------------------------------


def _line(lang: str, level: str, logger: str, msg: str, at: datetime, rng: random.Random) -> str:
    """Format a log line the way each stack's default logger would (timestamps and ids included)."""
    if lang == "python":
        return f"{at:%Y-%m-%d %H:%M:%S},{at.microsecond // 1000:03d} {level.upper()} [{logger}] {msg}"
    if lang == "java":
        thread = f"http-nio-8080-exec-{rng.randrange(1, 200)}"
        return (f"{at:%Y-%m-%d %H:%M:%S}.{at.microsecond // 1000:03d} {level.upper():5} 1 --- [{thread}] {logger} : "
                f"{msg}")
    if lang == "go":
        return (f"level={level} ts={at:%Y-%m-%dT%H:%M:%S}.{at.microsecond // 1000:03d}Z caller={logger} "
                f"msg={json.dumps(msg)}")
    return json.dumps({"level": level, "time": int(at.timestamp() * 1000), "pid": 1, "msg": msg})


def _trace(p: _Profile, spot: _Spot, error: str, line: int, outer: int, rng: random.Random) -> tuple[str, str]:
    """Return (logger, message) of an unhandled exception raised in spot, with its stack trace."""
    if p.lang == "python":
        return (f"{p.name}.api", f"unhandled exception in {spot.route}\nTraceback (most recent call last):\n"
                f'  File "/app/{p.name}/api/views.py", line {outer}, in dispatch\n'
                f"    return handler(request)\n"
                f'  File "/app/{spot.path}", line {line}, in {spot.func}\n{error}')
    if p.lang == "go":
        pkg = spot.path.rsplit("/", 1)[0]
        return ("middleware/recover.go:41", f"panic: {error}\n\ngoroutine {rng.randrange(100, 99999)} [running]:\n"
                f"github.com/shopco/{p.name}/{pkg}.{spot.func}(0xc000{rng.randrange(0x10000, 0xfffff):x})\n"
                f"\t/src/{spot.path}:{line} +0x{outer:x}")
    if p.lang == "java":
        cls = spot.path.removeprefix("src/main/java/").removesuffix(".java").replace("/", ".")
        file = spot.path.rsplit("/", 1)[1]
        return ("o.a.c.c.C.[.[.[/].[dispatcherServlet]", f"Servlet.service() threw exception\n{error}\n"
                f"\tat {cls}.{spot.func}({file}:{line})\n"
                f"\tat com.shopco.{p.name}.api.ApiController.handle(ApiController.java:{outer})")
    return (p.name, f"{error}\n    at {spot.func} (/app/{spot.path}:{line}:{outer % 40 + 5})\n"
            "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)")


_BACKGROUND = (
    ("warn", "slow request {route} took {ms}ms"),
    ("error", "failed to refresh feature flags from flagd.prod.svc:8013: 503 Service Unavailable"),
    ("error", "payment method declined for order {n}: card_declined"),
    ("warn", "retrying call to {callee} after connection reset by peer (attempt {a}/3)"),
    ("error", "request validation failed for {route}: field 'email' is not a valid address"),
    ("error", "jwt verification failed for user {n}: token is expired"),
    ("warn", "request canceled by client after {ms}ms: context canceled"),
    ("error", "upstream {callee} returned 502 Bad Gateway for request {hex}"),
    ("error", "failed to publish event to kafka topic {topic}: broker not available, will retry"),
    ("warn", "deprecated API version v1 used by client {ip}"),
    ("error", "timed out after {ms}ms waiting for lock on cart {n}"),
)
_TOPICS = ("order.updated", "cart.changed", "payment.captured", "stock.reserved")


def _fill(template: str, p: _Profile, rng: random.Random) -> str:
    return template.format(
        route=p.routes[rng.randrange(len(p.routes))].replace("<id>", str(rng.randrange(10_000, 999_999))),
        ms=rng.randrange(800, 6000), n=rng.randrange(10_000, 9_999_999), a=rng.randrange(1, 4),
        callee=(p.callees + ("search", "catalog"))[rng.randrange(len(p.callees) + 2)] + ".prod.svc",
        hex=f"{rng.randrange(0, 2**48):012x}", topic=_TOPICS[rng.randrange(len(_TOPICS))],
        ip=f"10.{rng.randrange(0, 255)}.{rng.randrange(0, 255)}.{rng.randrange(1, 255)}",
    )


# --- fault error messages, per stack ----------------------------------------------------------------------------


def _dependency_error(lang: str, host: str, kind: str, rng: random.Random) -> str:
    path = ("v1/charges", "v1/rates", "v1/quotes", "v2/send", "v1/tax/rates")[rng.randrange(5)]
    ip = f"{rng.randrange(3, 200)}.{rng.randrange(0, 255)}.{rng.randrange(0, 255)}.{rng.randrange(1, 255)}"
    if kind == "refused":
        return {
            "python": f"requests.exceptions.ConnectionError: HTTPSConnectionPool(host='{host}', port=443): Max retries "
                      f"exceeded with url: /{path} (Caused by NewConnectionError('<urllib3.connection.HTTPSConnection "
                      f"object at 0x7f{rng.randrange(2**32):08x}>: Failed to establish a new connection: "
                      "[Errno 111] Connection refused'))",
            "go": f'Post "https://{host}/{path}": dial tcp {ip}:443: connect: connection refused',
            "java": f'org.springframework.web.client.ResourceAccessException: I/O error on POST request for '
                    f'"https://{host}/{path}": Connect to {host}:443 [{host}/{ip}] failed: Connection refused',
            "node": f"Error: connect ECONNREFUSED {ip}:443 (POST https://{host}/{path})",
        }[lang]
    if kind == "unavailable":
        return f"call to https://{host}/{path} failed: upstream returned 503 Service Unavailable"
    return {
        "python": f"requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='{host}', port=443): Read timed out. "
                  "(read timeout=10)",
        "go": f'Post "https://{host}/{path}": context deadline exceeded '
              "(Client.Timeout exceeded while awaiting headers)",
        "java": f'org.springframework.web.client.ResourceAccessException: I/O error on POST request for '
                f'"https://{host}/{path}": Read timed out',
        "node": f"TimeoutError: request to https://{host}/{path} timed out after 10000ms",
    }[lang]


def _dns_error(lang: str, host: str, rng: random.Random) -> str:
    if lang == "go":
        why = "no such host" if rng.random() < 0.6 else "server misbehaving"
        return f'Get "http://{host}/v1/stock": dial tcp: lookup {host} on 10.96.0.10:53: {why}'
    return {
        "python": f"requests.exceptions.ConnectionError: HTTPConnectionPool(host='{host}', port=80): Max retries "
                  f"exceeded with url: /v1/stock (Caused by NameResolutionError(\"<urllib3.connection.HTTPConnection "
                  f"object at 0x7f{rng.randrange(2**32):08x}>: Failed to resolve '{host}' ([Errno -3] Temporary "
                  "failure in name resolution)\"))",
        "java": f"java.net.UnknownHostException: {host}: Name or service not known",
        "node": f"Error: getaddrinfo {'EAI_AGAIN' if rng.random() < 0.5 else 'ENOTFOUND'} {host}",
    }[lang]


def _certificate_error(lang: str, host: str, at: datetime, expired: datetime, rng: random.Random) -> str:
    return {
        "python": f"requests.exceptions.SSLError: HTTPSConnectionPool(host='{host}', port=8443): Max retries exceeded "
                  "with url: /v1/entries (Caused by SSLError(SSLCertVerificationError(1, '[SSL: "
                  "CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired (_ssl.c:1006)')))",
        "go": f'Post "https://{host}:8443/v1/entries": tls: failed to verify certificate: x509: certificate has '
              f"expired or is not yet valid: current time {at:%Y-%m-%dT%H:%M:%SZ} is after "
              f"{expired:%Y-%m-%dT%H:%M:%SZ}",
        "java": f"javax.net.ssl.SSLHandshakeException: PKIX path validation failed: "
                f"java.security.cert.CertPathValidatorException: validity check failed (https://{host}:8443)",
        "node": f"Error: certificate has expired (https://{host}:8443/v1/entries) code=CERT_HAS_EXPIRED",
    }[lang]


def _database_errors(lang: str, db: str, host: str) -> tuple[tuple[str, str], ...]:
    """Return (marker, message) pairs a saturated database makes this stack log; the marker is in every line."""
    if db == "mysql":
        return (("Too many connections", f"Error 1040 (08004): Too many connections (host {host}:3306)"),
                ("maximum statement execution time", "Error 3024 (HY000): Query execution was interrupted, maximum "
                 "statement execution time exceeded"))
    return {
        "python": (("QueuePool limit", "sqlalchemy.exc.TimeoutError: QueuePool limit of size 20 overflow 10 reached, "
                    "connection timed out, timeout 30.00"),
                   ("too many clients", f'psycopg2.OperationalError: connection to server at "{host}" (10.0.4.12), '
                    "port 5432 failed: FATAL:  sorry, too many clients already")),
        "go": (("too many clients", "pq: sorry, too many clients already"),
               ("statement timeout", "ERROR: canceling statement due to statement timeout (SQLSTATE 57014)")),
        "java": (("too many clients", "org.postgresql.util.PSQLException: FATAL: sorry, too many clients already"),
                 ("remaining connection slots", "org.postgresql.util.PSQLException: FATAL: remaining connection slots "
                  "are reserved for non-replication superuser connections")),
        "node": (("too many clients", "error: sorry, too many clients already"),
                 ("timeout exceeded when trying", "Error: timeout exceeded when trying to connect")),
    }[lang]


def _memory_error(lang: str) -> str:
    return {"python": "MemoryError", "go": "fatal error: runtime: out of memory",
            "java": "java.lang.OutOfMemoryError: Java heap space",
            "node": "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"}[lang]


# (file, setting, old, new, commit message, error message with {n}/{ip}/{callee} placeholders, effect)
_CONFIGS = (
    ("config/database.yaml", "pool.max_size", "40", "4", "Reduce database pool.max_size to 4 per pod",
     "could not acquire a database connection within 5s (pool.max_size=4, waiting={n})", "database"),
    ("config/clients.yaml", "{callee}.timeout_ms", "2000", "200", "Tighten the {callee} client timeout_ms to 200",
     "{callee} lookup timed out after 200ms ({callee}.timeout_ms=200) for request {n}", "timeout"),
    ("config/ratelimits.yaml", "api.per_client_rps", "100", "10", "Lower per_client_rps for public API clients",
     "rejecting request from {ip}: rate limit exceeded (api.per_client_rps=10)", "traffic"),
    ("config/server.toml", "workers.max_threads", "64", "8", "Cap workers.max_threads at 8 to save memory",
     "request queue is full (workers.max_threads=8, queued={n}); rejecting with 503", "traffic"),
    ("config/flags.yaml", "flags.new_tax_engine", "false", "true", "Enable the new_tax_engine flag in production",
     "tax calculation failed with new_tax_engine enabled: no tax rate configured for region {region}", "error"),
    ("config/cache.yaml", "redis.max_connections", "200", "10", "Lower redis.max_connections to 10 per pod",
     "redis: connection pool exhausted (redis.max_connections=10, wait timeout 1s) for key cart:{n}", "database"),
)


# --- building one scenario ------------------------------------------------------------------------------------


@dataclass
class _Svc:
    """One service's raw, per-minute state; series are derived from it at the end."""

    profile: _Profile
    name: str
    rps: float
    base_err: float
    latency: float
    err_add: np.ndarray
    lat_mult: np.ndarray
    rps_mult: np.ndarray
    memory: np.ndarray
    db: np.ndarray | None = None


@dataclass
class _Pending:
    """A deploy being built; versions are given in time order at the end (rollbacks reuse an earlier one)."""

    key: str
    service: str
    at: datetime
    commits: tuple[Commit, ...]
    rollback_of: str | None = None  # put back the version that ran before this deploy


class _Builder:
    def __init__(self, fault: str, seed: int, index: int, tag: str, avoid: frozenset[str],
                 primary: str | None = None) -> None:
        digest = hashlib.sha256(f"blametrail-scenario:{seed}:{index}:{fault}".encode()).digest()
        self.r = random.Random(int.from_bytes(digest[:8], "big"))  # scalars and log lines
        self.np = np.random.default_rng(int.from_bytes(digest[8:16], "big"))  # per-minute arrays
        self.fault, self.index, self.tag, self.avoid = fault, index, tag, avoid
        self.notes: list[str] = []
        pool = [p for p in CATALOG if p.name not in avoid] or list(CATALOG)
        if fault == "database_saturation":
            pool = [p for p in pool if p.db] or pool
        if fault == "dependency_outage":
            pool = [p for p in pool if p.externals] or pool
        self.primary = self.pick(pool)
        if primary is not None:
            self.primary = _BY_NAME[primary]
        # One scenario per day at a random time of day; the fault starts on a whole minute.
        self.onset = BASE + timedelta(days=index, hours=self.r.randrange(6, 22), minutes=self.r.randrange(60))
        self.deploys: list[_Pending] = []
        self.updates: list[Update] = []
        self.templates: list[tuple[str, str, object, np.ndarray]] = []  # (service, level, text(at), rate per minute)
        self.key_events: list[KeyEvent] = []
        self.culprit: str | None = None
        self.svcs: dict[str, _Svc] = {}
        self.title = ""

    # helpers -------------------------------------------------------------------------------------------------

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def pick(self, seq):
        return seq[self.r.randrange(len(seq))]

    def uniform(self, lo: float, hi: float) -> float:
        return self.r.uniform(lo, hi)

    def name(self, profile: _Profile) -> str:
        return profile.name + self.tag

    def at(self, i: int) -> datetime:
        return self.grid_start + timedelta(minutes=i)

    def idx(self, at: datetime) -> int:
        return int((at - self.grid_start).total_seconds() // 60)

    def after_start(self, at: datetime) -> float:
        return (at - self.started).total_seconds() / 60

    def shape(self, start: datetime, end: datetime, ramp_in: int = 1, ramp_out: int = 2) -> np.ndarray:
        """Return 0..1 per minute: 0 before start, rising over ramp_in minutes, 1 until end, falling after it."""
        out = np.zeros(self.minutes)
        i0, i1 = self.idx(start), self.idx(end)
        for i in range(max(i0, 0), min(i1 + ramp_out, self.minutes)):
            up = min(1.0, (i - i0 + 1) / max(ramp_in, 1))
            down = 1.0 if i < i1 else max(0.0, 1 - (i - i1 + 1) / (ramp_out + 1))
            out[i] = up * down
        return out

    def commit(self, message: str, files: tuple[str, ...], before: datetime) -> Commit:
        return Commit(sha=f"{self.r.getrandbits(160):040x}", author=self.pick(AUTHORS), message=message, files=files,
                      at=before - timedelta(minutes=self.r.randrange(30, 48 * 60)))

    def deploy(self, profile: _Profile, at: datetime, commits: tuple[Commit, ...],
               rollback_of: str | None = None) -> _Pending:
        d = _Pending(key=f"d{len(self.deploys) + 1}", service=self.name(profile), at=at, commits=commits,
                     rollback_of=rollback_of)
        self.deploys.append(d)
        return d

    def harmless_deploy(self, profile: _Profile, at: datetime) -> _Pending:
        chosen = self.r.sample(_harmless_commits(profile), self.r.randrange(1, 4))
        return self.deploy(profile, at, tuple(self.commit(m, f, at) for m, f in chosen))

    def log(self, service: str, level: str, text, rate: np.ndarray) -> None:
        self.templates.append((service, level, text, rate))

    def line(self, p: _Profile, level: str, logger: str, msg) -> object:
        """Return text(at) formatting msg (a string, or a function returning one) as p's logger would."""
        r = self.r
        return lambda at: _line(p.lang, level, logger, msg() if callable(msg) else msg, at, r)

    def say(self, minutes_after_start: float, body: str) -> None:
        at = self.started + timedelta(minutes=max(minutes_after_start, 0.5))
        if at < self.resolved:
            self.updates.append(Update(at=at.replace(microsecond=0), author=self.pick(RESPONDERS), body=body))

    def logger(self, q: _Profile) -> str:
        return {"python": f"{q.name}.api", "go": "http/server.go:212", "java": f"c.s.{q.name[0]}.api.ApiController",
                "node": q.name}[q.lang]

    # the build -----------------------------------------------------------------------------------------------

    def build(self) -> Scenario:
        r, p = self.r, self.primary
        if self.fault == "memory_leak":  # a leak is noticed when pods start dying, not when memory starts to climb
            self.fill_time = timedelta(minutes=r.randrange(10, 26))
            self.started = self.onset + self.fill_time + timedelta(seconds=r.randrange(60, 5 * 60))
            self.recovery = self.started + timedelta(minutes=r.randrange(15, 50))
        else:
            self.started = self.onset + timedelta(seconds=r.randrange(60, 9 * 60))  # until someone is paged
            length = r.randrange(4, 20) if self.fault == "no_culprit" else r.randrange(20, 70)
            self.recovery = self.onset + timedelta(minutes=length)
        self.resolved = max(self.recovery + timedelta(seconds=r.randrange(60, 8 * 60)),
                            self.started + timedelta(minutes=5))
        self.grid_start = (self.started - LOOKBACK - LEAD).replace(second=0)
        self.minutes = self.idx(self.resolved + TAIL) + 2
        # The incident's services: the one at fault, sometimes with a caller or callee; and some others.
        self.incident = [p]
        callees = [c for c in p.callees if c not in self.avoid]
        if callees and self.chance(0.35):
            self.incident.append(_BY_NAME[self.pick(callees)])
        self.others = r.sample([q for q in CATALOG if q not in self.incident], 3)
        for q in self.incident:
            self.svcs[self.name(q)] = self.service(q)
        self.background()
        if self.chance(0.5):  # an earlier deploy of the same service, well before the onset
            room = (self.onset - (self.started - LOOKBACK)).total_seconds() / 60 - 2
            self.harmless_deploy(p, self.onset - timedelta(minutes=self.uniform(45, room)))
        getattr(self, "fault_" + self.fault)()
        self.noise()
        return self.finish()

    def service(self, q: _Profile) -> _Svc:
        n = self.minutes
        memory = q.memory_gib * 2**30 * q.pods * self.uniform(0.8, 1.2)
        svc = _Svc(profile=q, name=self.name(q), rps=q.rps * self.uniform(0.6, 1.5),
                   base_err=self.uniform(0.0008, 0.008), latency=q.latency * self.uniform(0.7, 1.4),
                   err_add=np.zeros(n), lat_mult=np.ones(n), rps_mult=np.ones(n),
                   memory=memory * (1 + 0.01 * self.np.standard_normal(n)))
        if q.db:
            level = self.uniform(15, 60)
            svc.db = level + self.np.normal(0, max(1.5, level * 0.06), n)
        return svc

    def background(self) -> None:
        """Every service logs a few errors and warnings all the time, at steady rates."""
        for q in self.incident:
            for level, template in self.r.sample(_BACKGROUND, self.r.randrange(3, 6)):
                text = self.line(q, level, self.logger(q), lambda t=template, q=q: _fill(t, q, self.r))
                self.log(self.name(q), level, text, np.full(self.minutes, self.uniform(0.05, 0.9)))

    def fail(self, service: str, level: float, start: datetime, end: datetime, ramp: int = 1,
             latency: float = 1.0) -> np.ndarray:
        """Make a share of a service's requests fail, and add latency, from start to end; return the shape."""
        shape = self.shape(start, end, ramp_in=ramp, ramp_out=self.r.randrange(1, 4))
        svc = self.svcs[service]
        svc.err_add += level * shape
        svc.lat_mult *= 1 + (latency - 1) * shape
        return shape

    def key_metric(self, series: str, service: str) -> None:
        self.key_events.append(KeyEvent("metric", series, service))

    def key_log(self, marker: str, service: str) -> None:
        self.key_events.append(KeyEvent("log", marker, service))

    # faults ----------------------------------------------------------------------------------------------------

    def culprit_deploy(self, commits: tuple[Commit, ...], at: datetime) -> _Pending:
        d = self.deploy(self.primary, at, commits)
        self.culprit = d.key
        self.key_events.append(KeyEvent("deploy", d.key, d.service))
        return d

    def undo(self, d: _Pending, fix_message: str, files: tuple[str, ...]) -> None:
        """End a deploy-caused incident the way teams do: roll back, ship a fix, or switch it off without a deploy."""
        at = self.recovery - timedelta(seconds=self.r.randrange(30, 150))
        roll = self.r.random()
        if roll < 0.55:
            self.deploy(self.primary, at, (), rollback_of=d.key)
            self.say(self.after_start(at) + 1, f"Rolled back {d.service} to {{previous:{d.key}}}; error rate dropping."
                     if self.chance(0.5) else f"Rollback of {d.service} is out.")
        elif roll < 0.8:
            self.deploy(self.primary, at, (self.commit(fix_message, files, at),))
            self.say(self.after_start(at) + 1, "Hotfix deployed, watching the error rate.")

    def fault_bad_deploy(self) -> None:
        p, r = self.primary, self.r
        spot = self.pick(p.spots)
        error = self.pick(spot.errors)
        at = self.onset - timedelta(seconds=r.randrange(30, 240))  # rollout: new pods take traffic after a while
        bad = self.commit(spot.message, (spot.path, _test_file(p)) if self.chance(0.6) else (spot.path,), at)
        commits = [bad, *(self.commit(m, f, at) for m, f in r.sample(_harmless_commits(p), r.randrange(0, 3)))]
        r.shuffle(commits)
        d = self.culprit_deploy(tuple(commits), at)
        service = d.service
        shape = self.fail(service, self.uniform(0.02, 0.4), self.onset, self.recovery, ramp=r.randrange(1, 4),
                          latency=self.uniform(1.0, 1.8))
        line, outer = r.randrange(40, 400), r.randrange(30, 200)
        logger = _trace(p, spot, error, line, outer, r)[0]
        self.log(service, "error", self.line(p, "error", logger, lambda: _trace(p, spot, error, line, outer, r)[1]),
                 self.uniform(6, 30) * shape)
        if self.chance(0.4):  # the access log's view of the same failure
            self.log(service, "error", self.line(p, "error", self.logger(p), f"{spot.route} returned 500"),
                     self.uniform(2, 10) * shape)
        self.key_metric("error_rate", service)
        self.key_log(error[:40], service)
        self.title = self.pick((f"Elevated 5xx on {service}", f"{service} error rate above SLO",
                                f"{spot.route} failing on {service}"))
        self.say(self.uniform(2, 8), f"Investigating elevated errors on {service}.")
        self.undo(d, f"Fix {spot.func} after '{spot.message}'", (spot.path,))

    def fault_config_change(self) -> None:
        p, r = self.primary, self.r
        file, setting, old, new, message, error, effect = self.pick(_CONFIGS)
        callee = (p.callees or ("inventory",))[0]
        setting, message, error = (x.replace("{callee}", callee) for x in (setting, message, error))
        error = error.replace("{region}", self.pick(("EU-DE", "EU-FR", "US-CA", "US-NY")))
        at = self.onset - timedelta(seconds=r.randrange(30, 240))
        files = (file,) if self.chance(0.6) else (file, "deploy/helm/values-production.yaml")
        d = self.culprit_deploy((self.commit(f"{message} ({setting}: {old} -> {new})", files, at),), at)
        service = d.service
        shape = self.fail(service, self.uniform(0.02, 0.35), self.onset, self.recovery, ramp=r.randrange(1, 3),
                          latency=self.uniform(1.5, 4.0) if effect in ("database", "timeout", "traffic") else 1.1)
        mention = f" (loaded from {file})" if self.chance(0.3) else ""
        self.log(service, "error", self.line(p, "error", self.logger(p), lambda: _fill(error, p, r) + mention),
                 self.uniform(6, 30) * shape)
        self.key_metric("error_rate", service)
        self.key_log(setting if setting in error else error[:30], service)
        self.title = self.pick((f"Elevated errors on {service}", f"{service} requests failing",
                                f"{service} p99 latency and errors up"))
        self.say(self.uniform(2, 10), f"Looking at {service}; errors started around {self.onset:%H:%M}.")
        self.undo(d, f"Restore {setting} to {old}", (file,))

    def fault_dependency_outage(self) -> None:
        p, r = self.primary, self.r
        host = self.pick(p.externals)
        kind = self.pick(("refused", "timeout", "unavailable"))
        service = self.name(p)
        shape = self.fail(service, self.uniform(0.05, 0.5), self.onset, self.recovery, ramp=r.randrange(1, 3),
                          latency=self.uniform(3, 12) if kind == "timeout" else self.uniform(1.0, 1.3))
        text = self.line(p, "error", self.logger(p), lambda: _dependency_error(p.lang, host, kind, r))
        self.log(service, "error", text, self.uniform(8, 30) * shape)
        self.key_metric("error_rate", service)
        self.key_log(host, service)
        self.title = self.pick((f"{service} failing calls to {host}", f"Elevated 5xx on {service}",
                                f"{service} degraded"))
        self.say(self.uniform(3, 12), f"Calls from {service} to {host} are failing; checking their status page.")
        if self.chance(0.5):
            self.say(self.uniform(12, 25), "The provider confirms an incident on their side.")
        self.say(self.after_start(self.recovery) + 1, f"{host} is answering again.")

    def fault_database_saturation(self) -> None:
        p, r = self.primary, self.r
        service = self.name(p)
        svc = self.svcs[service]
        host = f"{p.name}-db.prod.internal"
        limit = self.pick((100.0, 200.0)) if p.db == "postgres" else 151.0
        ramp = r.randrange(1, 4)
        full = self.shape(self.onset, self.recovery, ramp_in=ramp, ramp_out=2)
        svc.db = svc.db * (1 - full) + (limit - self.np.uniform(0, 3, self.minutes)) * full
        shape = self.fail(service, self.uniform(0.03, 0.3), self.onset + timedelta(minutes=1), self.recovery,
                          ramp=ramp, latency=self.uniform(3, 10))
        variants = _database_errors(p.lang, p.db, host)
        first, second = r.sample(variants, 2)
        self.log(service, "error", self.line(p, "error", self.logger(p), first[1]), self.uniform(6, 25) * shape)
        if self.chance(0.5):
            self.log(service, "error", self.line(p, "error", self.logger(p), second[1]), self.uniform(1, 6) * shape)
        self.log(service, "warn", self.line(p, "warn", self.logger(p), lambda: (
            f"slow query: {r.randrange(2000, 30000)}ms SELECT o.* FROM orders o JOIN order_lines l ON "
            f"l.order_id = o.id WHERE o.customer_id = {r.randrange(10**5, 10**7)}")), self.uniform(1, 6) * shape)
        if self.chance(0.5):  # the same slowness as this service's own middleware logs it
            route = self.pick(p.routes)
            self.log(service, "error", self.line(p, "error", self.logger(p), lambda: (
                f"{route.replace('<id>', str(r.randrange(10**4, 10**6)))} returned 503 after "
                f"{r.randrange(5000, 30000)}ms")), self.uniform(1, 8) * shape)
        self.key_metric("db_connections", service)
        self.key_log(first[0], service)
        self.title = self.pick((f"{service} slow, database timeouts", f"High latency on {service}",
                                f"Elevated 5xx on {service}"))
        self.say(self.uniform(3, 10), f"{host} is at max connections; looking for the long-running queries.")
        if self.chance(0.5):
            self.say(self.uniform(10, 20), "Killed a reporting query holding locks; connections draining.")

    def fault_memory_leak(self) -> None:
        p, r = self.primary, self.r
        service = self.name(p)
        svc = self.svcs[service]
        n, pods = self.minutes, p.pods
        base = float(svc.memory.mean()) / pods
        limit = base * self.uniform(2.2, 3.2)
        fill = self.fill_time.total_seconds() / 60
        i_on, i_fix = self.idx(self.onset), self.idx(self.recovery)
        extra = np.zeros(n)
        kills = np.zeros(n)
        fullness = np.zeros(n)
        for _ in range(pods):
            slope = (limit - base) / (fill * self.uniform(0.85, 1.3))
            level = base
            for i in range(i_on, min(i_fix, n)):
                level += slope
                if level >= limit:
                    kills[i] += 1
                    level = base * self.uniform(0.9, 1.1)  # the restarted container starts fresh
                extra[i] += level - base
                fullness[i] += (level / limit) ** 6 / pods
        svc.memory = svc.memory + extra
        svc.lat_mult *= 1 + 2.5 * fullness
        svc.err_add += np.minimum(0.5, kills / pods * self.uniform(0.3, 0.8))
        svc.err_add[1:] += np.minimum(0.5, kills[:-1] / pods * 0.3)  # the restart takes a minute
        self.log(service, "warn", lambda at: (
            f"Container {service} in pod {service}-{r.getrandbits(36):09x}-{r.getrandbits(20):05x} was OOMKilled "
            "(exit code 137); restarting"), kills)
        self.log(service, "error", self.line(p, "error", self.logger(p), _memory_error(p.lang)),
                 kills * 1.5 + 2 * fullness)
        self.key_metric("memory_working_set_bytes", service)
        self.key_log("OOMKilled", service)
        self.title = self.pick((f"{service} pods restarting", f"{service} crash looping", f"Elevated 5xx on {service}"))
        self.say(self.uniform(2, 8), f"{service} pods are being OOMKilled.")
        if self.chance(0.6):
            self.say(self.after_start(self.recovery),
                     "Raised the memory limit and disabled the in-process cache warmup.")

    def fault_certificate_expiry(self) -> None:
        p, r = self.primary, self.r
        service = self.name(p)
        host = self.pick(("ledger.prod.internal", "payments-gateway.prod.internal", "api.partnerbank.example",
                          "vault.prod.internal", "kafka-rest.prod.internal"))
        shape = self.fail(service, self.uniform(0.1, 0.9), self.onset, self.recovery, ramp=1,
                          latency=self.uniform(0.9, 1.2))
        expired = self.onset
        self.log(service, "error", lambda at: _line(p.lang, "error", self.logger(p),
                                                    _certificate_error(p.lang, host, at, expired, r), at, r),
                 self.uniform(8, 30) * shape)
        self.key_metric("error_rate", service)
        self.key_log(host if p.lang != "python" else "certificate has expired", service)
        self.title = self.pick((f"{service} cannot reach {host.split('.')[0]}", f"Elevated 5xx on {service}",
                                f"{service} requests failing"))
        self.say(self.uniform(3, 12), f"{service} calls to {host} fail during the TLS handshake.")
        if self.chance(0.6):
            self.say(self.after_start(self.recovery), "Certificate renewed and reloaded.")

    def fault_traffic_spike(self) -> None:
        p, r = self.primary, self.r
        service = self.name(p)
        svc = self.svcs[service]
        factor = self.uniform(1.8, 6.0)
        shape = self.shape(self.onset, self.recovery, ramp_in=r.randrange(1, 4), ramp_out=3)
        svc.rps_mult *= 1 + (factor - 1) * shape
        svc.lat_mult *= 1 + self.uniform(0.5, 4) * shape
        svc.err_add += self.uniform(0.01, 0.15) * shape
        self.log(service, "warn", self.line(p, "warn", self.logger(p), lambda: (
            f"rate limit exceeded for client {_fill('{ip}', p, r)}: responding 429 Too Many Requests")),
            self.uniform(8, 30) * shape)
        if self.chance(0.6):
            self.log(service, "error", self.line(p, "error", self.logger(p), lambda: (
                f"request queue is full (depth {r.randrange(500, 5000)}), shedding load with 503")),
                self.uniform(2, 10) * shape)
        self.key_metric("request_rate", service)
        self.key_log("429 Too Many Requests", service)
        self.title = self.pick((f"{service} latency and 429s", f"High latency on {service}", f"{service} degraded"))
        self.say(self.uniform(2, 8), f"Traffic to {service} is {factor:.0f}x normal.")
        if self.chance(0.5):
            self.say(self.uniform(8, 20), "Most of it comes from one ASN; enabling a WAF rule and scaling out.")

    def fault_dns(self) -> None:
        p, r = self.primary, self.r
        service = self.name(p)
        callee = self.pick(p.callees or ("catalog",))
        host = self.pick((f"{callee}.prod.svc.cluster.local", f"{callee}.prod.internal",
                          "redis-sessions.prod.internal"))
        shape = self.fail(service, self.uniform(0.1, 0.9), self.onset, self.recovery, ramp=r.randrange(1, 3),
                          latency=self.uniform(1.1, 3))
        self.log(service, "error", self.line(p, "error", self.logger(p), lambda: _dns_error(p.lang, host, r)),
                 self.uniform(8, 30) * shape)
        self.key_metric("error_rate", service)
        self.key_log(host, service)
        self.title = self.pick((f"{service} cannot reach {callee}", f"Elevated 5xx on {service}",
                                f"{service} requests failing"))
        self.say(self.uniform(3, 12), f"Lookups of {host} fail from {service} pods.")
        if self.chance(0.5):
            self.say(self.after_start(self.recovery), "Restarted CoreDNS; resolution works again.")

    def fault_no_culprit(self) -> None:
        """An alert on a short blip or on a flapping metric: nothing changed for good, nothing to blame."""
        p, r = self.primary, self.r
        service = self.name(p)
        svc = self.svcs[service]
        if self.chance(0.5):
            self.notes.append("blip")
            minutes = r.randrange(1, 4)
            self.fail(service, self.uniform(0.01, 0.08), self.onset, self.onset + timedelta(minutes=minutes - 1),
                      ramp=1, latency=self.uniform(1.2, 3))
            burst = np.zeros(self.minutes)
            burst[self.idx(self.onset): self.idx(self.onset) + minutes] = self.uniform(2, 6)
            level, template = self.pick(_BACKGROUND)
            self.log(service, level, self.line(p, level, self.logger(p), lambda: _fill(template, p, r)), burst)
        else:
            self.notes.append("flapping")
            jumps = self.np.random(self.minutes) < 0.18  # the p99 jumps now and then, all day long
            jumps[self.idx(self.onset)] = True
            svc.lat_mult *= np.where(jumps, self.uniform(1.8, 3.0), 1.0)
        self.title = self.pick((f"{service} latency alert", f"Elevated 5xx on {service}", f"{service} SLO burn rate"))
        self.say(self.uniform(2, 6), f"Looking at {service}; the alert cleared on its own.")
        self.say(self.uniform(6, 12), "No customer reports and nothing stands out in the dashboards. Closing.")

    # noise -----------------------------------------------------------------------------------------------------

    def noise(self) -> None:
        r, p = self.r, self.primary
        for q in self.others:  # other services deploy all day
            for _ in range(r.randrange(0, 3)):
                self.harmless_deploy(q, self.onset + timedelta(minutes=self.uniform(-130, 30)))
        close = 0.9 if self.fault == "no_culprit" else 0.25 if self.culprit is None else 0.0
        if self.chance(close):  # an innocent deploy of the same service shortly before the onset
            self.notes.append("close innocent deploy")
            self.harmless_deploy(p, self.onset - timedelta(minutes=self.uniform(3, 25)))
        for q in self.incident[1:]:
            if self.chance(0.4):
                self.harmless_deploy(q, self.onset - timedelta(minutes=self.uniform(2, 40)))
        if self.chance(0.3):  # an unrelated new warning that happens to start during the incident
            q = self.pick(self.incident)
            rate = self.shape(self.started - timedelta(minutes=5), self.resolved) * self.uniform(0.1, 0.4)
            self.log(self.name(q), "warn", self.line(q, "warn", self.logger(q), lambda: _fill(
                "feature flag holiday_banner evaluated without a user context for {route}", q, r)), rate)
        for q in self.incident:
            svc = self.svcs[self.name(q)]
            if self.chance(0.2):  # a p99 that always flaps
                svc.lat_mult *= np.where(self.np.random(self.minutes) < 0.2, self.uniform(1.5, 2.5), 1.0)
            if self.chance(0.15):  # an unrelated, lasting traffic shift (a client rebalanced, a cron started)
                at = self.grid_start + timedelta(minutes=self.uniform(10, self.minutes - 10))
                shift = self.shape(at, self.resolved + TAIL, ramp_in=3, ramp_out=0)
                svc.rps_mult *= 1 + self.uniform(0.15, 0.4) * shift
                self.notes.append(f"traffic shift at {at:%H:%M}")
            if self.chance(0.5):  # lone error spikes
                for i in r.sample(range(self.minutes), r.randrange(1, 4)):
                    svc.err_add[i] += self.uniform(0.005, 0.03)
        if self.chance(0.35):
            self.updates = []  # many incidents get no written updates at all

    # the result ------------------------------------------------------------------------------------------------

    def finish(self) -> Scenario:
        deploys = self.versioned()
        series = [m for svc in self.svcs.values() for m in self.series(svc)]
        logs = self.lines()
        updates = []
        for u in self.updates:
            body = u.body
            for key, version in self.before.items():
                body = body.replace(f"{{previous:{key}}}", version)
            updates.append(replace(u, body=body))
        p = self.primary
        return Scenario(
            id=f"{self.fault}{self.tag}", fault=self.fault, title=self.title,
            description=self.pick(("", f"Alert fired for {self.name(p)}.", f"Paged by the {self.name(p)} SLO alert.")),
            severity=self.pick(("SEV-2", "SEV-3", None)), services=tuple(sorted(self.svcs)),
            started_at=self.started, resolved_at=self.resolved, deploys=deploys,
            updates=tuple(sorted(updates, key=lambda u: u.at)), series=tuple(series), logs=logs,
            truth=Truth(culprit=self.culprit, category=CATEGORY[self.fault], onset=self.onset,
                        key_events=tuple(self.key_events)),
            notes=tuple(self.notes))

    def versioned(self) -> tuple[Deploy, ...]:
        """Give deploys increasing versions per service in time order; a rollback reuses the one it restores."""
        out: dict[str, Deploy] = {}
        running: dict[str, str] = {}
        before: dict[str, str] = {}  # deploy key -> the version that ran before it
        counters: dict[str, list[int]] = {}
        for d in sorted(self.deploys, key=lambda d: (d.at, d.key)):
            v = counters.setdefault(d.service, [self.r.randrange(1, 6), self.r.randrange(0, 40), 0])
            before[d.key] = running.get(d.service, f"v{v[0]}.{v[1]}.{v[2]}")
            if d.rollback_of is not None:
                version = before[d.rollback_of]
            else:
                v[1] += 1
                version = f"v{v[0]}.{v[1]}.{v[2]}"
            running[d.service] = version
            out[d.key] = Deploy(key=d.key, service=d.service, version=version, at=d.at, commits=d.commits)
        self.before = before
        return tuple(sorted(out.values(), key=lambda d: (d.at, d.key)))

    def series(self, svc: _Svc) -> list[MetricSeries]:
        """Derive what Prometheus would answer: counters as 5-minute rates, gauges as sampled."""
        g, n = self.np, self.minutes
        drift = np.linspace(0.95, 1.05, n)[:: 1 if self.chance(0.5) else -1]  # traffic drifts with the time of day
        expected = svc.rps * 60 * drift * svc.rps_mult * np.clip(1 + 0.03 * g.standard_normal(n), 0.5, None)
        requests = g.poisson(expected)
        p_err = np.clip(svc.base_err * g.lognormal(0, 0.3, n) + svc.err_add, 0, 1)
        errors = g.binomial(requests, p_err)
        req5, err5 = _trailing_sum(requests.astype(float)), _trailing_sum(errors.astype(float))
        latency = svc.latency * _trailing_sum(svc.lat_mult) / RATE_MINUTES * g.lognormal(0, 0.06, n)
        # The rate at minute i+1 covers minutes i-4..i; gauges are sampled at the start of each minute.
        first = RATE_MINUTES
        counter_times = [self.at(i + 1) for i in range(first, n)]
        gauge_times = [self.at(i) for i in range(first, n)]
        out = [
            MetricSeries("error_rate", svc.name, "ratio",
                         _points(counter_times, err5[first:] / np.maximum(req5[first:], 1))),
            MetricSeries("latency_p99", svc.name, "s", _points(counter_times, latency[first:])),
            MetricSeries("request_rate", svc.name, "req/s", _points(counter_times, req5[first:] / (RATE_MINUTES * 60))),
            MetricSeries("memory_working_set_bytes", svc.name, "bytes",
                         _points(gauge_times, np.round(svc.memory[first:]))),
        ]
        if svc.db is not None:
            out.append(MetricSeries("db_connections", svc.name, "",
                                    _points(gauge_times, np.round(np.clip(svc.db[first:], 0, None)))))
        return out

    def lines(self) -> tuple[LogRecord, ...]:
        """Draw each template's lines: Poisson counts per minute, uniform times within the minute."""
        out: list[LogRecord] = []
        r = self.r
        end = self.resolved + TAIL
        for service, level, text, rate in self.templates:
            counts = self.np.poisson(np.clip(rate, 0, None))
            for i in np.flatnonzero(counts).tolist():
                start = self.at(i)
                for offset in sorted(r.random() * 60 for _ in range(int(counts[i]))):
                    at = start + timedelta(milliseconds=int(offset * 1000))
                    if at <= end:
                        out.append(LogRecord(at=at, service=service, level=level, text=text(at)))
        out.sort(key=lambda g: (g.at, g.service, g.text))
        return tuple(out)


def _trailing_sum(values: np.ndarray, width: int = RATE_MINUTES) -> np.ndarray:
    sums = np.cumsum(values)
    out = sums.copy()
    out[width:] = sums[width:] - sums[:-width]
    return out


def _points(times: list[datetime], values: np.ndarray) -> tuple[tuple[datetime, float], ...]:
    return tuple((t, float(f"{v:.6g}")) for t, v in zip(times, values.tolist(), strict=True))
