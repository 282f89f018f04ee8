"""The settings page documents every setting, and nothing that does not exist."""

import re
from pathlib import Path

from blametrail.settings import Settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "settings.md"


def test_every_setting_is_documented():
    documented = set(re.findall(r"`BLAMETRAIL_([A-Z_]+)`", DOC.read_text()))
    fields = {name.upper() for name in Settings.model_fields}
    assert fields - documented == set(), "undocumented settings"
    assert documented - fields == set(), "documented settings that do not exist"


def test_secret_key_required_outside_dev_mode():
    s = Settings(dev_mode=False, secret_key=None, _env_file=None)
    try:
        s.effective_secret_key
    except ValueError as exc:
        assert "BLAMETRAIL_SECRET_KEY" in str(exc)
    else:
        raise AssertionError("a missing secret key must be refused outside dev mode")
    assert Settings(dev_mode=False, secret_key="k" * 40).effective_secret_key == "k" * 40
