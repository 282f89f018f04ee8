"""The pure role table matches PRODUCT.md row by row."""

import pytest

from blametrail.errors import Forbidden
from blametrail.orgs.permissions import Action, can, require

TABLE = {  # PRODUCT.md "Roles": owner, admin, member, viewer
    Action.READ: (1, 1, 1, 1),
    Action.WRITE_INCIDENTS: (1, 1, 1, 0),
    Action.POSTMORTEM_WRITE: (1, 1, 1, 0),
    Action.PUBLISH: (1, 1, 0, 0),
    Action.MANAGE: (1, 1, 0, 0),
    Action.ORG_SETTINGS: (1, 0, 0, 0),
}


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("index,role", list(enumerate(["owner", "admin", "member", "viewer"])))
def test_role_table(action, index, role):
    assert can(role, action) is bool(TABLE[action][index])


def test_require_names_what_is_needed():
    with pytest.raises(Forbidden) as exc:
        require("member", Action.PUBLISH)
    assert "owner, admin" in exc.value.detail and "member" in exc.value.detail


def test_unknown_role_can_do_nothing():
    assert not any(can("guest", a) for a in Action)
