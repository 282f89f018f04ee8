"""Domain errors raised by services; web/errors.py maps them once to HTTP."""

from __future__ import annotations


class DomainError(Exception):
    """Base of errors a user can act on."""

    slug = "error"
    status = 400
    title = "Error"

    def __init__(self, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class Unauthenticated(DomainError):
    slug, status, title = "unauthenticated", 401, "Authentication required"


class Forbidden(DomainError):
    slug, status, title = "forbidden", 403, "Forbidden"


class NotFound(DomainError):
    slug, status, title = "not-found", 404, "Not found"


class ValidationFailed(DomainError):
    slug, status, title = "validation", 422, "Invalid input"

    def __init__(self, detail: str, errors: list[dict] | None = None) -> None:
        super().__init__(detail, errors=errors or [])


class AIDisabled(DomainError):
    slug, status, title = "ai-disabled", 403, "AI features are disabled"


class PlanNotEligible(DomainError):
    slug, status, title = "plan-not-eligible", 403, "Plan has no postmortems"


class QuotaExceeded(DomainError):
    slug, status, title = "quota-exceeded", 402, "Monthly postmortem quota used up"


class RateLimited(DomainError):
    slug, status, title = "rate-limited", 429, "Too soon"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.retry_after = retry_after


class InvalidState(DomainError):
    slug, status, title = "invalid-state", 409, "Not allowed in the current state"


class VersionConflict(DomainError):
    slug, status, title = "version-conflict", 409, "Edited by someone else"


class Conflict(DomainError):
    slug, status, title = "conflict", 409, "Already exists"


class SecretUndecryptable(DomainError):
    """A stored secret no configured BLAMETRAIL_SECRET_KEY opens (a key was changed or dropped): for the operator."""

    slug, status, title = "secret-undecryptable", 503, "Stored secret cannot be decrypted"


class UpstreamError(Exception):
    """An outside system (LLM provider, connector) failed; the message is for people."""


class UpstreamFailed(DomainError):
    """A vendor refused or failed a call made for this request (the detail says what it answered, in plain words)."""

    slug, status, title = "upstream-failed", 502, "The other service failed"
