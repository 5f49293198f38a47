"""Persons: the one human behind possibly many ARNs, and which callers count as one (pure)."""

from __future__ import annotations

import pytest

from trustgate.core.errors import ForbiddenError, InvalidPrincipalError, NotAPersonError
from trustgate.core.identity import (
    Caller,
    CallerPolicy,
    Person,
    caller_for_arn,
    check_person,
    matches_person,
    person_of,
)

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


def caller(arn: str, trusted: bool = True) -> Caller:
    """A verified caller; `trusted`: its account is one the deployer lists in IdentityCenterAccountIds."""
    kind = "session" if ":sts::" in arn else "user"
    return Caller(arn, arn.split(":")[4], None, kind, trusted_identity_center=trusted)


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
def test_person_of_with_other_role_session_keys_the_lowercased_session_name(role: str) -> None:
    person = person_of(session(role, "Carol"))
    assert person == Person("role:carol", "identity_role", "Carol", role)
    assert person.session_name == "Carol"
    assert person.role_name == role


def test_person_label_with_identity_role_names_the_session_and_role_but_no_bogus_account() -> None:
    label = person_of(session("DevRole", "Carol")).label
    assert label == "Carol (session of DevRole)"


def test_person_of_with_the_same_session_name_through_two_roles_or_accounts_is_one_person() -> None:
    # Identity roles are federation roles whose session name the IdP sets: one name is one IdP user.
    keys = {
        person_of(session("DevRole", "carol")).key,
        person_of(session("DevRole", "Carol", OTHER)).key,
        person_of(session("SamlEngineers", "CAROL")).key,
    }
    assert keys == {"role:carol"}


def test_person_of_with_an_identity_role_and_identity_center_of_one_name_gives_two_persons() -> None:
    assert person_of(session("SamlEngineers", "carol")).key == "role:carol"
    assert person_of(session(IDC_ADMIN, "carol")).key == "idc:carol"


# -- Identity Center trust --------------------------------------------------------------------------


def test_person_of_trusts_identity_center_by_default_as_stored_requests_do() -> None:
    arn = session(IDC_ADMIN, "Carol")
    assert person_of(arn) == person_of(arn, trusted_identity_center=True)
    assert person_of(arn).kind == "identity_center"


@pytest.mark.parametrize("role", [IDC_ADMIN, IDC_READ])
def test_person_of_with_untrusted_identity_center_is_an_ordinary_role_session(role: str) -> None:
    # Anyone with iam:CreateRole can name a role AWSReservedSSO_<set>_<16 hex> and pick its session name.
    person = person_of(session(role, "Carol"), trusted_identity_center=False)
    assert person == Person("role:carol", "identity_role", "Carol", role)
    assert person.key != person_of(session(role, "Carol")).key


def test_person_of_with_untrusted_flag_leaves_iam_users_alone() -> None:
    assert person_of(user("Alice"), trusted_identity_center=False) == person_of(user("Alice"))


def test_caller_person_follows_the_callers_trust() -> None:
    arn = session(IDC_ADMIN, "carol")
    assert Caller(arn, MEMBER, None, "session").trusted_identity_center is False  # untrusted unless told
    assert Caller(arn, MEMBER, None, "session").person.key == "role:carol"
    assert caller(arn, trusted=True).person.key == "idc:carol"
    assert caller(arn, trusted=False).person == person_of(arn, trusted_identity_center=False)


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
def test_check_person_with_iam_user_or_trusted_identity_center_needs_no_listing(arn: str) -> None:
    assert check_person(caller(arn), ()) == person_of(arn)


def test_check_person_with_iam_user_needs_no_identity_center_trust() -> None:
    assert check_person(caller(user("alice"), trusted=False), ()) == person_of(user("alice"))


@pytest.mark.parametrize("arn", [session(IDC_ADMIN, "carol"), session(IDC_READ, "carol", OTHER)])
def test_check_person_with_untrusted_identity_center_is_not_a_person_naming_the_deploy_setting(arn: str) -> None:
    with pytest.raises(NotAPersonError) as raised:
        check_person(caller(arn, trusted=False), ())
    assert isinstance(raised.value, ForbiddenError)
    assert raised.value.code == "not_a_person"
    assert raised.value.status == 403
    message = raised.value.message
    assert "IdentityCenterAccountIds" in message
    assert "SCP" in message
    assert arn.split(":")[4] in message  # the account it does not trust
    assert arn in message


def test_check_person_with_untrusted_identity_center_role_listed_in_identity_roles_is_that_role_session() -> None:
    listed = [f"arn:aws:iam::{MEMBER}:role/aws-reserved/sso.amazonaws.com/{IDC_ADMIN}"]
    person = check_person(caller(session(IDC_ADMIN, "Carol"), trusted=False), listed)
    assert person == Person("role:carol", "identity_role", "Carol", IDC_ADMIN)


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
    assert person.key == "role:dana@example.com"


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
        (session("SamlEngineers", "dana"), ["role:dana"], True),
        (session("SamlEngineers", "Dana", OTHER), ["role:DANA"], True),  # any identity role, any account
        (session("SamlEngineers", "dana"), ["role:d*"], True),
        (session("SamlEngineers", "dana"), [f"role:{MEMBER}:samlengineers/*"], False),  # the old key form
        (session("SamlEngineers", "dana"), ["idc:dana"], False),
        (session("SamlEngineers", "dana"), [f"iam:{MEMBER}:dana"], False),
        # ARN globs still apply, case-sensitively as IAM compares ARNs
        (user("alice"), [f"arn:aws:iam::{MEMBER}:user/a*"], True),
        (user("Alice"), [f"arn:aws:iam::{MEMBER}:user/a*"], False),
        (session(IDC_ADMIN, "carol"), [MEMBER], True),  # a bare account id: any principal of that account
        (user("alice"), [], False),
    ],
)
def test_matches_person_with_person_key_and_arn_patterns(arn: str, patterns: list[str], expected: bool) -> None:
    assert matches_person(arn, patterns) is expected
    assert caller(arn).matches(patterns) is expected


def test_matches_person_with_a_non_person_arn_matches_no_person_pattern() -> None:
    root = f"arn:aws:iam::{MEMBER}:root"
    assert matches_person(root, ["iam:*", "idc:*", "role:*"]) is False
    assert matches_person(root, [MEMBER]) is True  # an account pattern is an ARN pattern
    with pytest.raises(InvalidPrincipalError):  # and no Caller is ever built for it
        caller_for_arn(root, CallerPolicy())


@pytest.mark.parametrize(
    "patterns",
    [["idc:carol"], ["idc:*"], ["idc:c*"], [f"arn:aws:iam::{MEMBER}:user/carol", "idc:carol"]],
)
def test_matches_with_an_untrusted_identity_center_looking_session_does_not_match_idc_patterns(
    patterns: list[str],
) -> None:
    forged = session(IDC_ADMIN, "carol")
    assert caller(forged, trusted=False).matches(patterns) is False
    assert matches_person(forged, patterns, person_of(forged, trusted_identity_center=False)) is False
    assert caller(forged, trusted=True).matches(patterns) is True


def test_matches_with_an_untrusted_identity_center_looking_session_matches_nothing() -> None:
    # Patterns naming AWSReservedSSO_* roles mean Identity Center, which a look-alike may only imitate.
    forged = session(IDC_ADMIN, "carol")
    for patterns in (["role:carol"], ["idc:carol"], [f"arn:aws:sts::{MEMBER}:assumed-role/{IDC_ADMIN}/*"], [MEMBER]):
        assert caller(forged, trusted=False).matches(patterns) is False


def test_matches_with_a_trusted_identity_center_session_matches_arn_and_person_patterns() -> None:
    trusted = caller(session(IDC_ADMIN, "carol"), trusted=True)
    assert trusted.matches([f"arn:aws:sts::{MEMBER}:assumed-role/{IDC_ADMIN}/*"])
    assert trusted.matches([MEMBER])
    assert trusted.matches(["idc:carol"])
    assert not trusted.matches(["role:carol"])


def test_matches_person_without_a_person_reads_the_arn_as_a_stored_request_does() -> None:
    # Stored requests were made by callers already accepted, so their ARN is read as trusted.
    assert matches_person(session(IDC_ADMIN, "carol"), ["idc:carol"]) is True


# -- callers and the deployment's caller policy -----------------------------------------------------

IDC_TRUSTING = CallerPolicy(identity_center_account_ids=frozenset({MEMBER}))


def test_caller_for_arn_with_an_identity_center_account_trusts_its_identity_center_sessions() -> None:
    built = caller_for_arn(session(IDC_ADMIN, "carol"), IDC_TRUSTING, "AROAEXAMPLE")
    assert built == Caller(session(IDC_ADMIN, "carol"), MEMBER, "AROAEXAMPLE", "session", True)
    assert check_person(built, ()).key == "idc:carol"


def test_caller_for_arn_with_an_account_not_listed_for_identity_center_does_not_trust_it() -> None:
    built = caller_for_arn(session(IDC_ADMIN, "carol", OTHER), IDC_TRUSTING)
    assert built.trusted_identity_center is False
    assert built.person.key == "role:carol"
    with pytest.raises(NotAPersonError, match="IdentityCenterAccountIds"):
        check_person(built, ())


def test_caller_for_arn_with_no_identity_center_accounts_trusts_none() -> None:
    built = caller_for_arn(session(IDC_ADMIN, "carol"), CallerPolicy())
    assert built.trusted_identity_center is False
    with pytest.raises(NotAPersonError):
        check_person(built, ())


def test_caller_for_arn_with_an_iam_user_is_that_user_whatever_the_trust() -> None:
    for policy in (CallerPolicy(), IDC_TRUSTING):
        built = caller_for_arn(user("Alice", path="ops/"), policy, "AIDAEXAMPLE")
        assert (built.arn, built.account, built.unique_id, built.kind) == (
            user("Alice", path="ops/"),
            MEMBER,
            "AIDAEXAMPLE",
            "user",
        )
        assert built.person.key == f"iam:{MEMBER}:alice"


@pytest.mark.parametrize("arn", [user("alice", OTHER), session(IDC_ADMIN, "carol", OTHER)])
def test_caller_for_arn_with_an_account_outside_allowed_account_ids_is_forbidden(arn: str) -> None:
    policy = CallerPolicy(
        allowed_account_ids=frozenset({MEMBER}), identity_center_account_ids=frozenset({MEMBER, OTHER})
    )
    with pytest.raises(ForbiddenError) as raised:
        caller_for_arn(arn, policy)
    assert type(raised.value) is ForbiddenError
    assert (raised.value.status, raised.value.code) == (403, "forbidden")
    assert OTHER in raised.value.message


def test_caller_for_arn_with_allowed_account_ids_admits_those_accounts() -> None:
    policy = CallerPolicy(allowed_account_ids=frozenset({MEMBER, OTHER}))
    assert caller_for_arn(user("alice", OTHER), policy).account == OTHER
    assert caller_for_arn(user("alice"), CallerPolicy()).account == MEMBER  # empty: every account


@pytest.mark.parametrize(
    "arn",
    [
        f"arn:aws:iam::{MEMBER}:root",
        f"arn:aws:iam::{MEMBER}:role/DevRole",
        "arn:aws-us-gov:iam::222222222222:user/alice",
        "anonymous",
    ],
)
def test_caller_for_arn_with_a_principal_that_can_never_be_granted_is_refused(arn: str) -> None:
    with pytest.raises(InvalidPrincipalError):
        caller_for_arn(arn, IDC_TRUSTING)


def test_caller_for_arn_in_another_partition_uses_the_policys_partition() -> None:
    arn = "arn:aws-us-gov:iam::222222222222:user/alice"
    assert caller_for_arn(arn, CallerPolicy(partition="aws-us-gov")).arn == arn
    with pytest.raises(InvalidPrincipalError, match="partition"):
        caller_for_arn(user("alice"), CallerPolicy(partition="aws-us-gov"))
