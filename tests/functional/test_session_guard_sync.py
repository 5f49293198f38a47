"""The session guard on the one sync path: written before the trust policy, verified, audited, repaired, pruned."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from tests.support.aws import ALICE, ROLE_ARN, ROLE_NAME, VENDOR_TRUST, World
from tests.support.flows import granted
from trustgate.adapters.iam import RoleEditor
from trustgate.core.session_guard import GUARD_POLICY_NAME, guard_window

pytestmark = pytest.mark.functional


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The order in which sync writes the two documents (and deletes the guard)."""
    order: list[str] = []
    put_guard, put_trust = RoleEditor.write_session_guard, RoleEditor.write_trust_policy

    def guard(self: RoleEditor, role_arn: str, document: dict[str, Any] | None) -> None:
        order.append("guard" if document is not None else "guard deleted")
        put_guard(self, role_arn, document)

    def trust(self: RoleEditor, role_arn: str, document: dict[str, Any]) -> None:
        order.append("trust")
        put_trust(self, role_arn, document)

    monkeypatch.setattr(RoleEditor, "write_session_guard", guard)
    monkeypatch.setattr(RoleEditor, "write_trust_policy", trust)
    return order


def test_a_grant_writes_the_guard_before_the_trust_policy(world: World, writes: list[str]) -> None:
    granted(world)
    assert writes == ["guard", "trust"]
    status, _body = world.api("POST", "/requests", ALICE, None)  # a bad body changes nothing
    assert status == 400
    assert writes == ["guard", "trust"]


def test_revoke_moves_the_guard_end_to_now_before_the_trust_policy_loses_the_person(
    world: World, writes: list[str]
) -> None:
    request = granted(world)
    writes.clear()
    world.api("POST", f"/requests/{request['id']}/revoke", ALICE)
    assert writes == ["guard", "trust"]
    revoked_at = world.deps.store.get_request(request["id"]).expires_at
    assert guard_window(world.session_guard(), f"{world.role_id()}:alice") == (None, revoked_at)


def test_the_reconciler_restores_a_deleted_or_edited_guard_and_audits_it(world: World) -> None:
    granted(world)
    rendered = world.session_guard()
    iam = world.session.client("iam")
    iam.delete_role_policy(RoleName=ROLE_NAME, PolicyName=GUARD_POLICY_NAME)
    world.invoke("ReconcileFunction", {})
    assert world.session_guard() == rendered
    loosened = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:Nothing", "Resource": "*"}]}
    iam.put_role_policy(RoleName=ROLE_NAME, PolicyName=GUARD_POLICY_NAME, PolicyDocument=json.dumps(loosened))
    world.invoke("ReconcileFunction", {})
    assert world.session_guard() == rendered
    repairs = [e for e in world.deps.store.audit_events(ROLE_ARN).items if e.action == "guard.synced"]
    assert [(e.before, e.after, e.detail["reason"]) for e in repairs[:2]] == [
        (loosened, rendered, "reconcile"),
        (None, rendered, "reconcile"),
    ]


def test_the_guard_outlives_the_grant_by_the_longest_session_even_after_max_session_duration_is_lowered(
    world: World,
) -> None:
    iam = world.session.client("iam")
    iam.update_role(RoleName=ROLE_NAME, MaxSessionDuration=43200)
    request = granted(world)
    world.advance(timedelta(hours=1, minutes=1))
    world.fire_schedule(request["id"])
    assert world.trust_policy() == VENDOR_TRUST
    ends = world.deps.store.get_request(request["id"]).expires_at
    # A 12-hour session issued just before the end lives on though the role now allows only 1 hour.
    iam.update_role(RoleName=ROLE_NAME, MaxSessionDuration=3600)
    world.advance(timedelta(hours=11, minutes=55))
    world.invoke("ReconcileFunction", {})
    assert guard_window(world.session_guard(), f"{world.role_id()}:alice")[1] == ends
    world.advance(timedelta(minutes=10))
    world.invoke("ReconcileFunction", {})
    assert world.session_guard() is None


def test_the_guard_leaves_other_inline_policies_alone(world: World) -> None:
    iam = world.session.client("iam")
    vendor = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}
    iam.put_role_policy(RoleName=ROLE_NAME, PolicyName="VendorReadOnly", PolicyDocument=json.dumps(vendor))
    request = granted(world)
    world.api("POST", f"/requests/{request['id']}/revoke", ALICE)
    names = iam.list_role_policies(RoleName=ROLE_NAME)["PolicyNames"]
    assert sorted(names) == [GUARD_POLICY_NAME, "VendorReadOnly"]
    assert iam.get_role_policy(RoleName=ROLE_NAME, PolicyName="VendorReadOnly")["PolicyDocument"] == vendor


def test_a_revoke_with_a_full_guard_still_takes_the_person_out_and_says_what_is_left(world: World) -> None:
    request = granted(world)
    iam = world.session.client("iam")
    filler: dict[str, Any] = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": ""}],
    }
    filler["Statement"][0]["Resource"] = "arn:aws:s3:::" + "b" * 10050 + "/*"
    iam.put_role_policy(RoleName=ROLE_NAME, PolicyName="VendorBigPolicy", PolicyDocument=json.dumps(filler))
    status, body = world.api("POST", f"/requests/{request['id']}/revoke", ALICE)
    assert (status, body["error"]["code"]) == (409, "session_guard_full")
    assert "nobody who lost access can switch in again" in body["error"]["message"]
    assert world.trust_policy() == VENDOR_TRUST  # the removal happened
    assert world.status(request["id"]) == "revoked"
    with pytest.raises(world.session.client("scheduler").exceptions.ResourceNotFoundException):
        world.schedule(request["id"])  # the revoke finished its other steps too
    iam.delete_role_policy(RoleName=ROLE_NAME, PolicyName="VendorBigPolicy")
    world.invoke("ReconcileFunction", {})
    revoked_at = world.deps.store.get_request(request["id"]).expires_at
    assert guard_window(world.session_guard(), f"{world.role_id()}:alice")[1] == revoked_at
