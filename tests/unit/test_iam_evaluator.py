"""The independent IAM evaluator (tests/support/iam_eval.py) decides as AWS documents, for the policies TrustGate writes.

Every case below is evaluated in one node process (the `decisions` fixture); each test checks one documented fact.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.iam_eval import ALLOWED, EXPLICITLY_DENIED, IMPLICITLY_DENIED, IamCase, evaluate

pytestmark = pytest.mark.unit

ACCOUNT = "111111111111"
TARGET_ACCOUNT = "222222222222"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/Target"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
BOB = f"arn:aws:iam::{ACCOUNT}:user/bob"
CAROL_SSO = f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/carol"
# aws:PrincipalArn of a role session is its role's ARN (with the path the session ARN leaves out).
PRINCIPAL_ARN = {
    ALICE: ALICE,
    BOB: BOB,
    CAROL_SSO: f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0123456789abcdef",
}
ASSUME = "sts:AssumeRole"
EXPIRES = "2026-12-01T12:00:00Z"
BEFORE = "2026-12-01T11:30:00Z"
AFTER = "2026-12-01T12:00:01Z"


def trust(principal: str | list[str], session_name: str) -> dict[str, Any]:
    """A grant as TrustGate renders it: this principal, until EXPIRES, under this session name."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": principal},
                "Action": ASSUME,
                "Condition": {
                    "DateLessThan": {"aws:CurrentTime": EXPIRES},
                    "StringEquals": {"sts:RoleSessionName": session_name},
                },
            }
        ],
    }


ALICE_ONLY = trust(ALICE, "${aws:username}")
ALICE_AND_BOB = trust([ALICE, BOB], "${aws:username}")


def assume(
    case_id: str, principal: str, policy: dict[str, Any], session_name: str, now: str, username: str | None
) -> IamCase:
    """`principal` asks for a session named `session_name` at `now`; aws:username exists for IAM users only."""
    context = {
        "aws:PrincipalArn": PRINCIPAL_ARN[principal],
        "sts:RoleSessionName": session_name,
        "aws:CurrentTime": now,
    }
    if username is not None:
        context["aws:username"] = username
    return IamCase(
        id=case_id,
        principal=principal,
        action=ASSUME,
        resource=ROLE,
        resource_policy=policy,
        resource_account=ACCOUNT,
        context=context,
    )


# The session guard: an inline policy on the target role that ends alice's session at EXPIRES and refuses
# any of her sessions whose credentials were issued before her grant started (11:00).
SESSION = f"arn:aws:sts::{TARGET_ACCOUNT}:assumed-role/Target/"
ROLE_ID = "AROAEXAMPLEROLEID0001"
ADMIN = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
GUARD = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "TrustGateEnd1",
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {
                "StringEquals": {"aws:userid": [f"{ROLE_ID}:alice"]},
                "DateGreaterThan": {"aws:CurrentTime": EXPIRES},
            },
        },
        {
            "Sid": "TrustGateStart1",
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {
                "StringEquals": {"aws:userid": [f"{ROLE_ID}:alice"]},
                "DateLessThan": {"aws:TokenIssueTime": "2026-12-01T11:00:00Z"},
            },
        },
    ],
}


def guarded(case_id: str, session_name: str, now: str, issued: str) -> IamCase:
    return IamCase(
        id=case_id,
        principal=SESSION + session_name,
        action="s3:ListAllMyBuckets",
        resource="*",
        identity_policies=[ADMIN, GUARD],
        context={
            "aws:userid": f"{ROLE_ID}:{session_name}",
            "aws:PrincipalArn": f"arn:aws:iam::{TARGET_ACCOUNT}:role/Target",
            "aws:CurrentTime": now,
            "aws:TokenIssueTime": issued,
        },
    )


CASES = [
    assume("alice", ALICE, ALICE_ONLY, "alice", BEFORE, username="alice"),
    assume("alice-as-mallory", ALICE, ALICE_ONLY, "mallory", BEFORE, username="alice"),
    assume("alice-late", ALICE, ALICE_ONLY, "alice", AFTER, username="alice"),
    assume("bob-not-named", BOB, ALICE_ONLY, "bob", BEFORE, username="bob"),
    assume("bob-named", BOB, ALICE_AND_BOB, "bob", BEFORE, username="bob"),
    assume("carol", CAROL_SSO, trust(CAROL_SSO, "carol"), "carol", BEFORE, username=None),
    assume("carol-as-dave", CAROL_SSO, trust(CAROL_SSO, "carol"), "dave", BEFORE, username=None),
    assume("carol-username", CAROL_SSO, trust(CAROL_SSO, "${aws:username}"), "carol", BEFORE, username=None),
    guarded("guard-inside", "alice", now=BEFORE, issued="2026-12-01T11:05:00Z"),
    guarded("guard-after-end", "alice", now=AFTER, issued="2026-12-01T11:05:00Z"),
    guarded("guard-old-token", "alice", now=BEFORE, issued="2026-12-01T10:59:00Z"),
    guarded("guard-other-session", "bob", now="2026-12-01T12:30:00Z", issued="2026-12-01T10:00:00Z"),
]


@pytest.fixture(scope="module")
def decisions() -> dict[str, str]:
    return dict(zip([case.id for case in CASES], evaluate(CASES), strict=True))


def test_trust_allows_named_user_with_matching_session_name_before_expiry(decisions: dict[str, str]) -> None:
    assert decisions["alice"] == ALLOWED


def test_trust_refuses_named_user_with_other_session_name(decisions: dict[str, str]) -> None:
    assert decisions["alice-as-mallory"] == IMPLICITLY_DENIED


def test_trust_refuses_named_user_with_current_time_after_expiry(decisions: dict[str, str]) -> None:
    assert decisions["alice-late"] == IMPLICITLY_DENIED


def test_trust_refuses_unnamed_user_with_own_session_name(decisions: dict[str, str]) -> None:
    assert decisions["bob-not-named"] == IMPLICITLY_DENIED


def test_trust_resolves_username_variable_per_caller_with_two_principals(decisions: dict[str, str]) -> None:
    assert decisions["bob-named"] == ALLOWED


def test_trust_allows_identity_center_session_with_literal_session_name(decisions: dict[str, str]) -> None:
    assert decisions["carol"] == ALLOWED


def test_trust_refuses_identity_center_session_with_other_session_name(decisions: dict[str, str]) -> None:
    assert decisions["carol-as-dave"] == IMPLICITLY_DENIED


def test_trust_refuses_identity_center_session_with_username_variable_and_no_username(
    decisions: dict[str, str],
) -> None:
    # aws:username exists only for IAM users; a variable naming an absent key never matches.
    assert decisions["carol-username"] == IMPLICITLY_DENIED


def test_guard_allows_granted_session_with_fresh_token_inside_grant(decisions: dict[str, str]) -> None:
    assert decisions["guard-inside"] == ALLOWED


def test_guard_denies_granted_session_with_current_time_after_end(decisions: dict[str, str]) -> None:
    assert decisions["guard-after-end"] == EXPLICITLY_DENIED


def test_guard_denies_granted_session_with_token_issued_before_start(decisions: dict[str, str]) -> None:
    assert decisions["guard-old-token"] == EXPLICITLY_DENIED


def test_guard_ignores_other_session_with_time_outside_grant(decisions: dict[str, str]) -> None:
    assert decisions["guard-other-session"] == ALLOWED


def test_evaluate_raises_with_case_the_library_cannot_judge() -> None:
    unknown_action = IamCase(id="typo", principal=ALICE, action="sts:AssumeRol", resource=ROLE)
    with pytest.raises(RuntimeError, match=r"typo: simulation refused the case: .*invalid\.action"):
        evaluate([unknown_action])


def test_evaluate_raises_with_policy_variable_in_unversioned_policy() -> None:
    # AWS reads ${aws:username} literally without "Version": "2012-10-17"; the library would substitute it.
    unversioned = {key: value for key, value in ALICE_ONLY.items() if key != "Version"}
    case = assume("unversioned", ALICE, unversioned, "alice", BEFORE, username="alice")
    with pytest.raises(RuntimeError, match=r"unversioned: not evaluable faithfully: .*2012-10-17"):
        evaluate([case])
