"""The organization's AI configuration API: owner writes, admin reads, the key is never returned, orgs are isolated."""

from __future__ import annotations

from blametrail import db
from blametrail.ai.models import AIConfig

URL = "/api/v1/org/ai"
BODY = {"engine": "anthropic", "model": "claude-test", "base_url": "https://llm.example.test/",
        "api_key": "sk-ant-very-secret", "output_mode": "tool", "options": {"timeout_seconds": 30}}


def test_without_a_config_the_installation_settings_show(client, factory):
    owner = factory.team()["owner"]
    r = client.get(URL, headers=owner.headers)
    assert r.status_code == 200
    assert r.json()["source"] == "installation" and r.json()["engine"] == "builtin" and r.json()["has_api_key"] is False


def test_owner_sets_the_config_and_the_key_is_encrypted_and_never_returned(client, factory, rt):
    team = factory.team()
    r = client.put(URL, headers=team["owner"].headers, json=BODY)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data == {"engine": "anthropic", "model": "claude-test", "base_url": "https://llm.example.test",
                    "output_mode": "tool", "has_api_key": True, "options": {"timeout_seconds": 30},
                    "source": "organization", "updated_at": data["updated_at"]}
    assert "sk-ant-very-secret" not in r.text
    for role in ("owner", "admin"):
        got = client.get(URL, headers=team[role].headers)
        assert got.status_code == 200 and got.json()["has_api_key"] and "sk-ant" not in got.text
    with db.transaction(rt.factory) as s:
        stored = s.query(AIConfig).one()
        assert stored.api_key_encrypted and "sk-ant" not in stored.api_key_encrypted
        assert rt.secret_box.decrypt(stored.api_key_encrypted) == "sk-ant-very-secret"


def test_only_the_owner_writes_and_members_cannot_read(client, factory):
    team = factory.team()
    for role in ("admin", "member", "viewer"):
        assert client.put(URL, headers=team[role].headers, json=BODY).status_code == 403
        assert client.delete(URL, headers=team[role].headers).status_code == 403
    for role in ("member", "viewer"):
        assert client.get(URL, headers=team[role].headers).status_code == 403
    assert client.get(URL).status_code == 401


def test_the_provider_options_are_accepted_and_returned(client, factory):
    owner = factory.team()["owner"]
    options = {"deadline_seconds": 600, "max_tokens_param": "max_tokens", "instructions_in_user_message": True,
               "max_output_tokens": 1024}
    r = client.put(URL, headers=owner.headers, json={"engine": "openai", "model": "gemma-3-270m",
                                                     "base_url": "http://127.0.0.1:8080/v1", "output_mode": "json_object",
                                                     "options": options})
    assert r.status_code == 200, r.text
    assert r.json()["options"] == options and r.json()["output_mode"] == "json_object"


def test_omitting_the_key_keeps_it_but_a_new_server_drops_it(client, factory):
    owner = factory.team()["owner"]
    client.put(URL, headers=owner.headers, json=BODY).raise_for_status()
    same = {k: v for k, v in BODY.items() if k != "api_key"}
    assert client.put(URL, headers=owner.headers, json={**same, "model": "claude-2"}).json()["has_api_key"] is True
    moved = client.put(URL, headers=owner.headers, json={**same, "base_url": "https://other.example.test"}).json()
    assert moved["has_api_key"] is False
    client.put(URL, headers=owner.headers, json=BODY).raise_for_status()
    assert client.put(URL, headers=owner.headers, json={**BODY, "api_key": ""}).json()["has_api_key"] is False


def test_invalid_configs_are_refused_with_reasons(client, factory):
    owner = factory.team()["owner"]
    cases = [
        ({"engine": "openai"}, "model"),
        ({**BODY, "base_url": "ftp://x"}, "base_url"),
        ({**BODY, "base_url": "https://user:pw@x.test"}, "base_url"),
        ({**BODY, "options": {"api_key": "x"}}, "options.api_key"),
        ({**BODY, "options": {"timeout_seconds": 0}}, "options.timeout_seconds"),
        ({**BODY, "options": {"deadline_seconds": 4}}, "options.deadline_seconds"),
        ({**BODY, "options": {"max_tokens_param": "n_predict"}}, "options.max_tokens_param"),
        ({**BODY, "options": {"instructions_in_user_message": 1}}, "options.instructions_in_user_message"),
        ({**BODY, "output_mode": "json_object"}, "output_mode"),  # anthropic has no json_object response format
    ]
    for body, where in cases:
        r = client.put(URL, headers=owner.headers, json=body)
        assert r.status_code == 422, (body, r.text)
        assert where in r.text
    assert client.put(URL, headers=owner.headers, json={**BODY, "output_mode": "json"}).status_code == 422
    assert client.put(URL, headers=owner.headers, json={**BODY, "engine": "llama"}).status_code == 422


def test_delete_goes_back_to_the_installation(client, factory):
    owner = factory.team()["owner"]
    assert client.delete(URL, headers=owner.headers).status_code == 404
    client.put(URL, headers=owner.headers, json=BODY).raise_for_status()
    assert client.delete(URL, headers=owner.headers).status_code == 204
    assert client.get(URL, headers=owner.headers).json()["source"] == "installation"


def test_one_organizations_config_is_invisible_to_another(client, factory, rt):
    a, b = factory.team()["owner"], factory.team()["owner"]
    client.put(URL, headers=a.headers, json=BODY).raise_for_status()
    assert client.get(URL, headers=b.headers).json()["source"] == "installation"
    assert client.delete(URL, headers=b.headers).status_code == 404
    client.put(URL, headers=b.headers, json={"engine": "builtin"}).raise_for_status()
    assert client.get(URL, headers=a.headers).json()["engine"] == "anthropic"
    with db.transaction(rt.factory) as s:
        assert rt.engine_for_org(s, b.actor.org_id).label == "builtin"
        assert rt.engine_for_org(s, a.actor.org_id).label == "anthropic:claude-test"


def test_the_api_is_in_the_openapi_document(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"get", "put", "delete"} <= set(paths[URL])


def test_a_metadata_base_url_is_422_and_nothing_is_stored(client, factory, rt, monkeypatch):
    owner = factory.member(factory.org(), "owner")
    sentence = ("169.254.169.254 is a link-local/cloud metadata address; BlameTrail refuses it unless "
                "BLAMETRAIL_OUTBOUND_ALLOW lists it.")
    for body in ({**BODY, "base_url": "http://169.254.169.254/v1"},
                 {**BODY, "engine": "openai", "options": {"azure_endpoint": "http://169.254.169.254/"}}):
        r = client.put(URL, headers=owner.headers, json=body)
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
        assert sentence in r.json()["detail"]
    assert client.get(URL, headers=owner.headers).json()["source"] == "installation"
    with db.transaction(rt.factory) as s:
        assert s.query(AIConfig).count() == 0
    monkeypatch.setattr(rt.settings, "outbound_allow", "169.254.169.254/32")
    assert client.put(URL, headers=owner.headers, json={**BODY, "base_url": "http://169.254.169.254/v1"}).status_code == 200
