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


def test_a_box_remembers_what_it_opened_and_still_refuses_what_it_cannot(monkeypatch):
    import blametrail.crypto as crypto

    box = SecretBox("k1")
    ciphertexts = [box.encrypt(f"s{i}") for i in range(5)]
    assert [box.decrypt(c) for c in ciphertexts] == [f"s{i}" for i in range(5)]
    monkeypatch.setattr(box, "_fernet", None)  # a second decrypt must not need Fernet at all
    assert [box.decrypt(c) for c in ciphertexts] == [f"s{i}" for i in range(5)]
    with pytest.raises(ValueError, match="BLAMETRAIL_SECRET_KEY"):
        SecretBox("k1").decrypt(SecretBox("k2").encrypt("x"))
    monkeypatch.setattr(crypto, "OPENED_MAX", 3)
    small = SecretBox("k1")
    for c in ciphertexts:
        small.decrypt(c)
    assert len(small._opened) <= 3  # bounded: it starts over instead of growing
