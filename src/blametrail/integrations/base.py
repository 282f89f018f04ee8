"""The connector seam: the Connector protocol, the static registry, and building a connector from a Connection."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Protocol

from blametrail.analysis.observations import LogLine, Series
from blametrail.crypto import SecretBox
from blametrail.errors import UpstreamError
from blametrail.integrations import cloudwatch, datadog, fake, loki, prometheus
from blametrail.integrations.common import (  # re-exported: the seam's vocabulary
    ConnectorConfig,
    Limits,
    Signal,
    escape,
    render,
    request_json,
    status_message,
    transport_message,
)
from blametrail.integrations.models import Connection
from blametrail.integrations.provider import Provider

__all__ = [
    "REGISTRY", "Connector", "ConnectorConfig", "Limits", "Provider", "Signal", "config_for", "connector_for",
    "decrypt_credentials", "escape", "render", "request_json", "status_message", "transport_message",
]


class Connector(Protocol):
    """One observability backend. Every method raises UpstreamError with a message a person can act on."""

    def test(self) -> str:
        """Check the backend answers with these credentials; return a one-line description of what worked."""
        ...

    def metrics(self, signal: Signal, service: str | None, start: datetime, end: datetime,
                step_seconds: int) -> list[Series]:
        """Return the signal's series over [start, end] (capped in number and points)."""
        ...

    def logs(self, signal: Signal, service: str | None, start: datetime, end: datetime, limit: int) -> list[LogLine]:
        """Return up to `limit` of the signal's log lines in [start, end], oldest first."""
        ...


# The only list of providers: schemas, services and pages derive from it. Its order is the pages' and the API's.
# Adding one: write integrations/<name>.py with its connector and `PROVIDER = Provider(...)`, then list it here.
# why: a plain dict, no plugin loader; connector modules import their SDKs lazily so this import stays cheap
REGISTRY: dict[str, Provider] = {p.name: p for p in (
    prometheus.PROVIDER, loki.PROVIDER, datadog.PROVIDER, cloudwatch.PROVIDER, fake.PROVIDER,
)}


def decrypt_credentials(connection: Connection, box: SecretBox) -> dict:
    """Return the connection's credentials in plain text (only ever held in memory)."""
    if not connection.credentials_encrypted:
        return {}
    try:
        return json.loads(box.decrypt(connection.credentials_encrypted))
    except ValueError as exc:
        raise UpstreamError(f"Credentials of connection {connection.name!r} cannot be decrypted: "
                            "was BLAMETRAIL_SECRET_KEY changed? Keep the old key in the list or re-enter them") from exc


def config_for(connection: Connection, box: SecretBox, limits: Limits | None = None) -> ConnectorConfig:
    """Return the decrypted, self-contained configuration of a connection (no database needed afterwards)."""
    options = dict(connection.options or {})
    return ConnectorConfig(
        name=connection.name, provider=connection.provider, endpoint=connection.endpoint or "",
        credentials=decrypt_credentials(connection, box), options=options,
        limits=(limits or Limits()).with_options(options),
        kinds=frozenset(str(s.get("kind", "metric")) for s in connection.signals or []))


def connector_for(connection: Connection, box: SecretBox, limits: Limits | None = None) -> Connector:
    """Build the connector for a connection from the registry."""
    try:
        provider = REGISTRY[connection.provider]
    except KeyError:
        raise UpstreamError(f"Connection {connection.name!r} has an unknown provider {connection.provider!r}") from None
    return provider.connector(config_for(connection, box, limits))
