"""The CLI's data folder does not depend on the working directory, and commands that need an existing database refuse
to create an empty one; the demo's postmortems do not use the demo organization's quota."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from blametrail import cli
from blametrail.settings import Settings, default_data_dir


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No BLAMETRAIL_ variable, a private HOME, and no XDG_DATA_HOME."""
    import os

    for name in list(os.environ):
        if name.startswith("BLAMETRAIL_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def test_default_data_dir_is_absolute_and_the_same_from_any_folder(clean_env, monkeypatch, tmp_path):
    expected = clean_env / ".local" / "share" / "blametrail"
    for folder in (tmp_path, tmp_path / "home"):
        monkeypatch.chdir(folder)
        assert Settings(_env_file=None).data_dir == expected
    assert Settings(_env_file=None).resolved_database_url == f"sqlite:///{expected / 'blametrail.db'}"


def test_xdg_data_home_and_blametrail_data_dir_override_the_default(clean_env, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_data_dir() == tmp_path / "xdg" / "blametrail"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")  # the XDG spec: a relative value is invalid
    assert default_data_dir() == clean_env / ".local" / "share" / "blametrail"
    monkeypatch.setenv("BLAMETRAIL_DATA_DIR", str(tmp_path / "mine"))
    assert Settings(_env_file=None).data_dir == tmp_path / "mine"


@pytest.mark.parametrize("argv", [
    ["token", "create", "sre@acme.test", "--org", "acme"],
    ["user", "create", "sre@acme.test", "--org", "acme", "--role", "owner"],
    ["org", "plan", "acme", "pro"],
    ["keys", "rotate"],
])
def test_commands_needing_a_database_refuse_to_create_an_empty_one(clean_env, capsys, argv):
    database = clean_env / ".local" / "share" / "blametrail" / "blametrail.db"
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"no BlameTrail database at {database}" in err and "BLAMETRAIL_DATA_DIR" in err
    assert not database.exists()


def test_db_upgrade_creates_it_then_token_create_from_another_folder_finds_it(clean_env, monkeypatch, tmp_path,
                                                                             capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["db", "upgrade"]) == 0
    assert cli.main(["org", "create", "acme", "--plan", "pro"]) == 0
    assert cli.main(["user", "create", "sre@acme.test", "--org", "acme", "--role", "owner"]) == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert cli.main(["token", "create", "sre@acme.test", "--org", "acme"]) == 0
    assert json.loads(capsys.readouterr().out)["token"].startswith("bt_")
    assert not (elsewhere / ".blametrail").exists()


def test_an_explicit_sqlite_url_to_a_missing_file_is_refused_too(clean_env, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("BLAMETRAIL_DATABASE_URL", f"sqlite:///{tmp_path / 'nothing.db'}")
    assert cli.main(["token", "create", "a@b.test", "--org", "x"]) == 2
    assert "no BlameTrail database at" in capsys.readouterr().err
    assert not Path(tmp_path / "nothing.db").exists()


def test_demo_postmortems_do_not_count_against_the_quota(clean_env, monkeypatch, tmp_path, capsys):
    from blametrail import db
    from blametrail.demo import DEMO_SLUG
    from blametrail.orgs import service as orgs
    from blametrail.postmortems.models import Postmortem
    from blametrail.runtime import build_runtime

    monkeypatch.setenv("BLAMETRAIL_DATA_DIR", str(tmp_path / "data"))
    assert cli.main(["demo"]) == 0
    rt = build_runtime(Settings(_env_file=None))
    try:
        with db.transaction(rt.factory) as session:
            org = orgs.get_org_by_slug(session=session, slug=DEMO_SLUG)
            drafted = session.query(Postmortem).filter(Postmortem.org_id == org.id).count()
            assert drafted == 4
            assert orgs.usage(session=session, org=org, now=rt.clock.now())["used"] == 0
    finally:
        rt.close()
    assert cli.main(["demo"]) == 0  # idempotent: seeding again changes nothing
