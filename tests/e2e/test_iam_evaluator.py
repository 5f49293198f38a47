"""What the local stack wrote into IAM (moto) decides as granted, by the independent IAM evaluator.

The requester asks, an approver approves through the API, the grant becomes active; the role's trust policy,
its inline `TrustGateSessionGuard` and its permission policies are read back from moto, and the evaluator
(tests/support/iam_eval.py) decides AssumeRole calls and calls made by role sessions. Then the grant is revoked
through the API and the documents are read again. Each phase is one evaluate() call.

AssumeRole is asked of TrustGate's own statements (Sid `TrustGate…`): the demo role keeps the vendor's
hand-written statement, which lets any principal of the organization in under any session name; that access
is not TrustGate's to govern (one case below shows it is still there, untouched).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.e2e.drive import ROLE, signed, statement_naming, wait_for
from tests.support.iam_eval import ALLOWED, EXPLICITLY_DENIED, IMPLICITLY_DENIED, IamCase, assume_role, evaluate
from trustgate_local.seed import DemoUser
from trustgate_local.server import LocalStack

pytestmark = pytest.mark.e2e

GUARD = "TrustGateSessionGuard"
REASON = "rotate the CloudTrail bucket after the audit finding"
# A call the role's permissions (the vendor's PumpCustomerManagementAccess) allow: organizations:List*.
ACTION = "organizations:ListAccounts"
# The caller's own account lets them call sts:AssumeRole (a cross-account call needs it); the trust policy decides.


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _document(value: str | Mapping[str, Any]) -> dict[str, Any]:
    """A policy document as boto3 returns it (already decoded, or URL-decoded JSON text)."""
    return dict(json.loads(value)) if isinstance(value, str) else dict(value)


class RoleInIam:
    """The managed role as moto holds it right now."""

    def __init__(self, local: LocalStack) -> None:
        iam = local.session.client("iam")
        name = local.organization.role_arn.rsplit("/", 1)[1]
        role = iam.get_role(RoleName=name)["Role"]
        self.arn: str = role["Arn"]
        self.account: str = self.arn.split(":")[4]
        self.role_id: str = role["RoleId"]
        self.trust: dict[str, Any] = _document(role["AssumeRolePolicyDocument"])
        inline = {
            n: _document(iam.get_role_policy(RoleName=name, PolicyName=n)["PolicyDocument"])
            for n in iam.list_role_policies(RoleName=name)["PolicyNames"]
        }
        self.guard: dict[str, Any] | None = inline.get(GUARD)
        attached = []
        for policy in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            version = iam.get_policy(PolicyArn=policy["PolicyArn"])["Policy"]["DefaultVersionId"]
            document = iam.get_policy_version(PolicyArn=policy["PolicyArn"], VersionId=version)["PolicyVersion"]
            attached.append(_document(document["Document"]))
        self.permissions: list[dict[str, Any]] = attached + list(inline.values())

    @property
    def trustgate_statements(self) -> dict[str, Any]:
        """The trust policy's statements TrustGate owns (Sid `TrustGate…`), as a policy of their own."""
        statements = self.trust.get("Statement", [])
        owned = [s for s in statements if str(s.get("Sid", "")).startswith("TrustGate")]
        return {"Version": self.trust.get("Version", "2012-10-17"), "Statement": owned}

    def describe(self) -> str:
        return (
            f"role {self.arn} ({self.role_id})\ntrust policy: {json.dumps(self.trust)}\n"
            f"session guard: {json.dumps(self.guard)}"
        )


def assume(
    case_id: str, role: RoleInIam, policy: Mapping[str, Any], user: DemoUser, name: str, at: datetime, org: str
) -> IamCase:
    """`user` (long-term access keys: no aws:MultiFactorAuthPresent) calls AssumeRole as `name` at `at`."""
    context = {
        "aws:CurrentTime": iso(at),
        "aws:PrincipalArn": user.arn,
        "aws:PrincipalOrgID": org,
        "aws:userid": user.user_id,
        "aws:username": user.name,
        "sts:RoleSessionName": name,
    }
    return assume_role(case_id, user.arn, role.arn, policy, context)


def act(case_id: str, role: RoleInIam, name: str, issued: datetime, at: datetime, org: str) -> IamCase:
    """The role's session `name`, its credentials issued at `issued`, makes a call the role allows, at `at`."""
    return IamCase(
        id=case_id,
        principal=f"arn:aws:sts::{role.account}:assumed-role/{role.arn.rsplit('/', 1)[1]}/{name}",
        action=ACTION,
        resource="*",
        identity_policies=role.permissions,
        context={
            "aws:CurrentTime": iso(at),
            "aws:PrincipalArn": role.arn,
            "aws:PrincipalOrgID": org,
            "aws:TokenIssueTime": iso(issued),
            "aws:userid": f"{role.role_id}:{name}",
        },
    )


def decide(cases: list[IamCase]) -> dict[str, str]:
    return dict(zip([case.id for case in cases], evaluate(cases), strict=True))


def test_requester_granted_then_revoked_decides_in_iam_as_granted(local_stack: LocalStack) -> None:
    organization = local_stack.organization
    alice, bob = organization.user("requester"), organization.user("approver")
    org = organization.organization_id

    # GIVEN alice asks, bob approves through the API, and the grant is active in both documents
    created = signed(
        local_stack, "requester", "POST", "/requests", {"role": ROLE, "duration": "PT30M", "justification": REASON}
    )
    assert created.status == 201, created.body
    request_id = created.body["id"]
    decided = signed(local_stack, "approver", "POST", f"/requests/{request_id}/approve", {"comment": "ok"})
    assert decided.status == 200, decided.body
    active = wait_for(
        lambda: (
            (a := signed(local_stack, "requester", "GET", f"/requests/{request_id}")).body["status"] == "active"
            and a.body
        ),
        "the request to become active",
    )
    assert active["session_name"] == "alice"
    granted = wait_for(
        lambda: r if (r := RoleInIam(local_stack)).guard is not None and statement_naming(r.trust, alice.arn) else None,
        "alice in the trust policy and a session guard on the role",
    )
    now = local_stack.clock.now()

    # WHEN the evaluator decides against what moto holds
    phase = [
        assume("alice-pinned", granted, granted.trustgate_statements, alice, "alice", now, org),
        assume("alice-other-name", granted, granted.trustgate_statements, alice, "admin", now, org),
        assume("bob", granted, granted.trustgate_statements, bob, "bob", now, org),
        assume("bob-as-alice", granted, granted.trustgate_statements, bob, "alice", now, org),
        # the vendor's statement, kept as it was: any name, any member of the organization (not TrustGate's)
        assume("vendor-any-name", granted, granted.trust, alice, "admin", now, org),
        act("alice-session", granted, "alice", issued=now, at=now, org=org),
    ]
    decisions = decide(phase)

    # THEN only alice, only under her own name, may assume the role, and her fresh session may act
    assert decisions == {
        "alice-pinned": ALLOWED,
        "alice-other-name": IMPLICITLY_DENIED,
        "bob": IMPLICITLY_DENIED,
        "bob-as-alice": IMPLICITLY_DENIED,
        "vendor-any-name": ALLOWED,
        "alice-session": ALLOWED,
    }, granted.describe()

    # WHEN alice's grant is revoked through the API
    revoked = signed(local_stack, "requester", "POST", f"/requests/{request_id}/revoke", {"reason": "done"})
    assert revoked.status == 200, revoked.body
    assert revoked.body["status"] == "revoked"
    after = RoleInIam(local_stack)
    later = local_stack.clock.now()

    # THEN she may no longer assume the role, and the session issued before the revoke is refused every call
    decisions = decide(
        [
            assume("alice-pinned", after, after.trustgate_statements, alice, "alice", later, org),
            act("alice-old-session", after, "alice", issued=now, at=later, org=org),
            act("bob-session", after, "bob", issued=now, at=later, org=org),
        ]
    )
    assert decisions == {
        "alice-pinned": IMPLICITLY_DENIED,
        "alice-old-session": EXPLICITLY_DENIED,
        "bob-session": ALLOWED,  # the guard ends alice's sessions and nobody else's
    }, after.describe()
    assert after.trust["Statement"][0] == granted.trust["Statement"][0], "the vendor's statement is kept as it was"
