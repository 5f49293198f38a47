"""The deployer's ceiling over approval and principals, saving a policy only once IAM accepts it, a stored
policy that never blocks a removal, If-Match, and drift in managed modes (issue 10, sections 1, 2, 6, 9)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.aws import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    MALLORY,
    MANAGEMENT,
    MEMBER,
    ORG_ID,
    ROLE_ARN,
    ROLE_NAME,
    VENDOR_TRUST,
    World,
    api_event,
    running_world,
)
from tests.support.flows import approve, granted, request_access
from tests.support.iam_faults import iam_refuses_principal, show_as_deleted
from trustgate.core.ids import new_id
from trustgate.core.models import AuditEvent, RolePolicy
from trustgate.core.trust_policy import BASELINE_SID, NOBODY, grant_expiry_in, statements_of

pytestmark = pytest.mark.functional

POLICY = f"/roles/{ROLE_NAME}/policy"
TAKE_OVER = {"adopt_statements": ["PumpOrganizationAccess"]}
OPEN_TO_ALL = {"Sid": "Backdoor", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
MFA_DENY = {
    "Sid": "PumpRequireMfa",
    "Effect": "Deny",
    "Principal": {"AWS": "*"},
    "Action": "sts:AssumeRole",
    "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
}


def put(world: World, policy: dict[str, Any], headers: dict[str, str] | None = None, **query: str) -> tuple[int, Any]:
    return world.api("PUT", POLICY, CAROL, policy, query=query or None, headers=headers)


def error(answer: Any) -> tuple[str, str]:
    return answer["error"]["code"], answer["error"]["message"]


def stored_policy(world: World) -> tuple[RolePolicy, int]:
    return world.deps.store.get_role_policy(ROLE_ARN)


def audit_actions(world: World) -> list[str]:
    return [event.action for event in reversed(world.deps.store.audit_events(ROLE_ARN).items)]


def set_trust_policy(world: World, document: dict[str, Any]) -> None:
    """Edit the trust policy by hand, as someone with IAM access (not TrustGate) would."""
    world.session.client("iam").update_assume_role_policy(RoleName=ROLE_NAME, PolicyDocument=json.dumps(document))


def store_directly(world: World, policy: RolePolicy) -> None:
    """A policy saved before the ceiling it now breaks existed (the API would refuse it today)."""
    _, version = stored_policy(world)
    now = world.deps.clock.now()
    audit = AuditEvent(id=new_id(now), at=now, actor="test", action="policy.changed", role_arn=ROLE_ARN)
    world.deps.store.put_role_policy(ROLE_ARN, policy, version, audit)


# -- 1. the ceiling covers approval ------------------------------------------------------------------


def test_the_approval_floor_refuses_fewer_approvals_and_holds_policies_that_leave_it_unset() -> None:
    with running_world({"MinRequiredApprovals": "2"}) as world:
        status, answer = put(world, {"required_approvals": 1})
        assert status == 422, answer
        code, message = error(answer)
        assert code == "exceeds_ceiling"
        assert "required_approvals" in message
        assert "MinRequiredApprovals" in message
        assert stored_policy(world)[1] == 0

        status, answer = put(world, {"max_duration": "PT2H"})
        assert status == 200, answer
        status, view = world.api("GET", POLICY, CAROL)
        assert (view["required_approvals"], view["effective"]["required_approvals"]) == (2, 2)
        request = request_access(world)
        assert request["required_approvals"] == 2


def test_auto_approve_is_refused_unless_the_deployer_allows_it(world: World) -> None:
    status, answer = put(world, {"auto_approve": [{"principals": [ALICE], "max_duration": "PT1H"}]})
    assert status == 422, answer
    code, message = error(answer)
    assert code == "exceeds_ceiling"
    assert "AllowAutoApprove" in message
    assert stored_policy(world)[1] == 0


def test_an_allowed_auto_approve_rule_approves_and_one_approving_everyone_is_refused() -> None:
    with running_world({"AllowAutoApprove": "true"}) as world:
        status, answer = put(world, {"auto_approve": [{}]})
        assert (status, error(answer)[0]) == (422, "invalid_policy")
        assert "auto_approve[0].principals" in error(answer)[1]

        status, answer = put(world, {"auto_approve": [{"principals": [ALICE], "max_duration": "PT1H"}]})
        assert status == 200, answer
        request = request_access(world, duration="PT30M")
        assert (request["status"], request["auto_approved"]) == ("active", True)


def test_a_saved_auto_approve_rule_stops_approving_once_the_deployer_disallows_it(world: World) -> None:
    store_directly(world, RolePolicy.model_validate({"auto_approve": [{"principals": [ALICE]}]}))
    request = request_access(world, duration="PT30M")
    assert (request["status"], request["auto_approved"]) == ("pending", False)


def test_self_approval_is_refused_unless_the_deployer_allows_it(world: World) -> None:
    status, answer = put(world, {"allow_self_approval": True, "approvers": [ALICE, BOB]})
    assert status == 422, answer
    assert error(answer)[0] == "exceeds_ceiling"
    assert "AllowSelfApproval" in error(answer)[1]


def test_self_approval_works_where_the_deployer_allows_it() -> None:
    with running_world({"AllowSelfApproval": "true"}) as allowing:
        status, answer = put(allowing, {"allow_self_approval": True, "approvers": [ALICE, BOB]})
        assert status == 200, answer
        request_id = request_access(allowing)["id"]
        allowing.wait_for_task_token(request_id)
        status, answer = allowing.api("POST", f"/requests/{request_id}/approve", ALICE, {})
        assert status == 200, answer


# -- 1. every principal a policy names lies inside the allowed accounts ----------------------------------


@pytest.mark.parametrize(
    ("field", "policy"),
    [
        ("standing_principals", {"mode": "accounts", **TAKE_OVER, "standing_principals": [MALLORY]}),
        ("requester_patterns", {"requester_patterns": ["arn:aws:iam::999999999999:user/*"]}),
        ("approvers", {"approvers": [MALLORY]}),
        ("admins", {"admins": [MALLORY]}),
        ("approvers", {"approvers": ["iam:999999999999:mallory"]}),
    ],
)
def test_a_principal_outside_the_allowed_accounts_is_refused_naming_the_field_and_the_ceiling(
    world: World, field: str, policy: dict[str, Any]
) -> None:
    status, answer = put(world, policy)
    assert status == 422, answer
    code, message = error(answer)
    assert code == "exceeds_ceiling"
    assert message.startswith(f"{field}:")
    assert "AllowedAccountIds" in message
    assert world.trust_policy() == VENDOR_TRUST


@pytest.mark.parametrize(
    "approver",
    ["*", "arn:aws:iam::222222222222:user/*", "idc:*", "iam:222222222222:b?b", MEMBER],
)
def test_approvers_and_admins_must_be_named_exactly(world: World, approver: str) -> None:
    for field in ("approvers", "admins"):
        status, answer = put(world, {field: [approver]})
        assert status == 422, answer
        code, message = error(answer)
        assert code == "exceeds_ceiling"
        assert message.startswith(f"{field}:")
    assert stored_policy(world)[1] == 0


def test_exact_persons_are_accepted_as_approvers_and_admins(world: World) -> None:
    exact = [BOB, "iam:222222222222:dave", "idc:carol.ng@example.com"]
    status, answer = put(world, {"approvers": exact, "admins": [CAROL, "idc:carol.ng@example.com"]})
    assert status == 200, answer


def test_without_allowed_accounts_every_account_must_still_be_literal_and_standing_access_stays_in_the_org() -> None:
    with running_world({"AllowedAccountIds": ""}) as world:
        status, answer = put(world, {"requester_patterns": ["arn:aws:iam::*:user/alice"]})
        assert (status, error(answer)[0]) == (422, "exceeds_ceiling")
        assert "literal 12-digit" in error(answer)[1]

        status, answer = put(world, {"mode": "accounts", **TAKE_OVER, "standing_principals": ["333333333333"]})
        assert status == 200, answer
        (baseline,) = statements_of(world.trust_policy())
        assert baseline["Principal"] == {"AWS": "arn:aws:iam::333333333333:root"}
        assert baseline["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": ORG_ID}}


def test_identity_center_users_can_be_named_only_where_identity_center_is_trusted() -> None:
    with running_world({"IdentityCenterAccountIds": ""}) as world:
        status, answer = put(world, {"approvers": ["idc:carol"]})
        assert (status, error(answer)[0]) == (422, "exceeds_ceiling")
        assert "IdentityCenterAccountIds" in error(answer)[1]


# -- 2. validate before saving ----------------------------------------------------------------------


GHOST = f"arn:aws:iam::{MANAGEMENT}:user/contractr"  # a typo: no such user


def test_a_policy_iam_refuses_is_not_saved_and_changes_nothing(world: World) -> None:
    active = granted(world)["id"]
    trust_before = world.trust_policy()
    # The new policy would also end alice's grant (her account is not in requester_accounts).
    policy = {"mode": "accounts", **TAKE_OVER, "standing_principals": [GHOST], "requester_accounts": [MANAGEMENT]}

    with iam_refuses_principal(world, GHOST):
        status, answer = put(world, policy)

    assert status == 422, answer
    code, message = error(answer)
    assert code == "iam_refused"
    assert f'Invalid principal in policy: "AWS":"{GHOST}"' in message
    assert "Nothing was saved" in message
    assert stored_policy(world) == (RolePolicy(), 0)
    assert world.trust_policy() == trust_before
    assert world.status(active) == "active"
    assert "policy.changed" not in audit_actions(world)
    # And nothing is left behind to block the next change: alice's revoke works.
    status, answer = world.api("POST", f"/requests/{active}/revoke", ALICE, {})
    assert (status, answer["status"]) == (200, "revoked")
    assert grant_expiry_in(world.trust_policy(), ALICE) is None


def test_a_dry_run_shows_the_refusals_it_can_know_offline(world: World) -> None:
    status, answer = put(world, {"approvers": ["*"]}, dry_run="true")
    assert (status, error(answer)[0]) == (422, "exceeds_ceiling")
    status, answer = put(world, {"mode": "none", "adopt_statements": []}, dry_run="true")
    assert (status, error(answer)[0]) == (422, "unadopted_open_statement")


def test_a_policy_change_revokes_nonconforming_grants_after_iam_accepted_it(world: World) -> None:
    active = granted(world)["id"]
    status, answer = put(world, {"requester_accounts": [MANAGEMENT]})
    assert status == 200, answer
    assert [r["id"] for r in answer["revoked_requests"]] == [active]
    assert answer["version"] == 1
    assert world.status(active) == "revoked"
    assert grant_expiry_in(world.trust_policy(), ALICE) is None
    actions = audit_actions(world)
    assert actions.index("policy.changed") < actions.index("grant.revoked")


# -- 2. a stored policy never blocks a removal -------------------------------------------------------


@pytest.fixture
def contractor(world: World) -> tuple[str, str]:
    """An IAM user with standing access (mode accounts), deleted later: (ARN, unique id)."""
    user = world.session.client("iam").create_user(UserName="contractor")["User"]
    # IAM's unique ids look like AIDA…; moto's do not, so shape one (see tests/support/iam_faults.py).
    arn, unique_id = user["Arn"], "AIDA" + user["UserId"].upper()
    status, answer = put(world, {"mode": "accounts", **TAKE_OVER, "standing_principals": [arn, MEMBER]})
    assert status == 200, answer
    return arn, unique_id


def test_moto_keeps_a_deleted_principals_arn_and_accepts_it_again(world: World, contractor: tuple[str, str]) -> None:
    """What moto itself does (real IAM differs: see tests/support/iam_faults.py): nothing fails, nothing to cope with."""
    arn, _ = contractor
    world.session.client("iam").delete_user(UserName="contractor")
    assert arn in json.dumps(world.trust_policy())
    status, answer = world.api("POST", f"/roles/{ROLE_NAME}/sync", CAROL)
    assert (status, answer["changed"]) == (200, False)


def test_a_deleted_standing_principal_never_keeps_anyone_in_and_is_reported(
    world: World, contractor: tuple[str, str], published: list[str], metrics_added: list[str]
) -> None:
    arn, unique_id = contractor
    active = granted(world)["id"]
    world.session.client("iam").delete_user(UserName="contractor")
    show_as_deleted(world, arn, unique_id)  # as IAM shows it now

    with iam_refuses_principal(world, arn):  # and IAM refuses the stored policy's render, which names it
        status, answer = world.api("POST", f"/requests/{active}/revoke", ALICE, {})
        assert (status, answer["status"]) == (200, "revoked")
        trust = world.trust_policy()
        assert grant_expiry_in(trust, ALICE) is None
        # The baseline as IAM held it, minus the deleted principal: standing access never grows.
        (baseline,) = statements_of(trust)
        assert (baseline["Sid"], baseline["Principal"]) == (BASELINE_SID, {"AWS": f"arn:aws:iam::{MEMBER}:root"})
        assert "policy.unrenderable" in audit_actions(world)
        assert "trustgate.policy.unrenderable" in published
        assert "PolicyUnrenderable" in metrics_added
        (report,) = [e for e in world.deps.store.audit_events(ROLE_ARN).items if e.action == "policy.unrenderable"]
        assert "Invalid principal" in report.detail["why"]
        assert report.detail["standing"] == "held"
        status, view = world.api("GET", POLICY, CAROL)
        assert "Invalid principal" in view["effective"]["unrenderable"]

        # Expiry and the reconciler keep working: a second grant ends on time; reported once, the alarm stays on.
        second = granted(world)["id"]
        world.advance(timedelta(hours=1, minutes=1))
        world.fire_schedule(second)
        assert world.status(second) == "expired"
        assert grant_expiry_in(world.trust_policy(), ALICE) is None
        result = world.invoke("ReconcileFunction", {})
        assert all("error" not in role for role in result["roles"]), result
        assert audit_actions(world).count("policy.unrenderable") == 1
        assert metrics_added.count("PolicyUnrenderable") >= 3

    # Saving the policy again without the deleted principal ends the fallback.
    status, answer = put(world, {"mode": "accounts", **TAKE_OVER, "standing_principals": [MEMBER]}, headers=None)
    assert status == 200, answer
    status, view = world.api("GET", POLICY, CAROL)
    assert "unrenderable" not in view["effective"]


def test_when_iam_refuses_even_what_it_holds_standing_access_fails_closed(
    world: World, contractor: tuple[str, str]
) -> None:
    arn, _ = contractor
    active = granted(world)["id"]
    world.session.client("iam").delete_user(UserName="contractor")  # moto keeps showing the ARN

    with iam_refuses_principal(world, arn):
        status, answer = world.api("POST", f"/requests/{active}/revoke", ALICE, {})
        assert (status, answer["status"]) == (200, "revoked")
        assert statements_of(world.trust_policy()) == [NOBODY]
        assert "policy.unrenderable" in audit_actions(world)


# -- 9. If-Match -------------------------------------------------------------------------------------


def test_get_policy_gives_its_version_as_an_etag_and_a_stale_if_match_changes_nothing(world: World) -> None:
    response = world.invoke("ApiFunction", api_event("GET", POLICY, CAROL))
    assert response["statusCode"] == 200
    etag = (response.get("multiValueHeaders") or {}).get("ETag", [None])[0] or response["headers"]["ETag"]
    assert etag == '"0"'
    assert json.loads(response["body"])["version"] == 0

    status, answer = put(world, {"require_mfa": True}, headers={"If-Match": etag})
    assert (status, answer["version"]) == (200, 1), answer
    status, answer = put(world, {"max_duration": "PT1H"}, headers={"If-Match": etag})  # what was read is stale
    assert status == 412, answer
    code, message = error(answer)
    assert code == "precondition_failed"
    assert "version 1" in message
    assert stored_policy(world) == (RolePolicy(require_mfa=True), 1)

    status, answer = put(world, {"max_duration": "PT1H"})  # without If-Match: applies over what is stored
    assert (status, answer["version"]) == (200, 2), answer
    status, answer = put(world, {"max_duration": "PT1H"}, headers={"If-Match": "yesterday"})
    assert (status, error(answer)[0]) == (400, "invalid_input")


# -- 6. drift in managed modes -----------------------------------------------------------------------


def test_a_backdoor_added_by_hand_to_a_mode_none_role_is_removed_and_reported(
    world: World, published: list[str], metrics_added: list[str]
) -> None:
    status, answer = put(world, {"mode": "none", **TAKE_OVER})
    assert status == 200, answer
    managed = world.trust_policy()
    assert statements_of(managed) == [NOBODY]

    set_trust_policy(world, {**managed, "Statement": [*statements_of(managed), OPEN_TO_ALL]})
    status, answer = world.api("POST", f"/roles/{ROLE_NAME}/sync", CAROL)
    assert (status, answer["changed"]) == (200, True)
    assert world.trust_policy() == managed
    (drift,) = [e for e in world.deps.store.audit_events(ROLE_ARN).items if e.action == "drift"]
    assert drift.detail["removed"] == [OPEN_TO_ALL]
    assert "trustgate.drift" in published
    assert "DriftRemoved" in metrics_added

    # The reconciler removes it too, and the role still reports mode none.
    set_trust_policy(world, {**managed, "Statement": [*statements_of(managed), OPEN_TO_ALL]})
    world.invoke("ReconcileFunction", {})
    assert world.trust_policy() == managed
    assert audit_actions(world).count("drift") == 2
    assert world.api("GET", f"/roles/{ROLE_NAME}", CAROL)[1]["mode"] == "none"


def test_the_vendors_statement_adopted_is_restored_exactly_when_the_policy_is_reset(world: World) -> None:
    original = world.session.client("iam").get_role(RoleName=ROLE_NAME)["Role"]["AssumeRolePolicyDocument"]
    status, answer = put(world, {"mode": "none", **TAKE_OVER, "require_mfa": True})
    assert status == 200, answer
    assert statements_of(world.trust_policy()) == [NOBODY]

    status, answer = put(world, {"require_mfa": True})  # no mode: TrustGate gives standing access back
    assert status == 200, answer
    restored = world.session.client("iam").get_role(RoleName=ROLE_NAME)["Role"]["AssumeRolePolicyDocument"]
    assert json.dumps(restored) == json.dumps(original)  # byte for byte, key order included
    assert restored == VENDOR_TRUST


def test_a_deny_cannot_be_adopted_and_stays_in_force(world: World) -> None:
    vendor = {**VENDOR_TRUST, "Statement": [*VENDOR_TRUST["Statement"], MFA_DENY]}
    set_trust_policy(world, vendor)

    status, answer = put(world, {"mode": "none", "adopt_statements": ["PumpOrganizationAccess", "PumpRequireMfa"]})
    assert status == 422, answer
    code, message = error(answer)
    assert code == "invalid_policy"
    assert "PumpRequireMfa" in message
    assert "only Allow statements" in message
    assert world.trust_policy() == vendor

    status, answer = put(world, {"mode": "none", **TAKE_OVER})
    assert status == 200, answer
    assert statements_of(world.trust_policy()) == [MFA_DENY]
    # Reset: both of the vendor's statements, in their order.
    status, answer = put(world, {})
    assert status == 200, answer
    assert world.trust_policy() == vendor


def test_a_kept_statement_removed_by_hand_comes_back_in_a_managed_mode(world: World) -> None:
    vendor = {**VENDOR_TRUST, "Statement": [*VENDOR_TRUST["Statement"], MFA_DENY]}
    set_trust_policy(world, vendor)
    status, answer = put(world, {"mode": "none", **TAKE_OVER})
    assert status == 200, answer
    set_trust_policy(world, {"Version": "2012-10-17", "Statement": [NOBODY]})  # someone deletes the Deny

    world.invoke("ReconcileFunction", {})

    assert statements_of(world.trust_policy()) == [MFA_DENY]


def test_organization_mode_also_treats_statements_added_later_as_drift(world: World) -> None:
    status, answer = put(world, {"mode": "organization", **TAKE_OVER})
    assert status == 200, answer
    managed = world.trust_policy()
    set_trust_policy(world, {**managed, "Statement": [*statements_of(managed), OPEN_TO_ALL]})

    status, answer = world.api("POST", f"/roles/{ROLE_NAME}/sync", CAROL)

    assert status == 200, answer
    assert world.trust_policy() == managed
    assert "drift" in audit_actions(world)


def test_an_unmanaged_role_keeps_its_hand_written_statements(world: World) -> None:
    edited = {**VENDOR_TRUST, "Statement": [*VENDOR_TRUST["Statement"], MFA_DENY]}
    set_trust_policy(world, edited)
    request_id = request_access(world)["id"]
    approve(world, request_id, DAVE)
    world.wait_status(request_id, "active")
    assert statements_of(world.trust_policy())[:2] == [*VENDOR_TRUST["Statement"], MFA_DENY]
    assert "drift" not in audit_actions(world)


# -- the template ------------------------------------------------------------------------------------


def test_the_template_has_the_ceiling_parameters_and_alarms_on_the_new_metrics() -> None:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load(Path("template.yaml").read_text(encoding="utf-8"), Loader=Loader)  # noqa: S506
    parameters = template["Parameters"]
    assert parameters["MinRequiredApprovals"]["Default"] == 1
    assert parameters["AllowAutoApprove"]["Default"] == "false"
    assert parameters["AllowSelfApproval"]["Default"] == "false"
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert {"MIN_REQUIRED_APPROVALS", "ALLOW_AUTO_APPROVE", "ALLOW_SELF_APPROVAL"} <= set(variables)
    alarms = {
        resource["Properties"]["MetricName"]: resource["Properties"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert (parameters["AllowBreakGlass"]["Default"], parameters["MaxBreakGlassDuration"]["Default"]) == (
        "false",
        "PT1H",
    )
    assert {"ALLOW_BREAK_GLASS", "MAX_BREAK_GLASS_DURATION"} <= set(variables)
    for metric in ("PolicyUnrenderable", "DriftRemoved", "BreakGlassUsed"):
        assert alarms[metric]["Namespace"] == variables["POWERTOOLS_METRICS_NAMESPACE"]
        assert alarms[metric]["Dimensions"] == [{"Name": "service", "Value": variables["POWERTOOLS_SERVICE_NAME"]}]


def test_a_standing_principal_added_by_hand_to_trustgates_baseline_is_removed_and_reported(
    world: World, published: list[str], metrics_added: list[str]
) -> None:
    status, answer = put(world, {"mode": "accounts", "standing_principals": [MANAGEMENT], **TAKE_OVER})
    assert status == 200, answer
    managed = world.trust_policy()
    [baseline] = [s for s in statements_of(managed) if s.get("Sid") == BASELINE_SID]
    widened = {**baseline, "Principal": {"AWS": [f"arn:aws:iam::{MANAGEMENT}:root", "arn:aws:iam::999999999999:root"]}}
    set_trust_policy(world, {**managed, "Statement": [widened if s == baseline else s for s in statements_of(managed)]})

    world.invoke("ReconcileFunction", {})

    assert world.trust_policy() == managed
    (drift,) = [e for e in world.deps.store.audit_events(ROLE_ARN).items if e.action == "drift"]
    assert drift.detail["removed"] == [widened]
    assert "trustgate.drift" in published
    assert "DriftRemoved" in metrics_added
    # A policy change that renders another baseline is the change itself, not drift.
    status, answer = put(world, {"mode": "accounts", "standing_principals": [MEMBER], **TAKE_OVER})
    assert status == 200, answer
    assert audit_actions(world).count("drift") == 1
