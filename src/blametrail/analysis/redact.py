"""Redaction for the customer-facing postmortem: take internal details out of text meant for customers.

What goes, each replaced by a plain phrase so the sentence still reads, and each recorded so a person can review
exactly what was removed (and why) before anything is made public:
- evidence ids (`upd_5`, `[deploy_2, commit_3]`) — internal references, dropped with their brackets;
- links, e-mail addresses, IP addresses and host names (`db-01.prod.internal`) → "an internal system";
- commit hashes (7–40 hex digits with a digit and a letter) → "a change" (dropped when in brackets), version
  strings (`v2.3.1`, `2.3.1`) dropped;
- the names of people (the organization's members, the authors of updates) → "an engineer";
- internal names the caller lists (services, teams, repositories) → "one of our services" / "our team".
Pure text in, text out: nothing here reads the database.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from blametrail.analysis.ids import ID_PATTERN

_CITE_GROUP = re.compile(r"\s*[\[(]\s*(?:" + ID_PATTERN.pattern + r")(?:\s*[,;]\s*(?:" + ID_PATTERN.pattern
                         + r"))*\s*[\])]")
_URL = re.compile(r"\bhttps?://[^\s<>()\[\]]+", re.I)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b")
# a dotted name whose last label is not a file extension people write in prose (e.g. "config.yaml" stays)
_HOST = re.compile(r"\b[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+(?::\d+)?\b", re.I)
_NOT_HOST_ENDINGS = ("yaml", "yml", "json", "py", "go", "js", "ts", "md", "txt", "conf", "toml", "sql", "sh", "log")
_VERSION = re.compile(r"\b(?:v\d+(?:\.\d+){1,3}|\d+(?:\.\d+){2,3})(?:[-+][\w.]+)?\b")  # v2.3, 2.3.1: not 3.5
_COMMIT_NOTE = re.compile(r"\s*\(\s*(?:commit\s+)?(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\s*\)", re.I)
_SHA = re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b")


@dataclass(frozen=True)
class Removal:
    text: str
    reason: str


@dataclass
class Redactor:
    """Redact with the organization's own names: people, services, teams."""

    people: Iterable[str] = ()
    services: Iterable[str] = ()
    teams: Iterable[str] = ()
    removed: list[Removal] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._names = [(n, "person", "an engineer") for n in _clean_names(self.people)]
        self._names += [(n, "team", "our team") for n in _clean_names(self.teams)]
        self._names += [(n, "internal service name", "one of our services") for n in _clean_names(self.services)]
        self._names.sort(key=lambda item: -len(item[0]))  # why: "checkout-db" before "checkout"

    def __call__(self, text: str) -> str:
        """Return the text with internal details replaced; what was taken out is added to `removed`."""
        if not text:
            return text
        text = self._sub(_CITE_GROUP, text, "evidence id", "")
        text = self._sub(ID_PATTERN, text, "evidence id", "")
        text = self._sub(_URL, text, "link", "an internal system")
        text = self._sub(_EMAIL, text, "e-mail address", "an engineer")
        text = self._sub(_IPV4, text, "IP address", "an internal system")
        text = self._sub(_HOST, text, "host name", "an internal system", keep=_not_a_host)
        text = self._sub(_VERSION, text, "version", "")
        text = self._sub(_COMMIT_NOTE, text, "commit", "")
        text = self._sub(_SHA, text, "commit", "a change")
        for name, reason, phrase in self._names:
            pattern = re.compile(r"(?<![\w-])" + re.escape(name) + r"(?![\w-])", re.I)
            text = self._sub(pattern, text, reason, phrase)
        return _tidy(text)

    def _sub(self, pattern: re.Pattern, text: str, reason: str, phrase: str, keep=None) -> str:
        def replace(match: re.Match) -> str:
            found = match.group(0)
            if keep is not None and keep(found):
                return found
            self.removed.append(Removal(text=found.strip(), reason=reason))
            return phrase

        return pattern.sub(replace, text)


def _clean_names(names: Iterable[str]) -> list[str]:
    out = []
    for name in names:
        name = (name or "").strip()
        if len(name) >= 3 and name.lower() not in out:  # why: two-letter names would eat ordinary words
            out.append(name.lower())
    return out


def _not_a_host(token: str) -> bool:
    last = token.rsplit(".", 1)[-1].split(":", 1)[0].lower()
    if last.isdigit():  # a number like 3.5 or a version: the version rule decides
        return True
    return last in _NOT_HOST_ENDINGS or token.lower() in ("e.g", "i.e")


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"\s+([.,;:!?])", r"\1", text)
    text = re.sub(r"\b(an internal system)(?:,? (?:and|or) an internal system)+", r"\1", text)
    text = re.sub(r"\b(a change)(?:,? (?:and|or) a change)+", r"\1", text)
    # why: a replacement that now opens a sentence gets its capital (only ours: "e.g. the" stays as written)
    text = re.sub(r"(^|[.!?]\s+)(an engineer|our team|one of our services|an internal system|a change)\b",
                  lambda m: m.group(1) + m.group(2)[0].upper() + m.group(2)[1:], text.strip())
    return text
