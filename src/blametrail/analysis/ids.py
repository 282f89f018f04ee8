"""The evidence-id grammar: `<prefix>_<n>` ids that cite stored data (upd_3, deploy_2, metric_1…)."""

from __future__ import annotations

import re

# a timeline entry's kind → the prefix of its id; other kinds cite with the kind itself
ENTRY_PREFIX = {"update": "upd", "status": "st", "monitor": "mon", "alert": "alert"}
ENTRY_KIND = {prefix: kind for kind, prefix in ENTRY_PREFIX.items()}
DEPLOY, COMMIT, METRIC, LOG = "deploy", "commit", "metric", "log"
INCIDENT = "inc"  # another incident of the organization (a prior incident on the same service)
PREFIXES = ("upd", "st", "mon", "alert", DEPLOY, COMMIT, METRIC, LOG, INCIDENT)
# the timeline source each prefix stands for (a commit belongs to its deploy; another incident is a status fact)
SOURCE = {"upd": "update", "st": "status", "mon": "monitor", "alert": "alert", DEPLOY: "deploy", COMMIT: "deploy",
          METRIC: "metric", LOG: "log", INCIDENT: "status"}

_ALTERNATIVES = "|".join(PREFIXES)
# any id inside free text (model output, summaries); unbounded digits so over-long ids are still caught
ID_PATTERN = re.compile(rf"\b(?:{_ALTERNATIVES})_\d+\b")
# an id that can name a row: prefix and number as groups, at most 12 digits (fits a database integer)
CITATION = re.compile(rf"\b({_ALTERNATIVES})_(\d{{1,12}})\b")


def make(prefix: str, number: int) -> str:
    """Return the id `<prefix>_<number>`."""
    return f"{prefix}_{number}"


def entry_id(kind: str, number: int) -> str:
    """Return the id citing a timeline entry of a kind ("update" → upd_N)."""
    return make(ENTRY_PREFIX.get(kind, kind), number)


def update_id(number: int) -> str:
    """Return the id citing an incident update."""
    return entry_id("update", number)


def deploy_id(number: int) -> str:
    """Return the id citing a deploy."""
    return make(DEPLOY, number)


def commit_id(number: int) -> str:
    """Return the id citing a deploy's commit."""
    return make(COMMIT, number)


def metric_id(number: int) -> str:
    """Return the id citing a metric finding (numbered per generation run)."""
    return make(METRIC, number)


def log_id(number: int) -> str:
    """Return the id citing a log-template finding (numbered per generation run)."""
    return make(LOG, number)


def incident_id(number: int) -> str:
    """Return the id citing another incident of the organization (its own page)."""
    return make(INCIDENT, number)


def parse(value: str | None) -> tuple[str, int] | None:
    """Return (prefix, number) of a well-formed id, or None."""
    m = CITATION.fullmatch(value or "")
    return (m.group(1), int(m.group(2))) if m else None


def is_id(value: str | None) -> bool:
    """Tell whether a string is exactly one well-formed id."""
    return parse(value) is not None


def prefix_of(value: str) -> str:
    """Return the prefix of an id (the text before its last underscore)."""
    return value.rsplit("_", 1)[0]


def source_of(value: str) -> str:
    """Return the timeline source an id stands for ("commit_4" → "deploy")."""
    return SOURCE[value.split("_", 1)[0]]


def sort_key(value: str) -> tuple[int, str]:
    """Order ids by their number, then by text (ids without a number first)."""
    tail = value.rsplit("_", 1)[-1]
    return (int(tail) if tail.isdigit() else 0, value)
