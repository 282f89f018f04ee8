"""What every vendor integration declares: its settings (which are secret), its inbound endpoints, and its Test.

A vendor module (vendors/slack.py, …) builds one `Vendor` and `REGISTRY` in vendors/registry.py lists them; the
service, API, pages and route suites derive everything from the registry, as connectors do from theirs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Setting:
    """One setting as the API names it and the settings page asks for it."""

    name: str
    label: str
    secret: bool = False  # write-only: stored sealed, never returned, kept when a later PUT leaves it out
    required: bool = True
    url: bool = False  # checked by the outbound guard (no credentials in it, an allowed host)
    max_length: int = 500
    hint: str = ""
    multiline: bool = False  # a text area on the settings page (one entry per line)
    check: Callable[[str], str | None] | None = None  # returns what is wrong with a value, or None


@dataclass(frozen=True)
class TestResult:
    """What the Test button shows: whether the vendor accepted us, how long it took, and plain words."""

    ok: bool
    latency_ms: int
    detail: str


@dataclass(frozen=True)
class Vendor:
    kind: str
    label: str
    settings: tuple[Setting, ...]
    inbound: tuple[str, ...] = ()  # names of the URLs the vendor calls (Slack: events, commands; others: webhook)
    default_base_url: str = ""
    # test(config, policy, timeout) -> TestResult; config is the stored settings with the secrets opened
    test: Callable[..., TestResult] | None = None
    docs: str = ""  # anchor in docs/integrations.md
    extra: dict = field(default_factory=dict)

    def setting(self, name: str) -> Setting | None:
        return next((s for s in self.settings if s.name == name), None)

    @property
    def secret_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.settings if s.secret)


BASE_URL = Setting("base_url", "API base URL", required=False, url=True, max_length=2000,
                   hint="Only for self-hosted editions or a test server; leave empty for the vendor's cloud.")


class Stopwatch:
    """Milliseconds since it was made (a Test's latency)."""

    def __init__(self) -> None:
        self._start = time.perf_counter()

    @property
    def ms(self) -> int:
        return int((time.perf_counter() - self._start) * 1000)
