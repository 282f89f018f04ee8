"""Secrets at rest are encrypted, and key rotation keeps old ciphertexts readable."""

import pytest

from blametrail.crypto import SecretBox, same


def test_round_trip_and_ciphertext_hides_secret():
    box = SecretBox("k1")
    c = box.encrypt("whsec_abc")
    assert "whsec_abc" not in c and box.decrypt(c) == "whsec_abc"


def test_rotation():
    old = SecretBox("old-key").encrypt("s3cret")
    rotated_box = SecretBox("new-key,old-key")
    assert rotated_box.decrypt(old) == "s3cret"
    fresh = rotated_box.rotate(old)
    assert SecretBox("new-key").decrypt(fresh) == "s3cret"
    with pytest.raises(ValueError, match="BLAMETRAIL_SECRET_KEY"):
        SecretBox("other").decrypt(old)


def test_same():
    assert same("a", "a") and not same("a", "b")
