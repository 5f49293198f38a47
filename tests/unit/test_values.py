"""Durations, identities and request transitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trustgate.core.durations import format_duration, parse_duration
from trustgate.core.errors import (
    AlreadyDecidedError,
    ConflictError,
    ForbiddenError,
    InvalidPrincipalError,
    UnauthenticatedError,
    ValidationError,
)
from trustgate.core.identity import CallerPolicy, caller_from_identity, matches_any, principal_for_arn
from trustgate.core.ids import new_id
from trustgate.core.lifecycle import LEGAL_TRANSITIONS, check_transition
from trustgate.core.models import RequestStatus

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT1H", timedelta(hours=1)),
        ("PT1H30M", timedelta(minutes=90)),
        ("P1DT2H", timedelta(hours=26)),
        ("PT45S", timedelta(seconds=45)),
        (120, timedelta(minutes=120)),
        ("120", timedelta(minutes=120)),
        ("2h", timedelta(hours=2)),
        ("30m", timedelta(minutes=30)),
    ],
)
def test_parse_duration_accepts_iso8601_and_minutes(text: str | int, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "P", "PT", "1 hour", "-5", "PT0M", 0, "P1Y", True])
def test_parse_duration_refuses_malformed_values_with_a_hint(text: str | int) -> None:
    with pytest.raises(ValidationError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize("minutes", [1, 59, 60, 61, 1439, 1440, 1501])
def test_format_then_parse_round_trips(minutes: int) -> None:
    assert parse_duration(format_duration(timedelta(minutes=minutes))) == timedelta(minutes=minutes)


IDC_SESSION = "arn:aws:sts::222222222222:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/alice@example.com"


def test_caller_from_an_iam_user_is_that_user() -> None:
    caller = caller_from_identity(
        {"userArn": "arn:aws:iam::222222222222:user/ops/alice", "caller": "AIDAEXAMPLE", "accountId": "222222222222"},
        CallerPolicy(),
    )
    assert (caller.arn, caller.account, caller.unique_id, caller.kind) == (
        "arn:aws:iam::222222222222:user/ops/alice",
        "222222222222",
        "AIDAEXAMPLE",
        "user",
    )


def test_caller_from_a_role_session_is_the_session_principal() -> None:
    arn = "arn:aws:sts::222222222222:assumed-role/AWSReservedSSO_Admin_abc/alice@example.com"
    caller = caller_from_identity({"userArn": arn, "caller": "AROAEXAMPLE:alice@example.com"}, CallerPolicy())
    assert caller.arn == arn
    assert caller.unique_id == "AROAEXAMPLE"
    assert caller.kind == "session"


@pytest.mark.parametrize(("listed", "trusted"), [(frozenset({"222222222222"}), True), (frozenset(), False)])
def test_caller_from_an_identity_center_session_is_trusted_only_in_a_listed_account(
    listed: frozenset[str], trusted: bool
) -> None:
    policy = CallerPolicy(identity_center_account_ids=listed)
    caller = caller_from_identity({"userArn": IDC_SESSION, "caller": "AROAEXAMPLE:alice@example.com"}, policy)
    assert caller.trusted_identity_center is trusted
    assert caller.person.key == ("idc:alice@example.com" if trusted else "role:alice@example.com")


def test_caller_from_an_account_outside_the_allowed_accounts_is_forbidden() -> None:
    policy = CallerPolicy(allowed_account_ids=frozenset({"111111111111"}))
    with pytest.raises(ForbiddenError) as raised:
        caller_from_identity({"userArn": "arn:aws:iam::222222222222:user/alice", "caller": "AIDAEXAMPLE"}, policy)
    assert raised.value.code == "forbidden"
    assert "222222222222" in raised.value.message


def test_caller_from_another_partition_follows_the_caller_policy() -> None:
    identity: dict[str, object] = {"userArn": "arn:aws-us-gov:iam::222222222222:user/alice", "caller": "AIDAEXAMPLE"}
    assert caller_from_identity(identity, CallerPolicy(partition="aws-us-gov")).account == "222222222222"
    with pytest.raises(InvalidPrincipalError, match="partition"):
        caller_from_identity(identity, CallerPolicy())


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::222222222222:root",
        "arn:aws-us-gov:iam::222222222222:user/alice",
        "arn:aws:sts::222222222222:federated-user/bob",
        "arn:aws:iam::222222222222:role/Admin",
        "anonymous",
    ],
)
def test_callers_that_can_never_be_granted_are_refused(arn: str) -> None:
    with pytest.raises(InvalidPrincipalError):
        principal_for_arn(arn)


@pytest.mark.parametrize("identity", [{"sourceIp": "203.0.113.1"}, {"userArn": ""}, {"userArn": None}])
def test_an_unsigned_request_is_unauthenticated(identity: dict[str, object]) -> None:
    with pytest.raises(UnauthenticatedError):
        caller_from_identity(identity, CallerPolicy())
    with pytest.raises(UnauthenticatedError):  # before any account rule: there is no account to judge
        caller_from_identity(identity, CallerPolicy(allowed_account_ids=frozenset({"111111111111"})))


@pytest.mark.parametrize(
    ("arn", "patterns", "expected"),
    [
        ("arn:aws:iam::222222222222:user/alice", ["arn:aws:iam::222222222222:user/*"], True),
        ("arn:aws:iam::222222222222:user/alice", ["arn:aws:iam::222222222222:user/Alice"], False),
        ("arn:aws:iam::222222222222:user/alice", ["222222222222"], True),
        ("arn:aws:iam::222222222222:user/alice", ["333333333333"], False),
        ("arn:aws:iam::222222222222:user/alice", [], False),
    ],
)
def test_arn_patterns(arn: str, patterns: list[str], expected: bool) -> None:
    assert matches_any(arn, patterns) is expected


@pytest.mark.parametrize("current", list(RequestStatus))
@pytest.mark.parametrize("target", list(RequestStatus))
def test_only_documented_transitions_are_legal(current: RequestStatus, target: RequestStatus) -> None:
    legal = target in LEGAL_TRANSITIONS.get(current, frozenset())
    if legal:
        check_transition(current, target)
    else:
        with pytest.raises(ConflictError):
            check_transition(current, target)


def test_deciding_a_decided_request_is_already_decided() -> None:
    with pytest.raises(AlreadyDecidedError):
        check_transition(RequestStatus.DENIED, RequestStatus.ACTIVE)


def test_ids_sort_by_time_and_do_not_repeat() -> None:
    early, late = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    ids = [new_id(early) for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert max(ids) < new_id(late)
    assert len(ids[0]) == 26
