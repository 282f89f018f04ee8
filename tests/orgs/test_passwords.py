"""Passwords are hashed with argon2id at the recommended cost (the suite runs a cheaper one, see tests/conftest.py)."""

from blametrail.orgs import passwords


def test_production_hashes_are_argon2id_at_64_mib_and_3_passes():
    production = passwords._hasher.production()
    hashed = production.hash("correct horse battery staple")
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert production.verify("correct horse battery staple", hashed)
    assert not production.verify("Correct horse battery staple", hashed)


def test_a_cheaper_hash_still_verifies_with_its_own_parameters():
    hashed = passwords.hash_password("s3cret-enough")
    assert hashed.startswith("$argon2id$")
    assert passwords.verify_password("s3cret-enough", hashed)
    assert not passwords.verify_password("s3cret-enoug", hashed)
    assert not passwords.verify_password("anything", None)
