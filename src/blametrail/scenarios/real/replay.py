"""Replay one real incident to a running BlameTrail over HTTP, the way a team would, and collect the built-in draft.

The team's tools speak the public interfaces only: the incident is opened through the JSON API back-dated to the
start of impact (no severity: the draft has to infer it), every change goes through the generic deploy webhook,
every alert through the Alertmanager receiver (firing, then resolved when the facts say so), every human update
and mitigation through the updates endpoint with its real time; then the incident is resolved at its real
resolution time and the replay waits for the draft the queue's worker writes. Events dated after the resolution
are not sent (the draft is written at resolution).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx

from blametrail.scenarios.real.incidents import Event, RealIncident

DRAFT_WAIT_SECONDS = 120.0
DONE = ("draft", "edited", "published", "failed")


class ReplayError(RuntimeError):
    """The server refused a step of the replay; the message names the step and quotes the answer."""


@dataclass(frozen=True)
class Replayed:
    """What one replay produced: the ids the server gave each event, every citable id it holds, and the draft."""

    incident_id: int
    evidence: dict[str, str]  # event ref -> the evidence id a timeline row should cite for it
    known: dict[str, datetime]  # every evidence id the server holds for the incident -> its time
    draft: dict  # the postmortem's sections
    status: str  # the postmortem's status: draft, or failed
    engine: str
    draft_seconds: float  # from the resolve call to the stored draft


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _sha(*parts: str) -> str:
    return hashlib.sha1("/".join(parts).encode()).hexdigest()


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class Team:
    """One organization's tools pointed at a BlameTrail server: an API token and the webhooks created with it."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.alerts_path, self.alerts_secret = self._webhook(
            {"kind": "alertmanager", "name": "prod alertmanager", "open_incidents": False, "auto_resolve": False})
        self.deploys_path, self.deploys_secret = self._webhook({"kind": "generic_deploy", "name": "ci pipeline"})

    def _call(self, step: str, method: str, path: str, *, expect: tuple[int, ...] = (200, 201), **kwargs) -> dict:
        response = self.client.request(method, path, **kwargs)
        if response.status_code not in expect:
            raise ReplayError(f"{step}: {method} {path} answered {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else {}

    def _webhook(self, body: dict) -> tuple[str, str]:
        created = self._call(f"create the {body['kind']} webhook", "POST", "/api/v1/webhooks", json=body)
        # why: the URL carries the configured public address; the replay talks to whatever server it was given
        return urlsplit(created["url"]).path, created["secret"]

    def replay(self, incident: RealIncident, *, wait_seconds: float = DRAFT_WAIT_SECONDS) -> Replayed:
        """Open, feed, resolve, wait for the draft; return what the server holds."""
        opened = self._call("open the incident", "POST", "/api/v1/incidents", json={
            "title": incident.title, "services": list(incident.services), "started_at": _iso(incident.started_at),
            "description": incident.description})
        number = opened["id"]
        evidence: dict[str, str] = {}
        known: dict[str, datetime] = {}
        for at, action, event in self._schedule(incident):
            if action == "change":
                deploy = self._change(incident, event)
                evidence[event.ref] = deploy["evidence_id"]
                known[deploy["evidence_id"]] = _parse(deploy["deployed_at"])
                for commit in deploy["commits"]:
                    known[commit["evidence_id"]] = _parse(deploy["deployed_at"])
            elif action == "fire":
                self._alert(incident, event, "firing")
            elif action == "clear":
                self._alert(incident, event, "resolved")
            else:
                posted = self._call(f"post update {event.ref}", "POST", f"/api/v1/incidents/{number}/updates",
                                    json={"body": event.text, "at": _iso(at)})
                evidence[event.ref] = posted["evidence_id"]
        began = time.monotonic()
        self._call("resolve", "POST", f"/api/v1/incidents/{number}/resolve",
                   json={"resolved_at": _iso(incident.resolved_at)})
        postmortem = self._wait(number, wait_seconds)
        seconds = time.monotonic() - began
        timeline = self._call("read the timeline", "GET", f"/api/v1/incidents/{number}/timeline")
        for row in timeline:
            known[row["evidence_id"]] = _parse(row["at"])
        evidence.update(_alert_ids(incident, timeline))
        return Replayed(incident_id=number, evidence=evidence, known=known, draft=postmortem.get("sections") or {},
                        status=postmortem["status"], engine=postmortem.get("engine") or "", draft_seconds=seconds)

    @staticmethod
    def _schedule(incident: RealIncident) -> list[tuple[datetime, str, Event]]:
        """Return (time, action, event) in time order: changes, alerts firing and clearing, updates."""
        steps = []
        for e in incident.replayed:
            steps.append((e.at, {"deploy": "change", "config_change": "change", "alert": "fire"}.get(e.kind, "post"), e))
            if e.kind == "alert" and e.alert_resolved_at is not None and e.alert_resolved_at <= incident.resolved_at:
                steps.append((e.alert_resolved_at, "clear", e))
        return sorted(steps, key=lambda s: (s[0], s[1] != "change"))

    def _change(self, incident: RealIncident, event: Event) -> dict:
        body = {
            "service": event.service, "environment": "production", "version": event.version,
            "deployed_at": _iso(event.at), "external_id": f"{incident.id}:{event.ref}",
            "commits": [{"sha": _sha(incident.id, event.ref), "author": event.author, "message": event.text,
                         "files": list(event.files), "committed_at": _iso(event.at - timedelta(minutes=5))}],
        }
        answer = self._call(f"send change {event.ref} to the deploy webhook", "POST", self.deploys_path, json=body,
                            headers={"Authorization": f"Bearer {self.deploys_secret}"})
        if answer.get("status") != "recorded":
            raise ReplayError(f"send change {event.ref}: the deploy webhook answered {answer}")
        return answer["deploy"]

    def _alert(self, incident: RealIncident, event: Event, status: str) -> None:
        labels = {"alertname": event.alert_name, "service": event.service, "severity": event.alert_severity}
        ends = _iso(event.alert_resolved_at) if status == "resolved" else "0001-01-01T00:00:00Z"
        body = {
            "version": "4", "status": status, "receiver": "blametrail", "groupKey": f"{{}}:{{alertname=\"{event.alert_name}\"}}",
            "groupLabels": {"alertname": event.alert_name}, "commonLabels": labels, "commonAnnotations": {},
            "externalURL": "http://alertmanager.example:9093", "truncatedAlerts": 0,
            "alerts": [{"status": status, "labels": labels, "annotations": {"summary": event.text},
                        "startsAt": _iso(event.at), "endsAt": ends, "generatorURL": "http://prometheus.example:9090/graph",
                        "fingerprint": _sha(incident.id, event.ref)[:16]}],
        }
        answer = self._call(f"send alert {event.ref} ({status})", "POST", self.alerts_path, json=body,
                            headers={"Authorization": f"Bearer {self.alerts_secret}"})
        if status == "firing" and not answer.get("incidents_updated"):
            raise ReplayError(f"alert {event.ref} joined no incident: {answer}")

    def _wait(self, number: int, wait_seconds: float) -> dict:
        deadline = time.monotonic() + wait_seconds
        delay = 0.05
        while True:
            response = self.client.get(f"/api/v1/incidents/{number}/postmortem")
            if response.status_code == 200 and response.json()["status"] in DONE:
                return response.json()
            if response.status_code not in (200, 404):
                raise ReplayError(f"read the postmortem: answered {response.status_code}: {response.text[:500]}")
            if time.monotonic() > deadline:
                state = response.json().get("status") if response.status_code == 200 else "not created"
                raise ReplayError(f"no draft within {wait_seconds:.0f} s (postmortem {state})")
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def _alert_ids(incident: RealIncident, timeline: list[dict]) -> dict[str, str]:
    """Map each alert event to the evidence id of its firing entry on the timeline."""
    out = {}
    for e in incident.replayed:
        if e.kind != "alert":
            continue
        for row in timeline:
            data = row.get("data") or {}
            if (row["source"] == "alert" and data.get("status") == "firing" and data.get("name") == e.alert_name
                    and data.get("service") == e.service and _parse(row["at"]) == e.at):
                out[e.ref] = row["evidence_id"]
                break
    return out
