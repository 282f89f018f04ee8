"""Settings: the one reader of the environment (prefix BLAMETRAIL_)."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from blametrail.netguard import parse_allow

DEV_SECRET = "blametrail-dev-secret-do-not-use-in-production"


def default_data_dir() -> Path:
    """Return the data folder used when BLAMETRAIL_DATA_DIR is unset: $XDG_DATA_HOME/blametrail, else
    ~/.local/share/blametrail."""
    # why: a folder relative to the working directory made `token create` run elsewhere open a new, empty database
    xdg = os.environ.get("XDG_DATA_HOME", "").strip()
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "blametrail"


class Settings(BaseSettings):
    """Every BlameTrail setting; documented in docs/settings.md (a test keeps the two in step)."""

    model_config = SettingsConfigDict(env_prefix="BLAMETRAIL_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir, description="Where the embedded defaults live (SQLite database, queue file); default $XDG_DATA_HOME/blametrail, else ~/.local/share/blametrail, whatever folder a command runs in. A relative value is taken from the working directory.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default sqlite:///<data_dir>/blametrail.db. Production: postgresql+psycopg://user:pass@host/db.")
    queue_url: str | None = Field(None, description="Task queue; default embedded SQLite file <data_dir>/queue.db. redis://host:6379/0 to scale out across hosts.")
    secret_key: str | None = Field(None, description="Signs sessions and encrypts stored credentials. Required unless dev mode is on.")
    dev_mode: bool = Field(True, description="Development mode: allows the built-in development secret key. Set false in production.")
    ai_engine: Literal["builtin", "openai", "anthropic"] = Field("builtin", description="Drafting engine: builtin (offline, deterministic), openai or anthropic.")
    ai_model: str | None = Field(None, description="Model name for the openai/anthropic engines.")
    openai_base_url: str | None = Field(None, description="Base URL of an OpenAI-compatible endpoint (default: OpenAI's own API). The SDK's unprefixed OPENAI_BASE_URL is never read.")
    openai_api_key: str | None = Field(None, description="API key for the OpenAI-compatible endpoint. The SDK's unprefixed OPENAI_API_KEY is never read.")
    anthropic_base_url: str | None = Field(None, description="Base URL for the Anthropic API (default: Anthropic's own). The SDK's unprefixed ANTHROPIC_BASE_URL is never read.")
    anthropic_api_key: str | None = Field(None, description="API key for Anthropic. The SDK's unprefixed ANTHROPIC_API_KEY is never read.")
    openai_api_version: str | None = Field(None, description="Azure OpenAI API version; when set, BLAMETRAIL_OPENAI_BASE_URL is the Azure endpoint (https://<resource>.openai.azure.com).")
    ai_output_mode: Literal["tool", "native", "prompted", "json_object"] | None = Field(None, description="How the model returns structured output: tool (function calling), native (JSON schema response format), prompted (schema in the prompt; for servers that reject json_schema) or json_object (prompted, plus a json_object response format carrying the schema, which llama.cpp-style servers enforce with a grammar; OpenAI-compatible servers only). Default: the provider's (tool).")
    ai_timeout_seconds: float = Field(60.0, gt=0, le=900, description="Timeout of one request to the LLM provider.")
    ai_max_retries: int = Field(3, ge=0, le=10, description="Retries (exponential backoff, honouring Retry-After) when the LLM provider answers 429 or 5xx.")
    ai_retry_max_wait_seconds: float = Field(120.0, ge=0, le=3600, description="Most seconds one generation spends waiting between LLM retries; a longer Retry-After ends the attempt.")
    ai_context_tokens: int = Field(24_000, ge=1_000, le=2_000_000, description="Token budget of the prompt sent to the LLM (evidence is cut to fit, in a documented order); bigger prompts are refused.")
    ai_max_output_tokens: int = Field(4_096, ge=256, le=200_000, description="Most tokens the LLM may write per request (the answer and its one repair attempt are capped at twice this).")
    ai_deadline_seconds: float = Field(55.0, gt=0, le=3600, description="The deadline for a whole model draft: every request, the repair attempt, the retries and the waits between them. Past it the built-in draft is stored with the reason; raise it for a model on a CPU (docs/models.md).")
    ai_max_tokens_param: Literal["max_tokens", "max_completion_tokens"] | None = Field(None, description="The request field that carries the output cap for the openai engine. Default: max_completion_tokens for OpenAI's own API (and Azure), max_tokens for any other OpenAI-compatible server (llama.cpp, vLLM, Ollama ignore the other and write until their context is full).")
    ai_instructions_in_user_message: bool = Field(False, description="Send the instructions at the top of the user message instead of as a system message, for chat formats without a system role (llama-cpp-python's gemma format silently drops system messages).")
    embedded_workers: int = Field(2, ge=0, le=64, description="Queue consumer threads that `serve` runs in-process (0 = none; run `blametrail worker`).")
    worker_threads: int = Field(2, ge=1, le=64, description="Consumer threads per `blametrail worker` process.")
    regenerate_interval_seconds: int = Field(60, ge=0, description="Minimum seconds between two generations of one postmortem.")
    lookback_minutes: int = Field(120, ge=0, le=10_080, description="How far before the incident start deploys are considered as suspects.")
    generation_heartbeat_seconds: float = Field(10.0, gt=0, le=300, description="How often a worker records that a generation it runs is still alive.")
    stale_generation_seconds: int = Field(60, ge=2, description="A generation whose worker sent no heartbeat for this long is considered dead and re-queued (keep it several times BLAMETRAIL_GENERATION_HEARTBEAT_SECONDS).")
    stale_queued_seconds: int = Field(60, ge=5, description="A postmortem queued longer than this without a worker picking it up is enqueued again.")
    sweep_interval_seconds: float = Field(15.0, gt=0, description="How often serve/worker look for stuck postmortems and purge expired Idempotency-Keys, login throttles and invitations.")
    session_max_age_seconds: int = Field(14 * 24 * 3600, ge=60, description="Lifetime of a login session.")
    invitation_ttl_hours: int = Field(168, ge=1, le=2160, description="How long an invitation link stays valid (default 7 days); an admin can renew it by inviting the same email again.")
    cookie_secure: bool = Field(False, description="Mark session and CSRF cookies Secure (set true behind HTTPS).")
    sqlite_synchronous: Literal["NORMAL", "FULL"] = Field("FULL", description="SQLite synchronous pragma; FULL survives power loss without losing the last commits.")
    log_level: str = Field("INFO", description="Python log level.")
    public_url: str = Field("http://127.0.0.1:8000", description="The URL people and senders reach BlameTrail at, for webhook URLs and invitation links; when unset, the address each request reached is used (scheme through BLAMETRAIL_TRUSTED_PROXIES). Set it behind a proxy or when senders reach another address.")
    monitor_scheduler: bool = Field(True, description="Run the monitor scheduler inside `serve` (turn off when dedicated `blametrail scheduler` processes run it).")
    monitor_concurrency: int = Field(50, ge=1, le=1000, description="Monitor checks that may run at the same time per scheduler process.")
    monitor_tick_seconds: float = Field(1.0, gt=0, le=60, description="How often the scheduler looks for due monitor checks (sooner while all its check slots are busy: as soon as half are free).")
    check_retention: int = Field(1000, ge=10, description="Check results kept per monitor (older ones are deleted).")
    webhook_max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest webhook body accepted (bigger ones get 413 and store nothing).")
    connector_timeout_seconds: float = Field(10.0, gt=0, le=300, description="Timeout of one request to an observability backend (Prometheus, Loki, Datadog, CloudWatch); a connection's options may override it.")
    vendor_timeout_seconds: float = Field(10.0, gt=0, le=120, description="Timeout of one request to a vendor integration (Slack, PagerDuty, Opsgenie, Jira, Linear, GitHub, Confluence, Notion).")
    connector_max_series: int = Field(50, ge=1, le=10_000, description="Series kept per metric signal and service (the ones with the highest peak).")
    connector_max_points: int = Field(1000, ge=10, le=11_000, description="Points per series; the query step is coarsened to stay under it.")
    connector_max_log_lines: int = Field(5000, ge=1, le=100_000, description="Log lines fetched per log signal and service.")
    outbound_allow: str = Field("", description="Comma-separated addresses, CIDR ranges and host names that monitors, connections and the AI endpoint may reach although the SSRF guard would refuse them (link-local, cloud metadata, or private ranges when BLAMETRAIL_OUTBOUND_BLOCK_PRIVATE is on).")
    outbound_block_private: bool = Field(False, description="Also refuse outbound requests to loopback, private (RFC 1918), unique local IPv6 and CGNAT addresses; for shared installations where org admins must not reach the internal network.")
    idempotency_ttl_hours: int = Field(24, ge=1, le=720, description="How long the API remembers an Idempotency-Key: a retry with the same key within this time replays the first response instead of acting again.")
    login_max_failures: int = Field(5, ge=1, le=1000, description="Failed logins per account (email, known or not) within the window before logins to it are refused for the lockout time.")
    login_ip_max_failures: int = Field(30, ge=1, le=100_000, description="Failed logins from one client address (an IPv6 address counts as its /64) within the window before logins from it are refused for the lockout time.")
    login_window_seconds: int = Field(900, ge=1, le=604_800, description="The sliding window in which failed logins are counted.")
    login_lockout_seconds: int = Field(900, ge=1, le=604_800, description="How long logins stay refused (429 with Retry-After, the password is not checked) once a failed-login limit is reached.")
    trusted_proxies: str = Field("", description="Comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For header names the client address (empty: the socket peer is the client).")
    # --- the live incident summary (issue 13, build 5) ---
    summary_min_interval_seconds: int = Field(30, ge=0, le=3600, description="Minimum seconds between two rebuilds of one incident's live summary: evidence arriving sooner (an alert storm) is gathered into one rebuild when the interval ends (0: rebuild at once).")
    summary_observation_ttl_seconds: int = Field(120, ge=0, le=86_400, description="How long the metrics and logs fetched for an incident's live summary are reused before the connectors are asked again (0: fetch for every rebuild).")

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: str) -> str:
        for item in filter(None, (p.strip() for p in value.split(","))):
            ipaddress.ip_network(item, strict=False)  # why: a typo must stop start-up, not silently trust nobody
        return value

    @field_validator("outbound_allow")
    @classmethod
    def _check_outbound_allow(cls, value: str) -> str:
        if value.strip():
            parse_allow(value)  # why: a typo must stop start-up, not silently allow nothing
        return value

    @property
    def resolved_database_url(self) -> str:
        """Return the database URL, defaulting to SQLite in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'blametrail.db').resolve()}"

    @property
    def resolved_queue_url(self) -> str:
        """Return the queue URL, defaulting to an embedded SQLite file in the data directory."""
        if self.queue_url:
            return self.queue_url
        return f"sqlite:///{(self.data_dir / 'queue.db').resolve()}"

    @property
    def effective_secret_key(self) -> str:
        """Return the secret key, refusing the development default outside dev mode."""
        if self.secret_key:
            return self.secret_key
        if self.dev_mode:
            return DEV_SECRET
        raise ValueError("BLAMETRAIL_SECRET_KEY is required when BLAMETRAIL_DEV_MODE is false")
