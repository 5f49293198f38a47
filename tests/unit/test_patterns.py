"""Admin-supplied patterns are evaluated in linear time (RE2), and TrustGate's own ARN checks are strict."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from trustgate.core.errors import InvalidPrincipalError, RuleViolationError
from trustgate.core.identity import account_of, matches_any, matches_person, person_of, principal_for_arn, role_name_of
from trustgate.core.models import STORED, RolePolicy
from trustgate.core.patterns import (
    MAX_ARN_PATTERN,
    MAX_TICKET_PATTERN,
    PatternError,
    check_glob,
    compile_regex,
    glob_matches,
    regex_fullmatch,
)
from trustgate.core.rules import check_request, effective_policy
from trustgate.core.settings import Settings

pytestmark = pytest.mark.unit

ROLE = "arn:aws:iam::111111111111:role/PumpCustomerAccess"
ALICE = "arn:aws:iam::222222222222:user/alice"
SETTINGS = Settings(managed_role_arns=[ROLE], organization_id="o-exampleorg12")


def errors_of(policy: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as caught:
        RolePolicy.model_validate(policy)
    return [dict(e) for e in caught.value.errors()]


# -- the ticket pattern: RE2 ---------------------------------------------------------------------


def test_a_catastrophic_pattern_for_pythons_re_is_evaluated_by_re2() -> None:
    # `^(a+)+$` backtracks exponentially in `re` (16 s at 29 characters); RE2 answers in one pass.
    assert regex_fullmatch(r"^(a+)+$", "a" * 28 + "!") is False
    assert regex_fullmatch(r"^(a+)+$", "a" * 10_000) is True


def test_re2_semantics_not_pythons_re() -> None:
    # RE2 knows Unicode classes (`re` has no \p), and its \d is ASCII (`re`'s matches any Unicode digit).
    assert regex_fullmatch(r"\p{Lu}+-[0-9]+", "OPS-12") is True
    assert regex_fullmatch(r"OPS-\d+", "OPS-١٢") is False


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"(\d)\1", "invalid escape sequence"),  # backreference
        (r"OPS-(?=\d)", "invalid perl operator"),  # lookahead
        (r"(?<!x)OPS", "invalid perl operator"),  # lookbehind
        ("OPS-(", "missing )"),
        ("a{1001}", "invalid repetition size"),
        ("x" * (MAX_TICKET_PATTERN + 1), "at most 200"),
    ],
)
def test_patterns_re2_cannot_compile_are_refused_saying_why(pattern: str, why: str) -> None:
    with pytest.raises(PatternError, match=why.replace("(", r"\(").replace(")", r"\)")):
        compile_regex(pattern)
    (error,) = errors_of({"ticket_pattern": pattern})
    assert error["type"] == "invalid_pattern"
    assert "ticket_pattern" in error["msg"]
    assert why in error["msg"]


def test_a_ticket_pattern_of_200_characters_is_accepted() -> None:
    assert RolePolicy(ticket_pattern="a" * MAX_TICKET_PATTERN).ticket_pattern == "a" * MAX_TICKET_PATTERN


def test_a_stored_pattern_re2_refuses_stays_readable_and_refuses_requests() -> None:
    # Saved before RE2 judged patterns: the policy still loads (revoke and reconcile read it) ...
    policy = RolePolicy.model_validate({"ticket_pattern": r"(OPS)-\1"}, context=STORED)
    effective = effective_policy(ROLE, policy, SETTINGS)
    # ... and a request is refused with the reason, never evaluated by a backtracking engine.
    with pytest.raises(RuleViolationError) as refused:
        check_request(timedelta(hours=1), "rotate the CloudTrail bucket policy", "OPS-OPS", effective)
    assert refused.value.code == "invalid_pattern"
    assert "ask an admin" in refused.value.message


def test_check_request_matches_the_whole_ticket() -> None:
    effective = effective_policy(ROLE, RolePolicy(ticket_pattern=r"OPS-[0-9]+"), SETTINGS)
    check_request(timedelta(hours=1), "rotate the CloudTrail bucket policy", "OPS-12", effective)
    for ticket in ("OPS-12\n", "xOPS-12", "OPS-12 and more"):
        with pytest.raises(RuleViolationError) as refused:
            check_request(timedelta(hours=1), "rotate the CloudTrail bucket policy", ticket, effective)
        assert refused.value.code == "ticket_invalid"


# -- ARN and person globs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "pattern", "expected"),
    [
        (ALICE, "arn:aws:iam::*:user/*", True),
        (ALICE, "arn:aws:iam::222222222222:user/al?ce", True),
        (ALICE, "arn:aws:iam::222222222222:user/ALICE", False),  # ARNs compare case-sensitively
        (ALICE, "arn:aws:iam::222222222222:user/a", False),  # the whole ARN must match
        ("arn:aws:iam::222222222222:user/a[1]", "arn:aws:iam::222222222222:user/a[1]", True),  # brackets literal
        ("arn:aws:iam::222222222222:user/a1", "arn:aws:iam::222222222222:user/a[1]", False),
        ("a.b", "a?b", True),
        ("axb", "a.b", False),  # `.` is literal, not a regex wildcard
    ],
)
def test_glob_matches_like_iam_wildcards(text: str, pattern: str, expected: bool) -> None:
    assert glob_matches(text, pattern) is expected


def test_globs_with_many_stars_match_in_linear_time() -> None:
    # fnmatch's translation backtracks on this shape; RE2 does not (no timing: just that it answers).
    assert glob_matches("a" * 5000 + "b", "*a" * 60 + "*c") is False
    assert matches_any("arn:aws:iam::222222222222:user/" + "a" * 1500, ["arn:*" + "*a" * 200 + "*b"]) is False


def test_person_patterns_and_account_patterns_still_match() -> None:
    assert matches_person(ALICE, ["iam:222222222222:*"]) is True
    assert matches_person(ALICE, ["idc:*"]) is False
    assert matches_any(ALICE, ["222222222222"]) is True
    assert matches_any(ALICE, ["٢٢٢٢٢٢٢٢٢٢٢٢"]) is False  # twelve non-ASCII digits are no account id


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("arn:aws:iam::222222222222:user/alïce", "ASCII"),
        ("arn:aws:iam::222222222222:user/alice\n", "ASCII"),
        ("arn:aws:iam::222222222222:user/alice bob", "ASCII"),
        ("", "empty"),
        ("arn:aws:iam::222222222222:user/" + "a" * MAX_ARN_PATTERN, "at most 2048"),
    ],
)
def test_requester_patterns_refused_as_invalid_patterns(pattern: str, why: str) -> None:
    with pytest.raises(PatternError, match=why):
        check_glob(pattern)
    (error,) = errors_of({"requester_patterns": [ALICE, pattern]})
    assert error["type"] == "invalid_pattern"


@pytest.mark.parametrize(
    "policy",
    [
        {"approvers": ["arn:aws:iam::222222222222:user/bób"]},
        {"admins": ["arn:aws:iam::222222222222:user/carol\n"]},
        {"auto_approve": [{"principals": ["idc:" + "a" * MAX_ARN_PATTERN]}]},
    ],
)
def test_approver_admin_and_auto_approve_patterns_are_checked_like_requester_patterns(policy: dict[str, Any]) -> None:
    (error,) = errors_of(policy)
    assert error["type"] == "invalid_pattern"


def test_requester_patterns_of_every_kind_are_accepted() -> None:
    patterns = ["arn:aws:iam::222222222222:user/*", "222222222222", "idc:alice@example.com", "role:?ob", "iam:*"]
    assert RolePolicy(requester_patterns=patterns).requester_patterns == patterns


# -- TrustGate's own ARN and tag checks: ASCII, \Z, bounded ----------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "arn:aws:iam::222222222222:user/alice\n",  # `$` would have let the newline through
        "arn:aws:iam::222222222222:user/alïce",
        "arn:aws:iam::222222222222:user/*",
        "٢٢٢٢٢٢٢٢٢٢٢٢",
        "222222222222\n",
        "arn:aws:iam::222222222222:role/" + "a" * 2048,
    ],
)
def test_standing_principals_must_be_plain_ascii_arns(value: str) -> None:
    (error,) = errors_of({"standing_principals": [value]})
    assert error["type"] == "value_error"


def test_standing_principals_accept_accounts_users_roles_and_sessions() -> None:
    values = [
        "222222222222",
        "arn:aws:iam::222222222222:user/ops/alice",
        "arn:aws:iam::222222222222:role/Ops",
        "arn:aws:sts::222222222222:assumed-role/Ops/alice",
    ]
    assert RolePolicy(standing_principals=values).standing_principals == values


@pytest.mark.parametrize(
    "value",
    ["arn:aws:iam::222222222222:role/Saml\n", "arn:aws:iam::222222222222:role/SämL", "arn:aws:iam::2222:role/Saml"],
)
def test_identity_roles_must_be_plain_ascii_role_arns(value: str) -> None:
    (error,) = errors_of({"identity_roles": [value]})
    assert error["type"] == "value_error"


@pytest.mark.parametrize(
    "tags",
    [
        {"team\n": "ops"},
        {"tëam": "ops"},
        {"": "ops"},
        {"k" * 129: "ops"},
        {"aws:username": "alice"},
        {"team": "ops\n"},
        {"team": "v" * 257},
        {f"tag{i}": "x" for i in range(51)},
    ],
)
def test_principal_tags_follow_iam_limits(tags: dict[str, str]) -> None:
    (error,) = errors_of({"requester_principal_tags": tags})
    assert error["type"] == "value_error"


def test_principal_tags_within_iam_limits_are_accepted() -> None:
    tags = {"team": "platform ops", "cost-center": "", "k" * 128: "v" * 256}
    assert RolePolicy(requester_principal_tags=tags).requester_principal_tags == tags


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::222222222222:user/alice\n",
        "arn:aws:sts::222222222222:assumed-role/Ops/alice\n",
        "arn:aws:iam::222222222222:user/alïce",
    ],
)
def test_caller_arns_with_a_trailing_newline_or_non_ascii_are_no_principals(arn: str) -> None:
    with pytest.raises(InvalidPrincipalError):
        principal_for_arn(arn)
    with pytest.raises(InvalidPrincipalError):
        person_of(arn)


def test_role_names_and_accounts_are_read_strictly() -> None:
    with pytest.raises(InvalidPrincipalError):
        role_name_of(ROLE + "\n")
    with pytest.raises(InvalidPrincipalError):
        account_of("arn:aws:iam::٢٢٢٢٢٢٢٢٢٢٢٢:user/alice")
