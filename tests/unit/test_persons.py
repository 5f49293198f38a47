"""Persons: the one human behind possibly many ARNs, and which callers count as one (pure)."""

from __future__ import annotations

import pytest

from trustgate.errors import ForbiddenError, InvalidPrincipalError, NotAPersonError
from trustgate.identity import Caller, Person, check_person, matches_person, person_of

pytestmark = pytest.mark.unit

MEMBER = "222222222222"
OTHER = "333333333333"
IDC_ADMIN = "AWSReservedSSO_Admin_0123456789abcdef"
IDC_READ = "AWSReservedSSO_ReadOnly_fedcba9876543210"
SAML_ROLE = f"arn:aws:iam::{MEMBER}:role/federation/SamlEngineers"


def user(name: str, account: str = MEMBER, path: str = "") -> str:
    return f"arn:aws:iam::{account}:user/{path}{name}"


def session(role: str, name: str, account: str = MEMBER) -> str:
    return f"arn:aws:sts::{account}:assumed-role/{role}/{name}"


def caller(arn: str) -> Caller:
    return Caller(arn, arn.split(":")[4], None, "session" if ":sts::" in arn else "user")


# -- person keys ----------------------------------------------------------------------------------


def test_person_of_with_iam_user_keys_account_and_lowercased_name() -> None:
    person = person_of(user("Alice"))
    assert person == Person(f"iam:{MEMBER}:alice", "iam_user", "Alice")
    assert person.label == f"Alice (IAM user, {MEMBER})"


@pytest.mark.parametrize("arn", [user("alice"), user("ALICE"), user("Alice", path="ops/"), user("alice", path="a/b/")])
def test_person_of_with_iam_user_ignores_case_and_path(arn: str) -> None:
    assert person_of(arn).key == f"iam:{MEMBER}:alice"


def test_person_of_with_same_user_name_in_two_accounts_gives_two_persons() -> None:
    assert person_of(user("alice")).key != person_of(user("alice", OTHER)).key


def test_person_of_with_iam_user_pins_the_user_name_as_written() -> None:
    # Inside the role, aws:userid is <role id>:<session name>; an IAM user's pin is their own user name.
    assert person_of(user("Alice", path="ops/")).session_name == "Alice"


def test_person_of_with_identity_center_session_keys_the_lowercased_user_name() -> None:
    person = person_of(session(IDC_ADMIN, "Carol@Example.com"))
    assert person == Person("idc:carol@example.com", "identity_center", "Carol@Example.com", IDC_ADMIN)
    assert person.label == "Carol@Example.com (Identity Center)"


@pytest.mark.parametrize(
    "arn",
    [
        session(IDC_ADMIN, "carol"),
        session(IDC_READ, "carol"),
        session(IDC_ADMIN, "carol", OTHER),
        session("AWSReservedSSO_Billing_00000000000000ff", "Carol", OTHER),
    ],
)
def test_person_of_with_identity_center_across_permission_sets_and_accounts_is_one_person(arn: str) -> None:
    assert person_of(arn).key == "idc:carol"
    assert person_of(arn).kind == "identity_center"


@pytest.mark.parametrize(
    "role",
    [
        "AWSReservedSSO_Admin_0123456789abcde",  # 15 hex digits
        "AWSReservedSSO_0123456789abcdef",  # no permission set
        "MyAWSReservedSSO_Admin_0123456789abcdef",
        "DevRole",
    ],
)
def test_person_of_with_other_role_session_keys_account_role_and_session(role: str) -> None:
    person = person_of(session(role, "Carol"))
    assert person.kind == "identity_role"
    assert person.key == f"role:{MEMBER}:{role.lower()}/carol"
    assert person.session_name == "Carol"
    assert person.role_name == role
    assert person.label == f"Carol (session of {role}, {MEMBER})"


def test_person_of_with_the_same_session_name_of_a_role_in_two_accounts_gives_two_persons() -> None:
    assert person_of(session("DevRole", "carol")).key != person_of(session("DevRole", "carol", OTHER)).key


@pytest.mark.parametrize(
    "arn",
    [
        f"arn:aws:iam::{MEMBER}:root",
        f"arn:aws:iam::{MEMBER}:role/DevRole",
        f"arn:aws:iam::{MEMBER}:group/admins",
        "*",
        "AIDAEXAMPLEDELETED12",
    ],
)
def test_person_of_with_a_non_person_arn_is_refused(arn: str) -> None:
    with pytest.raises(InvalidPrincipalError):
        person_of(arn)


# -- acceptance -----------------------------------------------------------------------------------


@pytest.mark.parametrize("arn", [user("alice"), session(IDC_ADMIN, "carol"), session(IDC_READ, "carol", OTHER)])
def test_check_person_with_iam_user_or_identity_center_needs_no_listing(arn: str) -> None:
    assert check_person(caller(arn), ()) == person_of(arn)


def test_check_person_with_unlisted_role_session_is_refused_as_not_a_person() -> None:
    with pytest.raises(NotAPersonError) as raised:
        check_person(caller(session("DevRole", "alice")), ())
    assert isinstance(raised.value, ForbiddenError)
    assert raised.value.code == "not_a_person"
    assert raised.value.status == 403
    assert "identity_roles" in raised.value.message
    assert "DevRole" in raised.value.message


def test_check_person_with_listed_identity_role_accepts_its_sessions() -> None:
    person = check_person(caller(session("SamlEngineers", "dana@example.com")), [SAML_ROLE])
    assert person.kind == "identity_role"
    assert person.key == f"role:{MEMBER}:samlengineers/dana@example.com"


@pytest.mark.parametrize(
    ("arn", "listed"),
    [
        (session("SamlEngineers", "dana", OTHER), [SAML_ROLE]),  # same role name, other account
        (session("DevRole", "dana"), [SAML_ROLE]),  # another role of the same account
        (session("SamlEngineers", "dana"), [f"arn:aws:iam::{MEMBER}:user/SamlEngineers"]),  # not a role ARN
    ],
)
def test_check_person_with_a_role_listed_elsewhere_is_still_not_a_person(arn: str, listed: list[str]) -> None:
    with pytest.raises(NotAPersonError):
        check_person(caller(arn), listed)


# -- patterns -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arn", "patterns", "expected"),
    [
        (user("Alice", path="ops/"), [f"iam:{MEMBER}:alice"], True),
        (user("alice"), [f"iam:{MEMBER}:ALICE"], True),  # person keys compare case-insensitively
        (user("alice", OTHER), [f"iam:{MEMBER}:alice"], False),
        (user("alice", OTHER), ["iam:*:alice"], True),
        (session(IDC_READ, "Carol", OTHER), ["idc:carol"], True),
        (session(IDC_ADMIN, "carol@example.com"), ["idc:*@example.com"], True),
        (user("carol"), ["idc:carol"], False),  # an IAM user is not the Identity Center user of that name
        (session(IDC_ADMIN, "carol"), [f"iam:{MEMBER}:carol"], False),
        (session("SamlEngineers", "dana"), [f"role:{MEMBER}:samlengineers/*"], True),
        (session("SamlEngineers", "dana"), ["idc:dana"], False),
        # ARN globs still apply, case-sensitively as IAM compares ARNs
        (user("alice"), [f"arn:aws:iam::{MEMBER}:user/a*"], True),
        (user("Alice"), [f"arn:aws:iam::{MEMBER}:user/a*"], False),
        (session(IDC_ADMIN, "carol"), [MEMBER], True),  # a bare account id: any principal of that account
        (user("alice"), [], False),
        (f"arn:aws:iam::{MEMBER}:root", ["iam:*"], False),  # not a person: no person pattern matches it
    ],
)
def test_matches_person_with_person_key_and_arn_patterns(arn: str, patterns: list[str], expected: bool) -> None:
    assert matches_person(arn, patterns) is expected
    assert caller(arn).matches(patterns) is expected
