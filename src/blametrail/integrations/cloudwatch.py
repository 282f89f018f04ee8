"""Amazon CloudWatch connector through boto3: GetMetricData for metrics, FilterLogEvents for logs (paginated)."""

from __future__ import annotations

import json
import logging
import math
import re
from datetime import UTC, datetime

from blametrail.analysis.observations import LogLine, Series
from blametrail.errors import UpstreamError
from blametrail.integrations.common import (
    ConnectorConfig,
    Signal,
    cap_points,
    cap_series,
    finite,
    reason_phrase,
    sanitize,
    seconds,
    substitute,
)
from blametrail.integrations.provider import Credential, Option, Provider, fail, url_option
from blametrail.netguard import OutboundPolicy, redact_userinfo

log = logging.getLogger(__name__)
MAX_PAGES = 100
LOG_PAGE = 10_000  # FilterLogEvents' largest page
STATS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
_PERIODS = (1, 5, 10, 30)
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_CREDENTIAL_CODES = {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch",
                     "InvalidSignatureException", "IncompleteSignature", "ExpiredToken", "ExpiredTokenException",
                     "AuthFailure", "MissingAuthenticationToken", "InvalidAccessKeyId"}
_DENIED_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "NotAuthorized"}
_THROTTLE_CODES = {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded",
                   "LimitExceeded", "LimitExceededException", "RequestThrottled"}
_QUERY_CODES = {"InvalidParameter", "InvalidParameterValue", "InvalidParameterException", "InvalidParameterCombination",
                "MissingParameter", "MissingRequiredParameter", "ValidationError", "ValidationException",
                "InvalidFormat", "InvalidNextToken", "MalformedQueryException"}


def parse_metric_spec(query: str, service: str | None) -> dict:
    """Return a metric spec (JSON) with `$service` substituted; raise UpstreamError if it is not usable."""
    try:
        spec = json.loads(query)
    except ValueError as exc:
        raise UpstreamError(f"CloudWatch metric signal is not JSON: {exc}") from exc
    if not isinstance(spec, dict) or not (spec.get("expression") or (spec.get("namespace") and spec.get("metric"))):
        raise UpstreamError('CloudWatch metric signal needs {"namespace", "metric"} or {"expression"}')
    return substitute(spec, service)


def parse_log_spec(query: str, service: str | None) -> dict:
    """Return a log spec (JSON: log_groups, filter_pattern) with `$service` substituted."""
    try:
        spec = json.loads(query)
    except ValueError as exc:
        raise UpstreamError(f"CloudWatch log signal is not JSON: {exc}") from exc
    groups = spec.get("log_groups") if isinstance(spec, dict) else None
    if isinstance(groups, str):
        groups = [groups]
    if not groups:
        raise UpstreamError('CloudWatch log signal needs {"log_groups": [...]} (and optionally "filter_pattern")')
    spec = substitute({**spec, "log_groups": groups}, service)
    return spec


def _dimensions(raw) -> list[dict]:
    if isinstance(raw, dict):
        return [{"Name": str(k), "Value": str(v)} for k, v in raw.items()]
    return [{"Name": str(d.get("name") or d.get("Name")), "Value": str(d.get("value") or d.get("Value"))}
            for d in raw or []]


def _error_parts(exc) -> tuple[str, str, int]:
    """Return (code, message, status) of a ClientError, reading an XML body a JSON/CBOR parser could not."""
    error = exc.response.get("Error") or {}
    code, message = str(error.get("Code") or ""), str(error.get("Message") or "")
    status = int((exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
    if (not code or code.isdigit()) and "<Code>" in message:  # why: some endpoints answer XML to JSON/CBOR clients
        found = re.search(r"<Code>([^<]+)</Code>", message)
        text = re.search(r"<Message>([^<]*)</Message>", message)
        code, message = (found.group(1) if found else code), (text.group(1) if text else "")
    return code, message, status


class CloudWatchConnector:
    """Read metrics and logs from CloudWatch in one region."""

    provider = "cloudwatch"

    def __init__(self, config: ConnectorConfig) -> None:
        self.config = config
        self.region = (config.endpoint or "us-east-1").strip()
        self.endpoint_url = config.options.get("endpoint_url") or None
        self.what = f"CloudWatch in {self.region}" + (f" at {redact_userinfo(self.endpoint_url)}"
                                                      if self.endpoint_url else "")

    def _client(self, service: str):
        try:
            import boto3  # why: boto3 costs start-up time and memory; only workers that fetch evidence need it
            from botocore.config import Config
        except ImportError as exc:
            raise UpstreamError("The CloudWatch connector needs the aws extra: pip install 'blametrail[aws]'") from exc

        if self.endpoint_url:
            # why: botocore resolves the host itself, so vet it here first (AWS's own endpoints need no check); a DNS
            # answer that changes between this check and botocore's lookup is not caught
            self.config.limits.outbound.check_url(self.endpoint_url, resolve=True)
        creds = self.config.credentials
        session = boto3.session.Session(
            aws_access_key_id=creds.get("access_key_id") or None,
            aws_secret_access_key=creds.get("secret_access_key") or None,
            aws_session_token=creds.get("session_token") or None, region_name=self.region)
        timeout = self.config.limits.timeout_seconds
        config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1, "mode": "standard"},
                        user_agent_extra="blametrail")
        return session.client(service, endpoint_url=self.endpoint_url, config=config,
                              verify=bool(self.config.options.get("verify_tls", True)))

    def _call(self, fn, action: str):
        """Run one AWS call, turning botocore failures into UpstreamError with an actionable message."""
        from botocore import exceptions as bx  # why: lazy like boto3 above (start-up cost, optional extra)

        try:
            return fn()
        except bx.ClientError as exc:
            raise UpstreamError(self._client_error(exc, action)) from exc
        except bx.NoCredentialsError as exc:
            raise UpstreamError(f"{self.what}: no AWS credentials: set access_key_id and secret_access_key, "
                                "or give the worker an IAM role") from exc
        except (bx.ConnectTimeoutError, bx.ReadTimeoutError) as exc:
            raise UpstreamError(f"{self.what} timed out after {seconds(self.config.limits.timeout_seconds)} s") from exc
        except bx.EndpointConnectionError as exc:
            cause = str(getattr(exc, "kwargs", {}).get("error") or exc)
            reason = "connection refused" if "refused" in cause.lower() else str(exc)
            raise UpstreamError(f"{self.what} could not be reached: {reason}") from exc
        except bx.ParamValidationError as exc:
            raise UpstreamError(f"{self.what} rejected the query: {exc}") from exc
        except bx.BotoCoreError as exc:
            raise UpstreamError(f"{self.what} failed: {sanitize(str(exc))}") from exc

    def _client_error(self, exc, action: str) -> str:
        code, message, status = _error_parts(exc)
        # why: a numeric code means the answer was not AWS's error format, so its message may be any body
        code, message = sanitize(code, 80), ("" if not code or code.isdigit() else sanitize(message))
        detail = f" ({code}): {message}" if message else f" ({code})"
        if code in _CREDENTIAL_CODES or (status == 401 and code not in _DENIED_CODES):
            return f"{self.what} rejected the credentials{detail}; check the access key, secret and session token"
        if code in _DENIED_CODES or status == 403:
            return f"{self.what} denied access{detail}; allow {action} for these credentials"
        if code in _THROTTLE_CODES or status == 429:
            return f"{self.what} rate-limited the request{detail}; retry later"
        if code in _QUERY_CODES or (status == 400 and code != "ResourceNotFoundException"):
            return f"{self.what} rejected the query{detail}"
        if code == "ResourceNotFoundException":
            return f"{self.what} has no such resource{detail}: check the log group name"
        # why: an unknown error's message may be any body (a custom endpoint_url can be an internal service)
        if code and not code.isdigit():
            return f"{self.what} failed ({code})"
        return f"{self.what} failed with HTTP {status}: {reason_phrase(status)}"

    def test(self) -> str:
        """Check the credentials can read what the signals need; return a one-line description."""
        checked = []
        if "metric" in self.config.kinds or not self.config.kinds:
            cw = self._client("cloudwatch")
            self._call(lambda: cw.list_metrics(), "cloudwatch:ListMetrics")
            checked.append("metrics")
        if "log" in self.config.kinds:
            logs = self._client("logs")
            self._call(lambda: logs.describe_log_groups(limit=1), "logs:DescribeLogGroups")
            checked.append("logs")
        return f"{self.what} answered; can read {' and '.join(checked)}"

    def metrics(self, signal: Signal, service: str | None, start: datetime, end: datetime,
                step_seconds: int) -> list[Series]:
        """Run GetMetricData for the signal's spec over [start, end], following NextToken."""
        spec = parse_metric_spec(signal.query, service)
        limits = self.config.limits
        span = max(60.0, (end - start).total_seconds())
        # why: periods are 1, 5, 10, 30 or a multiple of 60 s, and coarse enough to stay under the point cap
        wanted = int(spec.get("period") or step_seconds or 60)
        if wanted not in (1, 5, 10, 30):
            wanted = max(60, math.ceil(wanted / 60) * 60)
        need = span / max(1, limits.max_points)
        period = wanted if wanted >= need else max(60, math.ceil(need / 60) * 60)
        if spec.get("expression"):
            query = {"Id": "m0", "Expression": str(spec["expression"]), "Period": period, "ReturnData": True}
        else:
            stat = str(spec.get("stat") or "Average")
            metric = {"Namespace": str(spec["namespace"]), "MetricName": str(spec["metric"]),
                      "Dimensions": _dimensions(spec.get("dimensions"))}
            stat_spec = {"Metric": metric, "Period": period, "Stat": stat}
            if spec.get("unit"):
                stat_spec["Unit"] = str(spec["unit"])
            query = {"Id": "m0", "MetricStat": stat_spec, "ReturnData": True}
        cw = self._client("cloudwatch")
        merged: dict[tuple[str, str], list] = {}
        token = None
        for _ in range(MAX_PAGES):
            kwargs = {"MetricDataQueries": [query], "StartTime": start, "EndTime": end,
                      "ScanBy": "TimestampAscending", "MaxDatapoints": max(limits.max_points, 100)}
            if token:
                kwargs["NextToken"] = token
            page = self._call(lambda: cw.get_metric_data(**kwargs), "cloudwatch:GetMetricData")
            for result in page.get("MetricDataResults") or []:
                if result.get("StatusCode") == "Forbidden":
                    raise UpstreamError(f"{self.what} denied access to {signal.name!r}: "
                                        f"{result.get('Messages') or 'Forbidden'}")
                key = (str(result.get("Id") or ""), str(result.get("Label") or ""))
                merged.setdefault(key, []).extend(zip(result.get("Timestamps") or [], result.get("Values") or []))
            token = page.get("NextToken")
            if not token:
                break
        out = []
        for (_id, label), raw in merged.items():
            points = [(ts.astimezone(UTC), v) for ts, value in raw if (v := finite(value)) is not None]
            labels = tuple(sorted([("label", label)] + [(d["Name"], d["Value"]) for d in
                                                        (query.get("MetricStat", {}).get("Metric", {}).get("Dimensions") or [])]))
            out.append(Series(name=signal.name, service=service, points=cap_points(points, limits.max_points),
                              labels=labels, unit=signal.unit or str(spec.get("unit") or ""), source=self.config.name))
        return cap_series(out, limits.max_series)

    def logs(self, signal: Signal, service: str | None, start: datetime, end: datetime, limit: int) -> list[LogLine]:
        """Return up to `limit` events from the spec's log groups matching its filter pattern, following nextToken."""
        spec = parse_log_spec(signal.query, service)
        cap = max(0, min(limit, self.config.limits.max_lines))
        client = self._client("logs")
        lines: list[LogLine] = []
        for group in spec["log_groups"]:
            group = str(group)
            token = None
            for _ in range(MAX_PAGES):
                if len(lines) >= cap:
                    break
                kwargs = {"startTime": int(start.timestamp() * 1000), "endTime": int(end.timestamp() * 1000),
                          "limit": min(LOG_PAGE, cap - len(lines))}
                kwargs["logGroupIdentifier" if group.startswith("arn:") else "logGroupName"] = group
                if spec.get("filter_pattern"):
                    kwargs["filterPattern"] = str(spec["filter_pattern"])
                if token:
                    kwargs["nextToken"] = token
                page = self._call(lambda: client.filter_log_events(**kwargs), "logs:FilterLogEvents")
                for event in page.get("events") or []:
                    if len(lines) >= cap:
                        break
                    at = datetime.fromtimestamp(int(event.get("timestamp") or 0) / 1000, UTC)
                    labels = (("log_group", group), ("log_stream", str(event.get("logStreamName") or "")))
                    lines.append(LogLine(at=at, text=str(event.get("message") or "").rstrip("\n"), service=service,
                                         labels=labels, source=self.config.name))
                token = page.get("nextToken")
                if not token:
                    break
        lines.sort(key=lambda line: line.at)
        return lines


# --- the provider description ------------------------------------------------------------------------------


def check_endpoint(provider: Provider, value: str, policy: OutboundPolicy | None) -> str:
    """Accept an AWS region (the endpoint of a CloudWatch connection)."""
    if not _REGION.match(value):
        raise fail(["body", "endpoint"], "give the AWS region, e.g. us-east-1 or eu-west-1")
    return value


def check_credentials(creds: dict[str, str], loc: list) -> None:
    """Require an access key with its secret (or neither: the worker's IAM role)."""
    if bool(creds.get("access_key_id")) != bool(creds.get("secret_access_key")):
        raise fail(loc, "give access_key_id and secret_access_key together (or neither, to use the IAM role)")
    if creds.get("session_token") and not creds.get("access_key_id"):
        raise fail(loc, "a session_token needs access_key_id and secret_access_key")


def _json_object(query, loc: list) -> dict:
    if isinstance(query, dict):
        return query
    try:
        value = json.loads(query)
    except ValueError as exc:
        raise fail(loc, f"a CloudWatch query is a JSON object: {exc}") from exc
    if not isinstance(value, dict):
        raise fail(loc, "a CloudWatch query is a JSON object")
    return value


def check_query(provider: Provider, kind: str, query, loc: list) -> dict:
    """Accept a CloudWatch metric or log spec: a JSON object (or its text) with known fields."""
    spec = _json_object(query, loc)
    if kind == "log":
        groups = spec.get("log_groups")
        if isinstance(groups, str):
            groups = [groups]
        if not groups or not all(isinstance(g, str) and g.strip() for g in groups):
            raise fail(loc, 'a CloudWatch log signal needs "log_groups": a list of log group names (or ARNs)')
        unknown = set(spec) - {"log_groups", "filter_pattern"}
        if unknown:
            raise fail(loc, f"unknown field(s) {', '.join(sorted(unknown))}; use log_groups and filter_pattern")
        if spec.get("filter_pattern") is not None and not isinstance(spec["filter_pattern"], str):
            raise fail(loc, "filter_pattern must be a string")
        return {**spec, "log_groups": [g.strip() for g in groups]}
    unknown = set(spec) - {"namespace", "metric", "dimensions", "stat", "period", "unit", "expression"}
    if unknown:
        raise fail(loc, f"unknown field(s) {', '.join(sorted(unknown))}; use namespace, metric, dimensions, stat, "
                         "period, unit, or expression")
    if not spec.get("expression") and not (spec.get("namespace") and spec.get("metric")):
        raise fail(loc, 'a CloudWatch metric signal needs "namespace" and "metric" (or an "expression")')
    stat = spec.get("stat")
    if stat is not None and not (stat in STATS or re.match(r"^(p|tm|wm|tc|ts|pr)\d", str(stat))):
        raise fail(loc, f"stat must be one of {', '.join(STATS)} or a percentile such as p99")
    period = spec.get("period")
    if period is not None and (not isinstance(period, int) or isinstance(period, bool) or period <= 0
                               or (period not in _PERIODS and period % 60)):
        raise fail(loc, "period is 1, 5, 10, 30 or a multiple of 60 seconds")
    dims = spec.get("dimensions")
    if dims is not None and not isinstance(dims, (dict, list)):
        raise fail(loc, 'dimensions is an object such as {"Service": "$service"}')
    return spec


PROVIDER = Provider(
    name="cloudwatch", label="CloudWatch", connector=CloudWatchConnector,
    credential_fields=(Credential("access_key_id", "Access key ID", secret=False),
                       Credential("secret_access_key", "Secret access key"),
                       Credential("session_token", "Session token", optional=True)),
    kinds=("metric", "log"),
    options={"endpoint_url": Option(str, 1, 2000, check=url_option)},
    endpoint=check_endpoint, credentials=check_credentials, query=check_query,
    endpoint_help="AWS region such as eu-west-1",
    credentials_help="access_key_id, secret_access_key, session_token (omit all to use the worker's IAM role)",
    credentials_hint="leave blank to use the worker's IAM role; the region is the endpoint",
    options_help="endpoint_url")
