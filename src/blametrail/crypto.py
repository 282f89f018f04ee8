"""Secrets at rest: Fernet encryption keyed from BLAMETRAIL_SECRET_KEY (comma-separated keys rotate: first encrypts)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


def key_list(secret_key: str) -> list[str]:
    """Return the keys of BLAMETRAIL_SECRET_KEY, newest (the one that encrypts and signs) first."""
    keys = [k.strip() for k in secret_key.split(",") if k.strip()]
    if not keys:
        raise ValueError("an empty secret key cannot encrypt anything")
    return keys


def signing_keys(secret_key: str) -> list[str]:
    """Return the keys for itsdangerous (sessions, CSRF tokens): it signs with the last and accepts every one."""
    return key_list(secret_key)[::-1]


OPENED_MAX = 4096  # decrypted secrets a box remembers (webhook secrets, credentials); past it, it starts over


class SecretBox:
    """Encrypt and decrypt short secrets (webhook secrets, provider credentials)."""

    def __init__(self, secret_key: str) -> None:
        fernets = [Fernet(base64.urlsafe_b64encode(hashlib.sha256(k.encode()).digest())) for k in key_list(secret_key)]
        self._newest = fernets[0]
        self._fernet = MultiFernet(fernets)
        # why: every webhook delivery decrypts its webhook's secret (an HMAC and an AES block each time); a ciphertext
        # always opens to the same plaintext, and whoever can read this process's memory also holds the keys
        self._opened: dict[str, str] = {}

    def encrypt(self, plaintext: str) -> str:
        """Return the ciphertext of a secret (with the newest key)."""
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        """Return the plaintext, or raise ValueError if no configured key opens it."""
        opened = self._opened.get(ciphertext)
        if opened is not None:
            return opened
        try:
            opened = self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("stored secret cannot be decrypted with the configured BLAMETRAIL_SECRET_KEY") from exc
        if len(self._opened) >= OPENED_MAX:
            self._opened.clear()
        self._opened[ciphertext] = opened
        return opened

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt a secret with the newest key, or raise ValueError if no configured key opens it."""
        try:
            return self._fernet.rotate(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("stored secret cannot be decrypted with the configured BLAMETRAIL_SECRET_KEY") from exc

    def is_current(self, ciphertext: str) -> bool:
        """Tell whether the newest key alone opens this ciphertext (nothing to rotate)."""
        try:
            self._newest.decrypt(ciphertext.encode())
        except InvalidToken:
            return False
        return True


def new_secret(prefix: str = "whsec_") -> str:
    """Return a fresh random secret."""
    return prefix + secrets.token_urlsafe(32)


def same(a: str, b: str) -> bool:
    """Compare two secrets in constant time."""
    return hmac.compare_digest(a.encode(), b.encode())
