"""Import every model so metadata is complete (migrations, tests)."""

from blametrail.actions.models import ActionItem
from blametrail.ai.models import AIConfig
from blametrail.alerts.models import Alert
from blametrail.db import Base
from blametrail.deploys.models import Commit, Deploy
from blametrail.incidents.models import Incident, IncidentService, TimelineEntry
from blametrail.integrations.models import Connection
from blametrail.learning import index as _search_index  # noqa: F401 — keeps the search index in step
from blametrail.learning.models import IncidentFingerprint, SearchDoc
from blametrail.monitors.models import CheckResult, Monitor
from blametrail.orgs.models import (
    ApiToken,
    IdempotencyRecord,
    LoginAttempt,
    LoginSession,
    LoginThrottle,
    Membership,
    MonthlyUsage,
    Organization,
    SetupToken,
    User,
)
from blametrail.outbound.models import OutboundDelivery, OutboundEndpoint
from blametrail.postmortems.models import Comment, CustomerVersion, GenerationRun, Postmortem, ReviewRequest, Revision
from blametrail.summaries.models import IncidentSummary
from blametrail.vendors.models import ExternalLink, VendorEvent, VendorIntegration
from blametrail.webhooks.models import Webhook, WebhookDelivery

__all__ = [
    "ActionItem", "Comment", "CustomerVersion", "ExternalLink", "OutboundDelivery", "OutboundEndpoint",
    "IncidentFingerprint", "ReviewRequest", "SearchDoc", "VendorEvent", "VendorIntegration",
    "AIConfig", "IncidentSummary", "Alert", "CheckResult", "Connection", "Monitor", "Webhook", "WebhookDelivery",
    "ApiToken", "Base", "Commit", "Deploy", "GenerationRun", "IdempotencyRecord", "Incident", "IncidentService",
    "LoginAttempt", "LoginSession", "LoginThrottle",
    "Membership", "MonthlyUsage", "Organization", "Postmortem", "Revision", "SetupToken", "TimelineEntry", "User",
]
