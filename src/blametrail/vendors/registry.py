"""The vendor integrations this build offers, by kind (the only list: service, API, pages and tests read it)."""

from __future__ import annotations

from types import MappingProxyType

from blametrail.vendors import confluence, github_issues, jira, linear, notion, opsgenie, pagerduty, slack
from blametrail.vendors.base import Vendor

REGISTRY: MappingProxyType[str, Vendor] = MappingProxyType({v.kind: v for v in (
    slack.VENDOR, pagerduty.VENDOR, opsgenie.VENDOR, jira.VENDOR, linear.VENDOR, github_issues.VENDOR, confluence.VENDOR, notion.VENDOR)})
