"""What docs/deploy.md promises about hands on the trust policy: the vendor's tooling rewriting its role
(section 9) and a break-glass statement added while TrustGate was down (section 8) (issue 12, section 1)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.aws import CAROL, ROLE_ARN, ROLE_NAME, VENDOR_TRUST, World
from tests.support.flows import granted
from trustgate.core.trust_policy import NOBODY, grant_expiry_in, statements_of

pytestmark = pytest.mark.functional

BREAK_GLASS = {
    "Sid": "BreakGlassDana20261130",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::222222222222:user/dana"},
    "Action": "sts:AssumeRole",
    "Condition": {
        "DateLessThan": {"aws:CurrentTime": "2026-11-30T18:00:00Z"},
        "StringEquals": {"sts:RoleSessionName": "breakglass-dana"},
    },
}


def just_in_time(world: World) -> None:
    status, answer = world.api(
        "PUT", f"/roles/{ROLE_NAME}/policy", CAROL, {"mode": "none", "adopt_statements": ["PumpOrganizationAccess"]}
    )
    assert status == 200, answer


def write_by_hand(world: World, document: dict[str, Any]) -> None:
    """As the vendor's CloudFormation or an administrator of the role's account would (not TrustGate)."""
    world.session.client("iam").update_assume_role_policy(RoleName=ROLE_NAME, PolicyDocument=json.dumps(document))


def drift_removed(world: World) -> list[list[dict[str, Any]]]:
    return [e.detail["removed"] for e in world.deps.store.audit_events(ROLE_ARN).items if e.action == "drift"]


def test_the_vendor_rewriting_a_just_in_time_role_is_undone_by_the_next_reconcile(world: World) -> None:
    just_in_time(world)
    grant = granted(world)
    rendered = world.trust_policy()
    assert grant_expiry_in(rendered, grant["principal_arn"]) is not None

    write_by_hand(world, VENDOR_TRUST)  # the vendor's template: its open statement back, TrustGate's gone
    assert grant_expiry_in(world.trust_policy(), grant["principal_arn"]) is None
    world.invoke("ReconcileFunction", {})

    assert world.trust_policy() == rendered  # the grant back, the open statement gone
    assert drift_removed(world) == [VENDOR_TRUST["Statement"]]


def test_the_vendor_rewriting_an_unmanaged_role_keeps_its_statements_and_gets_the_grants_back(world: World) -> None:
    grant = granted(world)
    changed = {**VENDOR_TRUST, "Statement": [{**VENDOR_TRUST["Statement"][0], "Sid": "PumpOrganizationAccessV2"}]}

    write_by_hand(world, changed)
    world.invoke("ReconcileFunction", {})

    after = world.trust_policy()
    assert statements_of(after)[0] == changed["Statement"][0]  # the vendor's new statement, as written
    assert grant_expiry_in(after, grant["principal_arn"]) is not None
    assert drift_removed(world) == []


def test_a_break_glass_statement_is_removed_as_drift_once_trustgate_runs_again(world: World) -> None:
    just_in_time(world)
    assert statements_of(world.trust_policy()) == [NOBODY]

    # The guide's procedure: TrustGateNoStandingAccess (a Deny to everyone) out, the break-glass statement in.
    write_by_hand(world, {"Version": "2012-10-17", "Statement": [BREAK_GLASS]})
    world.invoke("ReconcileFunction", {})

    assert statements_of(world.trust_policy()) == [NOBODY]
    assert drift_removed(world) == [[BREAK_GLASS]]
