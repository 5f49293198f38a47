"""A managed role in another account is edited through the editor role deployed there."""

from __future__ import annotations

import json

import pytest

from tests.support.aws import VENDOR_TRUST, World

pytestmark = pytest.mark.functional


def test_the_editor_role_is_assumed_once_and_reused_for_the_roles_account(world: World) -> None:
    iam = world.session.client("iam")
    iam.create_role(RoleName="TrustGateEditor", AssumeRolePolicyDocument=json.dumps(VENDOR_TRUST))
    settings = world.deps.settings.model_copy(update={"editor_role_name": "TrustGateEditor"})
    deps = type(world.deps)(settings, world.session, world.clock, sleep=lambda _: None)
    assumed: list[str] = []
    deps.session.events.register(
        "provide-client-params.sts.AssumeRole", lambda params, **_: assumed.append(params["RoleArn"])
    )
    roles = deps.roles
    arn = "arn:aws:iam::123456789012:role/PumpCustomerAccess"
    assert roles.trust_policy(arn) == VENDOR_TRUST
    assert roles.trust_policy(arn) == VENDOR_TRUST
    assert assumed == ["arn:aws:iam::123456789012:role/TrustGateEditor"]
