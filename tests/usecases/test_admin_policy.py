"""Admins tighten a role within the ceiling: tests/functional/test_admin_policy.py on the fakes."""

from __future__ import annotations

import pytest

from tests.usecases.conftest import ALICE, BOB, CAROL, DAVE, MANAGEMENT, ROLE_ARN, VENDOR_TRUST, caller, granted
from trustgate.app import roles
from trustgate.core.errors import TrustGateError
from trustgate.core.models import RequestStatus, RolePolicy
from trustgate.core.trust_policy import NOBODY, grant_expiry_in
from trustgate_local.fakes import FakeDependencies

pytestmark = pytest.mark.unit

LOCKED_DOWN = {
    "mode": "none",
    "adopt_statements": ["PumpOrganizationAccess"],
    "require_mfa": True,
    "approvers": [BOB, DAVE],
    "required_approvals": 2,
}


def change(deps: FakeDependencies, policy: dict[str, object], *, dry_run: bool = False) -> roles.PolicyChange:
    return roles.change_policy(deps, caller(CAROL), ROLE_ARN, RolePolicy.model_validate(policy), dry_run=dry_run)


def test_tightening_revokes_grants_that_no_longer_conform_and_says_which(deps: FakeDependencies) -> None:
    active = granted(deps).id
    result = change(deps, {"requester_accounts": [MANAGEMENT]})
    assert result.applied
    assert [r.id for r in result.revoked] == [active]
    assert deps.store.get_request(active).status == RequestStatus.REVOKED
    assert "requester_accounts" in (deps.store.get_request(active).reason or "")
    assert grant_expiry_in(deps.roles.trust_policy(ROLE_ARN), ALICE) is None
    assert deps.store.get_role_policy(ROLE_ARN)[1] == 1


def test_a_dry_run_shows_the_effect_and_changes_nothing(deps: FakeDependencies) -> None:
    active = granted(deps).id
    writes = list(deps.roles.writes)
    result = change(deps, {**LOCKED_DOWN, "requester_accounts": [MANAGEMENT]}, dry_run=True)
    assert not result.applied
    assert result.before == deps.roles.trust_policy(ROLE_ARN)
    assert [r.id for r in result.revoked] == [active]
    assert deps.store.get_request(active).status == RequestStatus.ACTIVE
    assert deps.roles.writes == writes
    assert deps.store.get_role_policy(ROLE_ARN)[1] == 0


def test_locking_down_leaves_nobody_with_standing_access(deps: FakeDependencies) -> None:
    assert deps.roles.trust_policy(ROLE_ARN) == VENDOR_TRUST
    result = change(deps, LOCKED_DOWN)
    assert result.applied
    assert deps.roles.trust_policy(ROLE_ARN) == {"Version": "2012-10-17", "Statement": [NOBODY]}
    assert result.after == deps.roles.trust_policy(ROLE_ARN)


def test_a_looser_than_ceiling_policy_is_refused_naming_the_ceiling(deps: FakeDependencies) -> None:
    with pytest.raises(TrustGateError) as refused:
        change(deps, {"max_duration": "PT24H"})
    assert (refused.value.status, refused.value.code) == (422, "exceeds_ceiling")
    assert "PT12H" in refused.value.message
    assert deps.store.get_role_policy(ROLE_ARN)[1] == 0
    assert deps.roles.writes == []
