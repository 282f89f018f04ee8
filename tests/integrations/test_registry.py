"""The connector registry is the only list of providers: schemas, validation and pages derive from it."""

from __future__ import annotations

import pytest

from blametrail.integrations.base import REGISTRY
from blametrail.integrations.provider import COMMON_OPTIONS
from blametrail.integrations.schemas import ConnectionCreate
from blametrail.web.pages import connections as pages


def test_the_api_accepts_exactly_the_registered_providers():
    assert ConnectionCreate.model_json_schema()["properties"]["provider"]["enum"] == list(REGISTRY)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_each_provider_describes_itself_completely(name):
    provider = REGISTRY[name]
    assert provider.name == name and provider.label
    assert provider.credential_names and len(set(provider.credential_names)) == len(provider.credential_names)
    assert set(provider.kinds) <= {"metric", "log"} and provider.kinds
    assert not set(provider.options) & set(COMMON_OPTIONS)
    assert callable(provider.connector) and callable(provider.endpoint) and callable(provider.query)


def test_the_pages_offer_every_provider_and_every_credential_field():
    assert set(pages.PROVIDER_LABELS) == set(REGISTRY)
    shown = {f.name for group in pages.CREDENTIAL_GROUPS for f in group["fields"]}
    assert shown == {n for p in REGISTRY.values() for n in p.credential_names}
    assert "Prometheus or Loki" in [g["heading"] for g in pages.CREDENTIAL_GROUPS]  # same fields, one section
