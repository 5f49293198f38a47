"""An admin ends everything one person holds on a role: tests/functional/test_revoke_person.py on the fakes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.usecases.conftest import (
    ALICE,
    BOB,
    CAROL,
    MEMBER,
    ROLE_ARN,
    ROLE_ID,
    VENDOR_TRUST,
    approve,
    caller,
    granted,
    request_access,
    task_token,
)
from trustgate.app import access, requests
from trustgate.core.errors import ConflictError, TrustGateError
from trustgate.core.models import RequestStatus
from trustgate.core.session_guard import guard_window
from trustgate_local.fakes import FakeDependencies

pytestmark = pytest.mark.unit


def test_an_admin_revokes_a_person_ending_the_grant_and_cancelling_the_extension(deps: FakeDependencies) -> None:
    grant = granted(deps)
    extension = request_access(deps, duration=timedelta(minutes=30))  # asked while covered: an extension
    assert (extension.extends, extension.covered_until) == (grant.id, grant.expires_at)
    deps.clock.advance(timedelta(minutes=10))

    revocation = requests.revoke_person(deps, caller(CAROL), ROLE_ARN, ALICE, "left the on-call rotation")

    assert (revocation.role_arn, revocation.person) == (ROLE_ARN, f"iam:{MEMBER}:alice")
    assert [(r.id, r.status) for r in revocation.ended] == [(grant.id, RequestStatus.REVOKED)]
    assert [(r.id, r.status) for r in revocation.cancelled] == [(extension.id, RequestStatus.CANCELLED)]
    assert revocation.was_until == grant.expires_at
    [ended] = revocation.ended
    assert ended.reason == "left the on-call rotation"
    assert ended.expires_at == deps.clock.now()  # ended at the revoke, not at its end
    # Both documents: the principal is out of the trust policy; the guard ends alice's sessions at the revoke.
    assert deps.roles.trust_policy(ROLE_ARN) == VENDOR_TRUST
    assert guard_window(deps.roles.session_guard(ROLE_ARN), f"{ROLE_ID}:alice")[1] == ended.expires_at
    assert deps.store.get_request(grant.id).status == RequestStatus.REVOKED
    assert deps.store.get_request(extension.id).status == RequestStatus.CANCELLED
    assert (task_token(extension.id), "cancelled") in deps.flow.resumed
    assert (grant.id, "expire") not in deps.schedules.schedules
    # The cancelled extension cannot be approved after the revoke.
    with pytest.raises(ConflictError) as refused:
        approve(deps, extension.id, BOB)
    assert refused.value.code == "already_decided"
    # Alice is told exactly what changed.
    [told] = [n for n in deps.notifier.sent if n.event == "request.revoked" and n.request.id == grant.id]
    assert told.recipient == ALICE
    assert "it was until" in told.text
    assert extension.id in told.text
    assert "left the on-call rotation" in told.text


def test_revoking_with_only_a_pending_request_cancels_it_and_had_no_end(deps: FakeDependencies) -> None:
    pending = request_access(deps)
    revocation = requests.revoke_person(deps, caller(CAROL), ROLE_ARN, ALICE, None)
    assert revocation.ended == []
    assert [(r.id, r.status) for r in revocation.cancelled] == [(pending.id, RequestStatus.CANCELLED)]
    assert revocation.was_until is None
    assert deps.roles.trust_policy(ROLE_ARN) == VENDOR_TRUST


@pytest.mark.parametrize("who", [BOB, ALICE], ids=["approver", "the-person-themselves"])
def test_only_an_admin_of_the_role_may_revoke_a_person(deps: FakeDependencies, who: str) -> None:
    grant = granted(deps)
    # The route asks `check_admin` before it revokes (api/roles.py `_admin_role`).
    with pytest.raises(TrustGateError) as refused:
        access.check_admin(deps, caller(who), ROLE_ARN)
    assert refused.value.status == 403
    access.check_admin(deps, caller(CAROL), ROLE_ARN)
    assert deps.store.get_request(grant.id).status == RequestStatus.ACTIVE


def test_revoking_someone_who_holds_nothing_is_404_and_says_so(deps: FakeDependencies) -> None:
    with pytest.raises(TrustGateError) as refused:
        requests.revoke_person(deps, caller(CAROL), ROLE_ARN, ALICE, None)
    assert refused.value.status == 404
    assert deps.roles.writes == []
