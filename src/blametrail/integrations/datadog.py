"""Datadog connector through the official client: metric queries (v1 query) and log search (v2, cursor pages)."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

from blametrail.analysis.observations import LogLine, Series
from blametrail.clock import to_utc
from blametrail.errors import UpstreamError
from blametrail.integrations.common import (
    ConnectorConfig,
    Signal,
    cap_points,
    cap_series,
    finite,
    reason_phrase,
    render,
    retry_after,
    sanitize,
    seconds,
    utc_from_seconds,
)
from blametrail.integrations.provider import Credential, Provider, fail, reachable, safe_url
from blametrail.netguard import OutboundPolicy, redact_userinfo

log = logging.getLogger(__name__)
PAGE = 1000  # the log search API's largest page
MAX_PAGES = 100


def api_host(endpoint: str) -> str:
    """Return the API base URL for a Datadog site ("datadoghq.eu", "us5.datadoghq.com") or a full URL."""
    endpoint = (endpoint or "").strip().rstrip("/")
    if not endpoint:
        return "https://api.datadoghq.com"
    if "://" in endpoint:
        return endpoint
    return "https://" + (endpoint if endpoint.startswith("api.") else f"api.{endpoint}")


def _sdk() -> None:
    """Import the official client on first use (why: ~100 MB; the web process never pays for it)."""
    try:
        import datadog_api_client  # noqa: F401
    except ImportError as exc:
        raise UpstreamError("The Datadog connector needs the datadog extra: pip install 'blametrail[datadog]'") from exc


def _body_text(body) -> str:
    """Return the short reason of a JSON error body's `errors`/`error`/`message` field; never the raw body."""
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except ValueError:
            return ""
    if not isinstance(body, dict):
        return ""
    errors = body.get("errors") or body.get("error") or body.get("message")
    if isinstance(errors, list):
        return sanitize("; ".join(e if isinstance(e, str) else json.dumps(e) for e in errors))
    return sanitize(str(errors or ""))


class DatadogConnector:
    """Read metrics and logs from Datadog with an API key and an application key."""

    provider = "datadog"

    def __init__(self, config: ConnectorConfig) -> None:
        self.config = config
        self.host = api_host(config.endpoint)
        self.what = f"Datadog at {redact_userinfo(self.host)}"

    def _configuration(self):
        # why: the SDK (and urllib3 with it) is imported on first use in every method: see _sdk()
        import urllib3
        from datadog_api_client import Configuration

        creds = self.config.credentials
        cfg = Configuration(host=self.host, request_timeout=self.config.limits.timeout_seconds)
        cfg.api_key["apiKeyAuth"] = creds.get("api_key", "")
        cfg.api_key["appKeyAuth"] = creds.get("app_key", "")
        # why: urllib3 retries a timed-out read three times by default; one attempt keeps the timeout honest
        cfg.retry_policy = urllib3.util.Retry(total=0, connect=0, read=0, redirect=0, status=0, raise_on_status=False)
        cfg.verify_ssl = bool(self.config.options.get("verify_tls", True))
        return cfg

    def _call(self, fn):
        """Run one client call, turning the client's and urllib3's failures into UpstreamError."""
        import urllib3
        from datadog_api_client import ApiClient
        from datadog_api_client.exceptions import ApiException, ApiTypeError, ApiValueError

        # why: the client (urllib3) resolves the host itself, so vet it here first; a DNS answer that changes between
        # this check and urllib3's own lookup is not caught (httpx-based connectors connect to the vetted address)
        self.config.limits.outbound.check_url(self.host, resolve=True)
        try:
            with ApiClient(self._configuration()) as client:
                return fn(client)
        except ApiException as exc:
            raise UpstreamError(self._status_message(exc)) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise UpstreamError(self._transport_message(exc)) from exc
        except (ApiTypeError, ApiValueError) as exc:
            raise UpstreamError(f"{self.what} answered in an unexpected shape: {exc}") from exc

    def _status_message(self, exc) -> str:
        status = exc.status or 0
        text = _body_text(exc.body)
        headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
        if status == 0:
            return f"{self.what} could not be reached: {exc.reason}"
        if status == 401:
            return f"{self.what} rejected the API key (401): check api_key"
        if status == 403:
            return (f"{self.what} answered forbidden (403): check the application key and its scopes "
                    f"(metrics_read, logs_read_data)")
        if status == 429:
            return f"{self.what} rate-limited the request (429); retry {retry_after(headers)}"
        if status in (400, 422):  # why: only a rejected query carries the server's reason; other bodies stay out
            return f"{self.what} rejected the query ({status}): {text or reason_phrase(status)}"
        return f"{self.what} failed with HTTP {status}: {reason_phrase(status)}"

    def _transport_message(self, exc) -> str:
        import urllib3

        reason = getattr(exc, "reason", None) or exc
        # why: urllib3's NewConnectionError (refused, unresolvable) subclasses its ConnectTimeoutError
        if isinstance(reason, urllib3.exceptions.TimeoutError) and not isinstance(
                reason, urllib3.exceptions.NewConnectionError):
            return f"{self.what} timed out after {seconds(self.config.limits.timeout_seconds)} s"
        text = str(reason)
        if "refused" in text.lower():
            text = "connection refused"
        elif "resolve" in text.lower() or "name or service not known" in text.lower():
            text = "the host name does not resolve"
        return f"{self.what} could not be reached: {text}"

    def test(self) -> str:
        """Validate the API key, then the application key with a one-minute query; return a description."""
        _sdk()
        from datadog_api_client.v1.api.authentication_api import AuthenticationApi
        from datadog_api_client.v1.api.metrics_api import MetricsApi

        result = self._call(lambda c: AuthenticationApi(c).validate())
        if not result.get("valid", False):
            raise UpstreamError(f"{self.what} says the API key is not valid")
        now = int(datetime.now(UTC).timestamp())
        if "metric" in self.config.kinds or not self.config.kinds:
            self._call(lambda c: MetricsApi(c).query_metrics(_from=now - 60, to=now, query="avg:datadog.agent.running{*}"))
        if "log" in self.config.kinds:
            self._search(query="*", start=datetime.fromtimestamp(now - 60, UTC),
                         end=datetime.fromtimestamp(now, UTC), cursor=None, size=1)
        return f"{self.what} accepted the API and application keys"

    def metrics(self, signal: Signal, service: str | None, start: datetime, end: datetime,
                step_seconds: int) -> list[Series]:
        """Run the signal's metric query over [start, end] (Datadog picks the rollup; add `.rollup()` to choose)."""
        _sdk()
        from datadog_api_client.v1.api.metrics_api import MetricsApi

        query = render(signal.query, service)
        response = self._call(lambda c: MetricsApi(c).query_metrics(
            _from=int(start.timestamp()), to=int(end.timestamp()), query=query)).to_dict()
        if response.get("status") == "error" or response.get("error"):
            raise UpstreamError(f"{self.what} rejected the query: {response.get('error') or 'no reason given'}")
        out = []
        limits = self.config.limits
        for item in response.get("series") or []:
            points = []
            for point in item.get("pointlist") or []:
                value = finite(point[1]) if len(point) > 1 else None
                if point and point[0] is not None and value is not None:
                    points.append((utc_from_seconds(float(point[0]) / 1000), value))
            tags = item.get("tag_set") or [t for t in str(item.get("scope") or "").split(",") if t and t != "*"]
            labels = tuple(sorted(tuple(t.split(":", 1)) if ":" in t else (t, "") for t in tags))
            units = [u for u in (item.get("unit") or []) if isinstance(u, dict)]
            unit = signal.unit or (str(units[0].get("short_name") or units[0].get("name") or "") if units else "")
            out.append(Series(name=signal.name, service=service, points=cap_points(points, limits.max_points),
                              labels=labels, unit=unit, source=self.config.name))
        return cap_series(out, limits.max_series)

    def _search(self, *, query: str, start: datetime, end: datetime, cursor: str | None, size: int) -> dict:
        _sdk()
        from datadog_api_client.v2.api.logs_api import LogsApi
        from datadog_api_client.v2.model.logs_list_request import LogsListRequest
        from datadog_api_client.v2.model.logs_list_request_page import LogsListRequestPage
        from datadog_api_client.v2.model.logs_query_filter import LogsQueryFilter
        from datadog_api_client.v2.model.logs_sort import LogsSort

        page = LogsListRequestPage(limit=size, cursor=cursor) if cursor else LogsListRequestPage(limit=size)
        body = LogsListRequest(
            filter=LogsQueryFilter(query=query, _from=_iso(start), to=_iso(end)),
            page=page, sort=LogsSort.TIMESTAMP_ASCENDING)
        return self._call(lambda c: LogsApi(c).list_logs(body=body)).to_dict()

    def logs(self, signal: Signal, service: str | None, start: datetime, end: datetime, limit: int) -> list[LogLine]:
        """Return up to `limit` matching log lines in time order, following the search cursor."""
        cap = max(0, min(limit, self.config.limits.max_lines))
        query = render(signal.query, service)
        lines: list[LogLine] = []
        cursor = None
        for _ in range(MAX_PAGES):
            if len(lines) >= cap:
                break
            response = self._search(query=query, start=start, end=end, cursor=cursor, size=min(PAGE, cap - len(lines)))
            for item in response.get("data") or []:
                attrs = item.get("attributes") or {}
                at = to_utc(attrs.get("timestamp"))
                if at is None:  # why: a line without a readable time cannot be placed on the timeline
                    continue
                labels = [("service", str(attrs["service"]))] if attrs.get("service") else []
                labels += [(k, str(attrs[k])) for k in ("host", "status") if attrs.get(k)]
                lines.append(LogLine(at=at, text=str(attrs.get("message") or ""), service=service,
                                     labels=tuple(labels), source=self.config.name))
                if len(lines) >= cap:
                    break
            cursor = ((response.get("meta") or {}).get("page") or {}).get("after")
            if not cursor or not response.get("data"):
                break
        lines.sort(key=lambda line: line.at)
        return lines


def _iso(value: datetime) -> str:
    # why: Datadog's log search takes milliseconds; clock.iso stops at seconds
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


_SITE = re.compile(r"^[a-z0-9]+([.-][a-z0-9]+)*\.[a-z]{2,}$")


def check_endpoint(provider: Provider, value: str, policy: OutboundPolicy | None) -> str:
    """Accept a Datadog site (blank: datadoghq.com) or a full URL."""
    loc = ["body", "endpoint"]
    if "://" in value:
        return safe_url(value, loc, provider, policy)
    if value and not _SITE.match(value.lower()):
        raise fail(loc, "give a Datadog site such as datadoghq.com, datadoghq.eu or us5.datadoghq.com")
    reachable(api_host(value.lower()), loc, policy)
    return value.lower() or "datadoghq.com"


def check_credentials(creds: dict[str, str], loc: list) -> None:
    """Require both keys, or none."""
    if creds and not (creds.get("api_key") and creds.get("app_key")):
        raise fail(loc, "Datadog needs both api_key and app_key")


PROVIDER = Provider(
    name="datadog", label="Datadog", connector=DatadogConnector, credential_fields=(
        Credential("api_key", "API key"), Credential("app_key", "Application key")),
    kinds=("metric", "log"), endpoint=check_endpoint, credentials=check_credentials,
    endpoint_help="site such as datadoghq.eu, or a URL", credentials_help="api_key and app_key")
