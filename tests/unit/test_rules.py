"""Rules of a role, table-driven: each case is allowed or refused with its error code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trustgate.core.errors import (
    AlreadyDecidedByYouError,
    CeilingExceededError,
    ForbiddenError,
    NotAPersonError,
    OwnRequestError,
    RuleViolationError,
    TrustGateError,
)
from trustgate.core.identity import Caller, person_of
from trustgate.core.models import AccessRequest, Approval, AutoApproveRule, RequestStatus, RolePolicy
from trustgate.core.rules import (
    auto_approves,
    check_decidable,
    check_may_decide,
    check_may_request,
    check_request,
    check_within_ceiling,
    effective_policy,
    same_human,
)
from trustgate.core.settings import Settings

pytestmark = pytest.mark.unit

ROLE = "arn:aws:iam::111111111111:role/PumpCustomerAccess"
ALICE = Caller("arn:aws:iam::222222222222:user/alice", "222222222222", "AIDAALICE", "user")
BOB = Caller("arn:aws:iam::222222222222:user/bob", "222222222222", "AIDABOB", "user")
MALLORY = Caller("arn:aws:iam::999999999999:user/mallory", "999999999999", "AIDAM", "user")
SAML_ROLE = "arn:aws:iam::222222222222:role/federation/SamlEngineers"


def session(role: str, name: str, account: str = "222222222222", trusted_identity_center: bool = True) -> Caller:
    """A role session; by default in an account the deployer lists in IdentityCenterAccountIds."""
    arn = f"arn:aws:sts::{account}:assumed-role/{role}/{name}"
    return Caller(arn, account, "AROAEXAMPLE", "session", trusted_identity_center)


IDC_ADMIN = "AWSReservedSSO_Admin_0123456789abcdef"
IDC_READ = "AWSReservedSSO_ReadOnly_fedcba9876543210"
ALICE_IDC = session(IDC_ADMIN, "alice")
ALICE_DEV_ROLE = session("DevRole", "alice")  # a role whose session name its caller picks freely
DAVE_ADMIN = session(IDC_ADMIN, "dave")
DAVE_READ = session(IDC_READ, "dave")
DAVE_ADMIN_ELSEWHERE = session(IDC_ADMIN, "dave", "111111111111")
# A role anyone with iam:CreateRole could name so, in an account whose Identity Center TrustGate does not trust.
FORGED_ALICE_IDC = session(IDC_ADMIN, "alice", trusted_identity_center=False)
DANA_SAML = session("SamlEngineers", "dana@example.com")
SAML_ROLE_ELSEWHERE = "arn:aws:iam::111111111111:role/SamlEngineers"
DANA_SAML_ELSEWHERE = session("SamlEngineers", "Dana@example.com", "111111111111")
SETTINGS = Settings(
    managed_role_arns=[ROLE],
    organization_id="o-exampleorg12",
    allowed_account_ids=["222222222222", "111111111111"],
    default_approvers=[BOB.arn],
    max_duration=timedelta(hours=8),
    min_duration=timedelta(minutes=15),
)
H = timedelta(hours=1)


@pytest.mark.parametrize(
    ("policy", "code"),
    [
        (RolePolicy(), None),
        (RolePolicy(max_duration=4 * H), None),
        (RolePolicy(max_duration=8 * H), None),
        (RolePolicy(max_duration=9 * H), "exceeds_ceiling"),
        (RolePolicy(default_duration=12 * H), "exceeds_ceiling"),
        (RolePolicy(approval_window=25 * H), "exceeds_ceiling"),
        (RolePolicy(max_duration=timedelta(minutes=5)), "invalid_policy"),
        (RolePolicy(default_duration=3 * H, max_duration=2 * H), "invalid_policy"),
        (RolePolicy(requester_accounts=["222222222222"]), None),
        (RolePolicy(requester_accounts=["999999999999"]), "exceeds_ceiling"),
        (RolePolicy(auto_approve=[AutoApproveRule(max_duration=10 * H)]), "exceeds_ceiling"),
        (RolePolicy(identity_roles=[SAML_ROLE]), "exceeds_ceiling"),  # SETTINGS allows no identity role
    ],
)
def test_role_policy_against_the_ceiling(policy: RolePolicy, code: str | None) -> None:
    if code is None:
        check_within_ceiling(policy, SETTINGS)
    else:
        with pytest.raises(RuleViolationError) as raised:
            check_within_ceiling(policy, SETTINGS)
        assert raised.value.code == code


def test_exceeds_ceiling_names_the_field_and_the_ceiling() -> None:
    with pytest.raises(CeilingExceededError) as raised:
        check_within_ceiling(RolePolicy(max_duration=9 * H), SETTINGS)
    assert raised.value.field == "max_duration"
    assert "PT8H" in raised.value.message


def test_check_within_ceiling_with_identity_roles_outside_identity_role_arns_names_them() -> None:
    other = "arn:aws:iam::222222222222:role/SelfNamedSessions"
    settings = SETTINGS.model_copy(update={"identity_role_arns": [SAML_ROLE]})
    check_within_ceiling(RolePolicy(identity_roles=[SAML_ROLE]), settings)
    with pytest.raises(CeilingExceededError) as raised:
        check_within_ceiling(RolePolicy(identity_roles=[SAML_ROLE, other]), settings)
    assert raised.value.field == "identity_roles"
    assert raised.value.code == "exceeds_ceiling"
    assert other in raised.value.message
    assert "IdentityRoleArns" in raised.value.message
    assert f"'{SAML_ROLE}'" not in raised.value.message.split("IdentityRoleArns")[0]


def test_check_within_ceiling_with_no_identity_role_arns_says_none_are_allowed() -> None:
    with pytest.raises(CeilingExceededError, match=r"IdentityRoleArns: none"):
        check_within_ceiling(RolePolicy(identity_roles=[SAML_ROLE]), SETTINGS)


def test_effective_policy_with_identity_roles_keeps_only_those_within_the_ceiling() -> None:
    policy = RolePolicy(identity_roles=[SAML_ROLE, "arn:aws:iam::222222222222:role/DevRole"])
    assert effective_policy(ROLE, policy, SETTINGS).identity_roles == ()
    settings = SETTINGS.model_copy(update={"identity_role_arns": [SAML_ROLE]})
    assert effective_policy(ROLE, policy, settings).identity_roles == (SAML_ROLE,)


def test_effective_policy_never_exceeds_the_ceiling() -> None:
    effective = effective_policy(ROLE, RolePolicy(), SETTINGS)
    assert effective.max_duration == 8 * H
    assert effective.approvers == (BOB.arn,)
    assert effective.default_duration == H


@pytest.mark.parametrize(
    ("policy", "caller", "allowed"),
    [
        (RolePolicy(), ALICE, True),
        (RolePolicy(), MALLORY, False),
        (RolePolicy(requester_accounts=["222222222222"]), ALICE, True),
        (RolePolicy(requester_accounts=["111111111111"]), ALICE, False),
        (RolePolicy(requester_patterns=["arn:aws:iam::222222222222:user/a*"]), ALICE, True),
        (RolePolicy(requester_patterns=["arn:aws:iam::222222222222:user/b*"]), ALICE, False),
        (RolePolicy(requester_patterns=["222222222222"]), ALICE, True),
        (RolePolicy(requester_patterns=["iam:222222222222:alice"]), ALICE, True),
        (RolePolicy(requester_patterns=["idc:alice"]), ALICE, False),
        (RolePolicy(requester_patterns=["idc:alice"]), ALICE_IDC, True),
        (RolePolicy(requester_patterns=["idc:alice"]), FORGED_ALICE_IDC, False),  # not_a_person
        (RolePolicy(), FORGED_ALICE_IDC, False),
    ],
)
def test_who_may_request(policy: RolePolicy, caller: Caller, allowed: bool) -> None:
    effective = effective_policy(ROLE, policy, SETTINGS)
    if allowed:
        assert check_may_request(caller, effective, SETTINGS) == person_of(caller.arn) == caller.person
    else:
        with pytest.raises(ForbiddenError):
            check_may_request(caller, effective, SETTINGS)


def test_check_may_request_with_a_self_named_role_session_is_not_a_person() -> None:
    effective = effective_policy(ROLE, RolePolicy(requester_patterns=["222222222222"]), SETTINGS)
    with pytest.raises(NotAPersonError) as raised:
        check_may_request(ALICE_DEV_ROLE, effective, SETTINGS)
    assert raised.value.code == "not_a_person"


def test_check_may_request_with_a_listed_identity_role_returns_its_session_person() -> None:
    settings = SETTINGS.model_copy(update={"identity_role_arns": [SAML_ROLE]})
    effective = effective_policy(ROLE, RolePolicy(identity_roles=[SAML_ROLE]), settings)
    person = check_may_request(DANA_SAML, effective, settings)
    assert (person.key, person.kind) == ("role:dana@example.com", "identity_role")


def test_check_may_request_with_an_untrusted_identity_center_session_is_not_a_person_naming_the_setting() -> None:
    effective = effective_policy(ROLE, RolePolicy(requester_patterns=["idc:alice"]), SETTINGS)
    with pytest.raises(NotAPersonError) as raised:
        check_may_request(FORGED_ALICE_IDC, effective, SETTINGS)
    assert raised.value.code == "not_a_person"
    assert "IdentityCenterAccountIds" in raised.value.message
    assert "SCP" in raised.value.message


def test_check_may_request_with_an_untrusted_identity_center_role_listed_as_identity_role_is_no_idc_person() -> None:
    # Listed as an identity role, the session is a person, but the `role:` one: `idc:` patterns do not match it.
    forged_role = f"arn:aws:iam::222222222222:role/{IDC_ADMIN}"
    settings = SETTINGS.model_copy(update={"identity_role_arns": [forged_role]})
    listed = RolePolicy(identity_roles=[forged_role])
    person = check_may_request(FORGED_ALICE_IDC, effective_policy(ROLE, listed, settings), settings)
    assert (person.key, person.kind) == ("role:alice", "identity_role")
    only_idc = RolePolicy(identity_roles=[forged_role], requester_patterns=["idc:alice"])
    with pytest.raises(ForbiddenError) as raised:
        check_may_request(FORGED_ALICE_IDC, effective_policy(ROLE, only_idc, settings), settings)
    assert raised.value.code == "forbidden"


def test_check_may_request_with_an_identity_role_the_deployment_does_not_allow_is_not_a_person() -> None:
    # A stored policy naming a role the deployer has since taken out of IdentityRoleArns names no person.
    effective = effective_policy(ROLE, RolePolicy(identity_roles=[SAML_ROLE]), SETTINGS)
    with pytest.raises(NotAPersonError):
        check_may_request(DANA_SAML, effective, SETTINGS)


@pytest.mark.parametrize(
    ("policy", "duration", "justification", "ticket", "code"),
    [
        (RolePolicy(), H, "rotate the trail bucket", None, None),
        (RolePolicy(), 9 * H, "rotate the trail bucket", None, "duration_too_long"),
        (RolePolicy(max_duration=2 * H), 3 * H, "rotate the trail bucket", None, "duration_too_long"),
        (RolePolicy(), timedelta(minutes=5), "rotate the trail bucket", None, "duration_too_short"),
        (RolePolicy(), H, "too short", None, "justification_too_short"),
        (RolePolicy(justification_min_length=0), H, "x", None, None),
        (RolePolicy(ticket_pattern=r"OPS-\d+"), H, "rotate the trail bucket", None, "ticket_required"),
        (RolePolicy(ticket_pattern=r"OPS-\d+"), H, "rotate the trail bucket", "JIRA-1", "ticket_invalid"),
        (RolePolicy(ticket_pattern=r"OPS-\d+"), H, "rotate the trail bucket", "OPS-42", None),
    ],
)
def test_request_rules(
    policy: RolePolicy, duration: timedelta, justification: str, ticket: str | None, code: str | None
) -> None:
    effective = effective_policy(ROLE, policy, SETTINGS)
    if code is None:
        check_request(duration, justification, ticket, effective)
    else:
        with pytest.raises(RuleViolationError) as raised:
            check_request(duration, justification, ticket, effective)
        assert raised.value.code == code
        assert raised.value.status == 422


def request(**changes: object) -> AccessRequest:
    values: dict[str, object] = {
        "id": "R1",
        "role_arn": ROLE,
        "principal_arn": ALICE.arn,
        "duration": H,
        "justification": "rotate the trail bucket",
        "created_at": datetime(2026, 11, 26, 10, tzinfo=UTC),
        "approvers": [BOB.arn, ALICE.arn],
    }
    return AccessRequest.model_validate(values | changes)


@pytest.mark.parametrize(
    ("approver", "changes", "code"),
    [
        (BOB, {}, None),
        (ALICE, {}, "own_request"),  # self-approval off by default even when listed as an approver
        (ALICE, {"allow_self_approval": True}, None),
        (MALLORY, {}, "forbidden"),
    ],
)
def test_who_may_decide(approver: Caller, changes: dict[str, object], code: str | None) -> None:
    if code is None:
        assert check_may_decide(approver, request(**changes)) == person_of(approver.arn) == approver.person
    else:
        with pytest.raises(ForbiddenError) as raised:
            check_may_decide(approver, request(**changes))
        assert raised.value.code == code


EVERYONE = ["222222222222", "111111111111", "idc:*"]


@pytest.mark.parametrize(
    ("requester", "approver", "code"),
    [
        # the same IAM user, however its ARN is spelled
        (ALICE.arn, Caller("arn:aws:iam::222222222222:user/Alice", "222222222222", None, "user"), "own_request"),
        # one Identity Center user: another permission set, or the same one in another account
        (DAVE_ADMIN.arn, DAVE_READ, "own_request"),
        (DAVE_ADMIN.arn, DAVE_ADMIN_ELSEWHERE, "own_request"),
        (DAVE_READ.arn, DAVE_ADMIN_ELSEWHERE, "own_request"),
        # a role session whose name its caller chose does not tell who it is
        (ALICE.arn, ALICE_DEV_ROLE, "not_a_person"),
        (BOB.arn, ALICE_DEV_ROLE, "not_a_person"),
        # nor does a session of an AWSReservedSSO_* role in an account whose Identity Center is not trusted
        (BOB.arn, FORGED_ALICE_IDC, "not_a_person"),
        (ALICE.arn, FORGED_ALICE_IDC, "not_a_person"),
        # one name under another identity may be the same human: nothing signed links them, so it is refused
        (ALICE.arn, ALICE_IDC, "own_request"),
        (ALICE_IDC.arn, ALICE, "own_request"),
        (ALICE.arn, Caller("arn:aws:iam::111111111111:user/ALICE", "111111111111", None, "user"), "own_request"),
        (ALICE_IDC.arn, session("SamlEngineers", "Alice"), "own_request"),
        # distinct names are distinct humans
        (ALICE.arn, DAVE_ADMIN, None),
        (DAVE_ADMIN.arn, BOB, None),
        (ALICE.arn, session(IDC_ADMIN, "alice2"), None),
    ],
)
def test_check_may_decide_with_a_second_principal_compares_persons(
    requester: str, approver: Caller, code: str | None
) -> None:
    pending = request(principal_arn=requester, approvers=EVERYONE, identity_roles=[SAML_ROLE])
    if code is None:
        assert check_may_decide(approver, pending).key != pending.requester.key
    else:
        with pytest.raises(ForbiddenError) as raised:
            check_may_decide(approver, pending)
        assert raised.value.code == code


def test_check_may_decide_with_self_approval_allowed_accepts_another_permission_set() -> None:
    pending = request(principal_arn=DAVE_ADMIN.arn, approvers=EVERYONE, allow_self_approval=True)
    assert check_may_decide(DAVE_READ, pending).key == "idc:dave"


def test_check_may_decide_with_self_approval_allowed_accepts_the_same_name_under_another_identity() -> None:
    pending = request(principal_arn=ALICE.arn, approvers=EVERYONE, allow_self_approval=True)
    assert check_may_decide(ALICE_IDC, pending).key == "idc:alice"


def test_check_may_decide_with_self_approval_allowed_still_refuses_an_untrusted_identity_center_session() -> None:
    pending = request(principal_arn=ALICE.arn, approvers=EVERYONE, allow_self_approval=True)
    with pytest.raises(NotAPersonError, match="IdentityCenterAccountIds"):
        check_may_decide(FORGED_ALICE_IDC, pending)


def test_check_may_decide_with_one_idp_user_through_two_identity_roles_is_own_request() -> None:
    pending = request(principal_arn=DANA_SAML.arn, approvers=EVERYONE, identity_roles=[SAML_ROLE, SAML_ROLE_ELSEWHERE])
    assert pending.requester == person_of(DANA_SAML.arn)
    with pytest.raises(OwnRequestError) as raised:
        check_may_decide(DANA_SAML_ELSEWHERE, pending)
    assert raised.value.code == "own_request"


@pytest.mark.parametrize(
    "patterns",
    [["idc:alice"], ["idc:*"]],
)
def test_check_may_decide_with_idc_approver_patterns_does_not_match_an_untrusted_look_alike(
    patterns: list[str],
) -> None:
    forged_role = f"arn:aws:iam::222222222222:role/{IDC_ADMIN}"  # listed, so it is a person: role:alice
    pending = request(principal_arn=BOB.arn, approvers=patterns, identity_roles=[forged_role])
    assert check_may_decide(ALICE_IDC, pending).key == "idc:alice"
    with pytest.raises(ForbiddenError) as raised:
        check_may_decide(FORGED_ALICE_IDC, pending)
    assert raised.value.code == "forbidden"
    assert "is not an approver" in raised.value.message


def test_check_may_decide_with_the_request_listing_the_identity_role_accepts_its_sessions() -> None:
    pending = request(approvers=EVERYONE, identity_roles=[SAML_ROLE])
    assert check_may_decide(DANA_SAML, pending).kind == "identity_role"
    with pytest.raises(NotAPersonError):
        check_may_decide(DANA_SAML, request(approvers=EVERYONE))


@pytest.mark.parametrize(
    ("kinds", "approver", "allowed"),
    [
        ([], BOB, True),
        ([], DAVE_ADMIN, True),
        (["identity_center"], BOB, False),
        (["identity_center"], DAVE_ADMIN, True),
        (["iam_user"], DAVE_ADMIN, False),
        (["iam_user"], BOB, True),
        (["iam_user", "identity_center"], DAVE_READ, True),
        (["identity_role"], DANA_SAML, True),
        (["identity_role"], BOB, False),
    ],
)
def test_check_may_decide_with_approver_kinds_accepts_only_those_kinds(
    kinds: list[str], approver: Caller, allowed: bool
) -> None:
    pending = request(approvers=EVERYONE, approver_kinds=kinds, identity_roles=[SAML_ROLE])
    if allowed:
        check_may_decide(approver, pending)
    else:
        with pytest.raises(ForbiddenError) as raised:
            check_may_decide(approver, pending)
        assert raised.value.code == "forbidden"
        assert all(kind in raised.value.message for kind in kinds)
        assert person_of(approver.arn).label in raised.value.message
        assert approver.person.label in raised.value.message


def test_check_may_decide_with_approver_kinds_counts_an_untrusted_identity_center_session_as_no_person() -> None:
    pending = request(approvers=EVERYONE, approver_kinds=["identity_center"])
    with pytest.raises(NotAPersonError):
        check_may_decide(session(IDC_READ, "dave", trusted_identity_center=False), pending)


def test_check_may_decide_with_approver_kinds_still_refuses_self_approval_first() -> None:
    pending = request(principal_arn=ALICE_IDC.arn, approvers=EVERYONE, approver_kinds=["iam_user"])
    with pytest.raises(OwnRequestError):
        check_may_decide(session(IDC_READ, "alice", "111111111111"), pending)
    with pytest.raises(OwnRequestError):  # the IAM user of that name too, though it is an allowed kind
        check_may_decide(ALICE, pending)


def approved_once_by(first: Caller, **changes: object) -> AccessRequest:
    """A pending 2-of-2 request by ALICE with one approval already counted."""
    approval = Approval(approver_arn=first.arn, decision="approve", at=datetime(2026, 11, 26, 10, 5, tzinfo=UTC))
    return request(approvers=EVERYONE, required_approvals=2, approvals=[approval], **changes)


DECIDING_AT = datetime(2026, 11, 26, 10, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (DAVE_ADMIN, DAVE_READ),  # two permission sets of one Identity Center user
        (DAVE_ADMIN, DAVE_ADMIN_ELSEWHERE),  # one permission set in two accounts
        (DAVE_READ, DAVE_ADMIN_ELSEWHERE),
        (DAVE_ADMIN, DAVE_ADMIN),
        (BOB, Caller("arn:aws:iam::222222222222:user/BOB", "222222222222", None, "user")),
        # one name under two identities may be one human, counted once
        (BOB, Caller("arn:aws:iam::111111111111:user/bob", "111111111111", None, "user")),  # two accounts
        (BOB, session(IDC_ADMIN, "bob")),  # IAM user bob, then Identity Center user bob
        (session(IDC_READ, "Bob", "111111111111"), BOB),
        (DANA_SAML, DANA_SAML_ELSEWHERE),  # one IdP user through two identity roles
        (DANA_SAML, session(IDC_ADMIN, "dana@example.com")),
    ],
)
def test_check_decidable_with_the_same_person_twice_cannot_make_two_of_two(first: Caller, second: Caller) -> None:
    pending = approved_once_by(first, identity_roles=[SAML_ROLE, SAML_ROLE_ELSEWHERE])
    with pytest.raises(AlreadyDecidedByYouError) as raised:
        check_decidable(pending, second, DECIDING_AT)
    assert raised.value.code == "already_decided_by_you"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (BOB, DAVE_ADMIN),
        (DAVE_ADMIN, BOB),
        (DAVE_ADMIN, session(IDC_ADMIN, "erin")),
        (BOB, session(IDC_ADMIN, "bobby")),
        (DANA_SAML, BOB),
    ],
)
def test_check_decidable_with_two_distinct_persons_accepts_the_second(first: Caller, second: Caller) -> None:
    check_decidable(approved_once_by(first, identity_roles=[SAML_ROLE]), second, DECIDING_AT)


def test_check_decidable_with_approver_kinds_rules_out_one_human_on_two_identity_families() -> None:
    pending = approved_once_by(BOB, approver_kinds=["iam_user"])
    with pytest.raises(ForbiddenError) as raised:
        check_decidable(pending, session(IDC_ADMIN, "bob"), DECIDING_AT)
    assert raised.value.code == "forbidden"


def test_check_decidable_with_an_untrusted_identity_center_session_is_not_a_person() -> None:
    with pytest.raises(NotAPersonError):
        check_decidable(approved_once_by(BOB), session(IDC_ADMIN, "erin", trusted_identity_center=False), DECIDING_AT)


# -- same human -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("one", "other", "expected"),
    [
        ("arn:aws:iam::222222222222:user/alice", "arn:aws:iam::222222222222:user/ops/Alice", True),  # one key
        ("arn:aws:iam::222222222222:user/alice", "arn:aws:iam::111111111111:user/alice", True),
        ("arn:aws:iam::222222222222:user/alice", f"arn:aws:sts::222222222222:assumed-role/{IDC_ADMIN}/ALICE", True),
        ("arn:aws:iam::222222222222:user/alice", "arn:aws:sts::111111111111:assumed-role/SamlEngineers/alice", True),
        (f"arn:aws:sts::222222222222:assumed-role/{IDC_ADMIN}/dave", DAVE_ADMIN_ELSEWHERE.arn, True),
        (DAVE_ADMIN.arn, f"arn:aws:sts::111111111111:assumed-role/{IDC_READ}/Dave", True),
        ("arn:aws:iam::222222222222:user/alice", "arn:aws:iam::222222222222:user/alicia", False),
        ("arn:aws:iam::222222222222:user/alice", f"arn:aws:sts::222222222222:assumed-role/{IDC_ADMIN}/al", False),
        (
            "arn:aws:sts::222222222222:assumed-role/SamlEngineers/dana@example.com",
            "arn:aws:sts::222222222222:assumed-role/SamlEngineers/dana",
            False,
        ),
    ],
)
def test_same_human_with_the_same_key_or_the_same_name_ignoring_case(one: str, other: str, expected: bool) -> None:
    assert same_human(person_of(one), person_of(other)) is expected
    assert same_human(person_of(other), person_of(one)) is expected


def test_check_decidable_with_a_decided_request_refuses_before_looking_at_the_person() -> None:
    active = approved_once_by(BOB).model_copy(update={"status": RequestStatus.ACTIVE, "decided_at": DECIDING_AT})
    with pytest.raises(TrustGateError) as raised:
        check_decidable(active, ALICE_DEV_ROLE, DECIDING_AT)
    assert raised.value.code == "already_decided"


MONDAY_10 = datetime(2026, 11, 23, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("rules", "at", "expected"),
    [
        ([], MONDAY_10, False),
        ([AutoApproveRule()], MONDAY_10, True),
        ([AutoApproveRule(principals=[ALICE.arn])], MONDAY_10, True),
        ([AutoApproveRule(principals=[BOB.arn])], MONDAY_10, False),
        ([AutoApproveRule(principals=["iam:222222222222:ALICE"])], MONDAY_10, True),
        ([AutoApproveRule(principals=["iam:*:alice"])], MONDAY_10, True),
        ([AutoApproveRule(principals=["idc:alice"])], MONDAY_10, False),
        ([AutoApproveRule(max_duration=timedelta(minutes=30))], MONDAY_10, False),
        ([AutoApproveRule(max_duration=2 * H)], MONDAY_10, True),
        ([AutoApproveRule(weekdays=[0, 1, 2, 3, 4], hours_utc=(9, 17))], MONDAY_10, True),
        ([AutoApproveRule(weekdays=[0, 1, 2, 3, 4], hours_utc=(9, 17))], MONDAY_10 + timedelta(hours=8), False),
        ([AutoApproveRule(weekdays=[5, 6])], MONDAY_10, False),
    ],
)
def test_auto_approve_rules(rules: list[AutoApproveRule], at: datetime, expected: bool) -> None:
    assert auto_approves(request(), rules, at) is expected


@pytest.mark.parametrize(
    ("principals", "expected"),
    [(["idc:alice"], True), (["idc:*"], True), (["iam:*:alice"], False), ([ALICE_IDC.arn], True)],
)
def test_auto_approve_rules_with_an_identity_center_request_match_its_stored_person(
    principals: list[str], expected: bool
) -> None:
    # A stored request was made by a caller already accepted, so its ARN reads as the Identity Center person.
    stored = request(principal_arn=ALICE_IDC.arn)
    assert stored.requester.key == "idc:alice"
    assert auto_approves(stored, [AutoApproveRule(principals=principals)], MONDAY_10) is expected


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"ticket_pattern": "OPS-("}, "ticket_pattern .* RE2"),
        ({"source_ip_ranges": ["not-an-ip"]}, "CIDR"),
        ({"unknown_field": 1}, "Extra inputs are not permitted"),
        ({"required_approvals": 0}, "greater than or equal to 1"),
        ({"standing_principals": ["*"]}, "12-digit account id"),
        ({"standing_principals": ["arn:aws:iam::222222222222:user/*"]}, "no wildcards"),
        ({"requester_accounts": ["12345"]}, "pattern"),
        ({"requester_principal_tags": {"bad key!": "x"}}, "tag key"),
        ({"identity_roles": ["arn:aws:iam::222222222222:user/alice"]}, "not an IAM role ARN"),
        ({"approver_kinds": ["robot"]}, "iam_user"),
    ],
)
def test_role_policy_validation_names_the_field(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RolePolicy.model_validate(fields)


def test_errors_are_typed_with_status_and_code() -> None:
    assert issubclass(CeilingExceededError, TrustGateError)
    assert CeilingExceededError("x", "y").status == 422
