"""Secrets at rest: Fernet encryption keyed from BLAMETRAIL_SECRET_KEY (comma-separated keys rotate: first encrypts)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretBox:
    """Encrypt and decrypt short secrets (webhook secrets, provider credentials)."""

    def __init__(self, secret_key: str) -> None:
        keys = [k.strip() for k in secret_key.split(",") if k.strip()]
        if not keys:
            raise ValueError("an empty secret key cannot encrypt anything")
        self._fernet = MultiFernet([Fernet(base64.urlsafe_b64encode(hashlib.sha256(k.encode()).digest())) for k in keys])

    def encrypt(self, plaintext: str) -> str:
        """Return the ciphertext of a secret (with the newest key)."""
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        """Return the plaintext, or raise ValueError if no configured key opens it."""
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("stored secret cannot be decrypted with the configured BLAMETRAIL_SECRET_KEY") from exc

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt a secret with the newest key."""
        return self._fernet.rotate(ciphertext.encode()).decode()


def new_secret(prefix: str = "whsec_") -> str:
    """Return a fresh random secret."""
    return prefix + secrets.token_urlsafe(32)


def same(a: str, b: str) -> bool:
    """Compare two secrets in constant time."""
    return hmac.compare_digest(a.encode(), b.encode())
