"""Rules of a role, table-driven: each case is allowed or refused with its error code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trustgate.errors import (
    AlreadyDecidedByYouError,
    CeilingExceededError,
    ForbiddenError,
    NotAPersonError,
    OwnRequestError,
    RuleViolationError,
    TrustGateError,
)
from trustgate.identity import Caller, person_of
from trustgate.models import AccessRequest, Approval, AutoApproveRule, RequestStatus, RolePolicy
from trustgate.rules import (
    auto_approves,
    check_decidable,
    check_may_decide,
    check_may_request,
    check_request,
    check_within_ceiling,
    effective_policy,
)
from trustgate.settings import Settings

pytestmark = pytest.mark.unit

ROLE = "arn:aws:iam::111111111111:role/PumpCustomerAccess"
ALICE = Caller("arn:aws:iam::222222222222:user/alice", "222222222222", "AIDAALICE", "user")
BOB = Caller("arn:aws:iam::222222222222:user/bob", "222222222222", "AIDABOB", "user")
MALLORY = Caller("arn:aws:iam::999999999999:user/mallory", "999999999999", "AIDAM", "user")
SAML_ROLE = "arn:aws:iam::222222222222:role/federation/SamlEngineers"


def session(role: str, name: str, account: str = "222222222222") -> Caller:
    return Caller(f"arn:aws:sts::{account}:assumed-role/{role}/{name}", account, "AROAEXAMPLE", "session")


IDC_ADMIN = "AWSReservedSSO_Admin_0123456789abcdef"
IDC_READ = "AWSReservedSSO_ReadOnly_fedcba9876543210"
ALICE_IDC = session(IDC_ADMIN, "alice")
ALICE_DEV_ROLE = session("DevRole", "alice")  # a role whose session name its caller picks freely
DAVE_ADMIN = session(IDC_ADMIN, "dave")
DAVE_READ = session(IDC_READ, "dave")
DAVE_ADMIN_ELSEWHERE = session(IDC_ADMIN, "dave", "111111111111")
DANA_SAML = session("SamlEngineers", "dana@example.com")
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
    ],
)
def test_who_may_request(policy: RolePolicy, caller: Caller, allowed: bool) -> None:
    effective = effective_policy(ROLE, policy, SETTINGS)
    if allowed:
        assert check_may_request(caller, effective, SETTINGS) == person_of(caller.arn)
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
    assert (person.key, person.kind) == ("role:222222222222:samlengineers/dana@example.com", "identity_role")


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
        assert check_may_decide(approver, request(**changes)) == person_of(approver.arn)
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
        # an IAM user and an Identity Center user of one name are two persons: restrict approver_kinds for that
        (ALICE.arn, ALICE_IDC, None),
        (ALICE_IDC.arn, ALICE, None),
    ],
)
def test_check_may_decide_with_a_second_principal_compares_persons(
    requester: str, approver: Caller, code: str | None
) -> None:
    pending = request(principal_arn=requester, approvers=EVERYONE)
    if code is None:
        assert check_may_decide(approver, pending).key != pending.requester.key
    else:
        with pytest.raises(ForbiddenError) as raised:
            check_may_decide(approver, pending)
        assert raised.value.code == code


def test_check_may_decide_with_self_approval_allowed_accepts_another_permission_set() -> None:
    pending = request(principal_arn=DAVE_ADMIN.arn, approvers=EVERYONE, allow_self_approval=True)
    assert check_may_decide(DAVE_READ, pending).key == "idc:dave"


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


def test_check_may_decide_with_approver_kinds_still_refuses_self_approval_first() -> None:
    pending = request(principal_arn=ALICE_IDC.arn, approvers=EVERYONE, approver_kinds=["iam_user"])
    with pytest.raises(OwnRequestError):
        check_may_decide(session(IDC_READ, "alice", "111111111111"), pending)


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
    ],
)
def test_check_decidable_with_the_same_person_twice_cannot_make_two_of_two(first: Caller, second: Caller) -> None:
    with pytest.raises(AlreadyDecidedByYouError) as raised:
        check_decidable(approved_once_by(first), second, DECIDING_AT)
    assert raised.value.code == "already_decided_by_you"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (BOB, DAVE_ADMIN),
        (DAVE_ADMIN, BOB),
        (DAVE_ADMIN, session(IDC_ADMIN, "erin")),
        (BOB, session(IDC_ADMIN, "bob")),  # IAM user bob and Identity Center user bob are two persons
    ],
)
def test_check_decidable_with_two_distinct_persons_accepts_the_second(first: Caller, second: Caller) -> None:
    check_decidable(approved_once_by(first), second, DECIDING_AT)


def test_check_decidable_with_approver_kinds_rules_out_one_human_on_two_identity_families() -> None:
    pending = approved_once_by(BOB, approver_kinds=["iam_user"])
    with pytest.raises(ForbiddenError):
        check_decidable(pending, session(IDC_ADMIN, "bob"), DECIDING_AT)


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
    ("fields", "message"),
    [
        ({"ticket_pattern": "OPS-("}, "regular expression"),
        ({"source_ip_ranges": ["not-an-ip"]}, "CIDR"),
        ({"unknown_field": 1}, "Extra inputs are not permitted"),
        ({"required_approvals": 0}, "greater than or equal to 1"),
        ({"standing_principals": ["*"]}, "12-digit account id"),
        ({"standing_principals": ["arn:aws:iam::222222222222:user/*"]}, "no wildcards"),
        ({"requester_accounts": ["12345"]}, "pattern"),
        ({"requester_principal_tags": {"bad key!": "x"}}, "tag key"),
        ({"identity_roles": ["arn:aws:iam::222222222222:user/alice"]}, "pattern"),
        ({"approver_kinds": ["robot"]}, "iam_user"),
    ],
)
def test_role_policy_validation_names_the_field(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RolePolicy.model_validate(fields)


def test_errors_are_typed_with_status_and_code() -> None:
    assert issubclass(CeilingExceededError, TrustGateError)
    assert CeilingExceededError("x", "y").status == 422
