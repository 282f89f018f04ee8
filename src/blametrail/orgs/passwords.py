"""Password hashing with argon2id."""

from __future__ import annotations

from functools import lru_cache

from pwdlib import PasswordHash


@lru_cache(maxsize=1)
def _hasher() -> PasswordHash:
    return PasswordHash.recommended()


def hash_password(password: str) -> str:
    """Return an argon2id hash of the password."""
    return _hasher().hash(password)


def verify_password(password: str, hashed: str | None) -> bool:
    """Check a password against its hash (False when no password is set)."""
    if not hashed:
        _hasher().hash(password)  # why: same cost whether or not the user exists
        return False
    try:
        return _hasher().verify(password, hashed)
    except Exception:
        return False
