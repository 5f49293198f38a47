"""The session guard: an inline Deny that ends each person's sessions at their coverage's end (pure)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustgate.core.coverage import Coverage, GrantSpan, coverages_of
from trustgate.core.errors import ConflictError, SessionGuardFullError
from trustgate.core.identity import person_of
from trustgate.core.session_guard import (
    SESSION_LIFETIME_MAX,
    GuardSpec,
    guard_window,
    needs_start_rule,
    render_session_guard,
    session_userid,
)
from trustgate.core.trust_policy import Statement, policy_size, statements_of

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)
ROLE_ID = "AROAEXAMPLEROLEID0001"
SPEC = GuardSpec(role_id=ROLE_ID, keep_for=H)
ALICE = "arn:aws:iam::222222222222:user/Alice"
BOB = "arn:aws:iam::222222222222:user/bob"
CAROL = "arn:aws:sts::222222222222:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/carol@example.com"
DAVE = "arn:aws:sts::333333333333:assumed-role/AWSReservedSSO_ReadOnly_fedcba9876543210/dave"


def coverage(
    arn: str, start: timedelta, end: timedelta, earlier: timedelta | None = None, left: timedelta | None = None
) -> Coverage:
    """A coverage from NOW + start to NOW + end; `earlier`: until when the person's previous coverage could
    issue sessions; `left`: when a sync took the person out of the trust policy after this one ended."""
    earlier_until = None if earlier is None else NOW + earlier
    left_trust_at = None if left is None else NOW + left
    return Coverage(
        person_of(arn), (arn,), NOW + start, NOW + end, left_trust_at=left_trust_at, earlier_until=earlier_until
    )


def sids(guard: dict[str, object] | None) -> list[str]:
    return [s["Sid"] for s in statements_of(guard or {})]


def userids(statement: Statement) -> list[str]:
    named = statement["Condition"]["StringEquals"]["aws:userid"]
    return [named] if isinstance(named, str) else list(named)


def deny(sid: str, operator: str, key: str, at: str, userid: str) -> dict[str, object]:
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {operator: {key: at}, "StringEquals": {"aws:userid": userid}},
    }


def test_render_session_guard_with_a_first_coverage_denies_only_from_the_end() -> None:
    # No grant statement named Alice before: no session of hers predates this coverage.
    guard = render_session_guard([coverage(ALICE, -10 * M, 1 * H)], SPEC, NOW)
    assert guard == {
        "Version": "2012-10-17",
        "Statement": [
            deny(
                "TrustGateEnd1", "DateGreaterThanEquals", "aws:CurrentTime", "2026-11-26T11:00:00Z", f"{ROLE_ID}:Alice"
            )
        ],
    }


def test_render_session_guard_with_a_recent_earlier_coverage_also_denies_sessions_issued_before_the_start() -> None:
    guard = render_session_guard([coverage(ALICE, -10 * M, 1 * H, earlier=-30 * M)], SPEC, NOW)
    assert guard == {
        "Version": "2012-10-17",
        "Statement": [
            deny(
                "TrustGateEnd1", "DateGreaterThanEquals", "aws:CurrentTime", "2026-11-26T11:00:00Z", f"{ROLE_ID}:Alice"
            ),
            deny("TrustGateStart1", "DateLessThan", "aws:TokenIssueTime", "2026-11-26T09:50:00Z", f"{ROLE_ID}:Alice"),
        ],
    }


@pytest.mark.parametrize(
    ("earlier", "start_rule"),
    [
        (None, False),
        (-10 * M, True),  # ended right when the new coverage began: its sessions are surely alive
        (-H + timedelta(seconds=1), True),  # a session issued just before that end lives one more second
        (-H, False),  # keep_for (the longest session) has passed since that end: all its sessions are dead
        (-3 * H, False),
    ],
)
def test_render_session_guard_with_an_earlier_coverage_adds_a_start_rule_only_while_its_sessions_may_live(
    earlier: timedelta | None, start_rule: bool
) -> None:
    guard = render_session_guard([coverage(ALICE, 0 * M, 1 * H, earlier=earlier)], SPEC, NOW)
    assert guard_window(guard, f"{ROLE_ID}:Alice") == (NOW if start_rule else None, NOW + H)
    assert len(statements_of(guard or {})) == (2 if start_rule else 1)


def test_render_session_guard_with_a_revoke_then_regrant_kills_the_revoked_sessions() -> None:
    # G1 ran 09:00-09:40 (revoked); G2 was granted at 09:50, while G1's sessions may still be alive.
    spans = [GrantSpan(ALICE, NOW - H, NOW - 20 * M, "G1"), GrantSpan(ALICE, NOW - 10 * M, NOW + H, "G2")]
    guard = render_session_guard(coverages_of(spans, NOW, H).kept, SPEC, NOW)
    assert guard_window(guard, f"{ROLE_ID}:Alice") == (NOW - 10 * M, NOW + H)


def test_render_session_guard_with_identity_center_person_names_their_literal_session() -> None:
    guard = render_session_guard([coverage(CAROL, 0 * M, 1 * H, earlier=-5 * M)], SPEC, NOW)
    assert guard_window(guard, f"{ROLE_ID}:carol@example.com") == (NOW, NOW + H)
    assert session_userid(ROLE_ID, "carol@example.com") == f"{ROLE_ID}:carol@example.com"


def test_render_session_guard_with_equal_ends_shares_one_end_statement() -> None:
    covered = [coverage(BOB, -20 * M, 1 * H, earlier=-25 * M), coverage(ALICE, -10 * M, 1 * H, earlier=-15 * M)]
    statements = statements_of(render_session_guard(covered, SPEC, NOW) or {})
    assert [s["Sid"] for s in statements] == ["TrustGateEnd1", "TrustGateStart1", "TrustGateStart2"]
    assert userids(statements[0]) == [f"{ROLE_ID}:Alice", f"{ROLE_ID}:bob"]
    # starts in time order, one statement each
    assert [(s["Condition"]["DateLessThan"]["aws:TokenIssueTime"], userids(s)) for s in statements[1:]] == [
        ("2026-11-26T09:40:00Z", [f"{ROLE_ID}:bob"]),
        ("2026-11-26T09:50:00Z", [f"{ROLE_ID}:Alice"]),
    ]


def test_render_session_guard_with_equal_starts_shares_one_start_statement() -> None:
    covered = [
        coverage(ALICE, 0 * M, 2 * H, earlier=-1 * M),
        coverage(BOB, 0 * M, 1 * H, earlier=-2 * M),
        coverage(CAROL, 0 * M, 3 * H, earlier=-3 * M),
        coverage(DAVE, 0 * M, 3 * H),  # a first coverage: ends with Carol, needs no start rule
    ]
    statements = statements_of(render_session_guard(covered, SPEC, NOW) or {})
    ends = [s for s in statements if s["Sid"].startswith("TrustGateEnd")]
    starts = [s for s in statements if s["Sid"].startswith("TrustGateStart")]
    assert [s["Sid"] for s in ends] == ["TrustGateEnd1", "TrustGateEnd2", "TrustGateEnd3"]
    assert [s["Condition"]["DateGreaterThanEquals"]["aws:CurrentTime"] for s in ends] == [
        "2026-11-26T11:00:00Z",
        "2026-11-26T12:00:00Z",
        "2026-11-26T13:00:00Z",
    ]
    assert [userids(s) for s in ends] == [
        [f"{ROLE_ID}:bob"],
        [f"{ROLE_ID}:Alice"],
        [f"{ROLE_ID}:carol@example.com", f"{ROLE_ID}:dave"],
    ]
    assert [s["Sid"] for s in starts] == ["TrustGateStart1"]
    assert userids(starts[0]) == sorted(f"{ROLE_ID}:{n}" for n in ("Alice", "bob", "carol@example.com"))


# -- keeping and pruning ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "named"),
    [
        (NOW + 1 * H, True),  # just ended: the end rule is what stops live sessions now
        (NOW + 2 * H - timedelta(seconds=1), True),  # a session issued just before the end may still be alive
        (NOW + 2 * H, False),  # none can be: pruned
    ],
)
def test_render_session_guard_with_an_ended_coverage_keeps_it_for_keep_for_then_prunes_it(
    now: datetime, named: bool
) -> None:
    covered = [coverage(ALICE, 0 * M, 1 * H, earlier=-1 * M), coverage(BOB, 0 * M, 5 * H, earlier=-1 * M)]
    guard = render_session_guard(covered, SPEC, now)
    assert guard_window(guard, f"{ROLE_ID}:bob") == (NOW, NOW + 5 * H)
    # Ended, the end rule alone denies every call of hers from now on: her start rule is no longer needed.
    expected = (None, NOW + H) if named else (None, None)
    assert guard_window(guard, f"{ROLE_ID}:Alice") == expected
    assert (f"{ROLE_ID}:Alice" in str(guard)) is named
    assert sids(guard) == (["TrustGateEnded"] if named else []) + ["TrustGateEnd1", "TrustGateStart1"]


# -- ended coverages --------------------------------------------------------------------------------


def test_render_session_guard_with_ended_coverages_shares_one_ended_statement_at_the_latest_end() -> None:
    covered = [
        coverage(ALICE, -2 * H, -30 * M, earlier=-3 * H),  # her start rule would still be needed were she live
        coverage(BOB, -1 * H, -10 * M),
        coverage(CAROL, -20 * M, 1 * H, earlier=-25 * M),
        coverage(DAVE, 0 * M, 2 * H),
    ]
    guard = render_session_guard(covered, SPEC, NOW)
    assert guard == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TrustGateEnded",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {
                    "DateGreaterThanEquals": {"aws:CurrentTime": "2026-11-26T09:50:00Z"},
                    "StringEquals": {"aws:userid": [f"{ROLE_ID}:Alice", f"{ROLE_ID}:bob"]},
                },
            },
            deny(
                "TrustGateEnd1",
                "DateGreaterThanEquals",
                "aws:CurrentTime",
                "2026-11-26T11:00:00Z",
                f"{ROLE_ID}:carol@example.com",
            ),
            deny(
                "TrustGateEnd2", "DateGreaterThanEquals", "aws:CurrentTime", "2026-11-26T12:00:00Z", f"{ROLE_ID}:dave"
            ),
            deny(
                "TrustGateStart1",
                "DateLessThan",
                "aws:TokenIssueTime",
                "2026-11-26T09:40:00Z",
                f"{ROLE_ID}:carol@example.com",
            ),
        ],
    }
    # guard_window reads what is rendered: an ended person's end is the shared one
    assert guard_window(guard, f"{ROLE_ID}:Alice") == (None, NOW - 10 * M)
    assert guard_window(guard, f"{ROLE_ID}:bob") == (None, NOW - 10 * M)
    assert guard_window(guard, f"{ROLE_ID}:carol@example.com") == (NOW - 20 * M, NOW + H)
    assert guard_window(guard, f"{ROLE_ID}:dave") == (None, NOW + 2 * H)


def test_render_session_guard_with_one_ended_coverage_names_its_own_end() -> None:
    guard = render_session_guard([coverage(ALICE, -1 * H, -5 * M, earlier=-90 * M)], SPEC, NOW)
    assert guard == {
        "Version": "2012-10-17",
        "Statement": [
            deny(
                "TrustGateEnded", "DateGreaterThanEquals", "aws:CurrentTime", "2026-11-26T09:55:00Z", f"{ROLE_ID}:Alice"
            )
        ],
    }


@pytest.mark.parametrize(
    ("end", "ended"),
    [
        (-timedelta(seconds=1), True),
        (0 * M, True),  # ends exactly now: no longer live
        (timedelta(seconds=1), False),
    ],
)
def test_render_session_guard_with_a_coverage_ending_now_counts_it_as_ended(end: timedelta, ended: bool) -> None:
    guard = render_session_guard([coverage(ALICE, -1 * H, end, earlier=-90 * M)], SPEC, NOW)
    assert sids(guard) == (["TrustGateEnded"] if ended else ["TrustGateEnd1", "TrustGateStart1"])
    assert guard_window(guard, f"{ROLE_ID}:Alice")[1] == NOW + end


def test_render_session_guard_with_ended_coverages_denies_every_one_of_them_from_now_on() -> None:
    covered = [coverage(ALICE, -3 * H, -50 * M), coverage(BOB, -2 * H, -20 * M), coverage(CAROL, -H, -35 * M)]
    guard = render_session_guard(covered, SPEC, NOW)
    assert sids(guard) == ["TrustGateEnded"]
    (ended,) = statements_of(guard or {})
    assert userids(ended) == sorted(f"{ROLE_ID}:{c.person.session_name}" for c in covered)
    shared = max(c.ends_at for c in covered)
    for c in covered:
        end = guard_window(guard, f"{ROLE_ID}:{c.person.session_name}")[1]
        assert end == shared
        assert c.ends_at <= end <= NOW  # so every call at or after now is denied, as at their own end


def test_render_session_guard_with_an_ended_coverage_leaves_the_live_ones_numbering_alone() -> None:
    live = [coverage(ALICE, 0 * M, 1 * H, earlier=-5 * M), coverage(BOB, 0 * M, 2 * H)]
    with_ended = [*live, coverage(CAROL, -H, -M, earlier=-2 * H)]
    assert sids(render_session_guard(live, SPEC, NOW)) == ["TrustGateEnd1", "TrustGateEnd2", "TrustGateStart1"]
    guard = render_session_guard(with_ended, SPEC, NOW)
    assert sids(guard) == ["TrustGateEnded", "TrustGateEnd1", "TrustGateEnd2", "TrustGateStart1"]
    assert statements_of(guard or {})[1:] == statements_of(render_session_guard(live, SPEC, NOW) or {})


# -- start rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("earlier", "keep_for", "expected"),
    [
        (None, 12 * H, False),  # a first coverage
        (-10 * M, H, True),
        (-H, H, False),  # earlier_until + keep_for == starts_at: every earlier session is dead at the start
        (-H + timedelta(seconds=1), H, True),
        (-3 * H, H, False),
        (-3 * H, 12 * H, True),  # the same history, judged with the longest session lifetime
    ],
)
def test_needs_start_rule_with_earlier_until_and_keep_for(
    earlier: timedelta | None, keep_for: timedelta, expected: bool
) -> None:
    assert needs_start_rule(coverage(ALICE, 0 * M, 1 * H, earlier=earlier), keep_for) is expected


def test_render_session_guard_with_an_earlier_coverage_that_left_trust_late_keeps_the_start_rule() -> None:
    # G1 ended 09:00 but the trust policy still named her until 09:40: sessions issued then may live past 10:00.
    spans = [
        GrantSpan(ALICE, NOW - 2 * H, NOW - H, "G1", NOW - 20 * M),
        GrantSpan(ALICE, NOW + 10 * M, NOW + H, "G2"),
    ]
    (kept,) = coverages_of(spans, NOW, H).kept
    assert kept.earlier_until == NOW - 20 * M
    guard = render_session_guard([kept], SPEC, NOW)
    assert guard_window(guard, f"{ROLE_ID}:Alice") == (NOW + 10 * M, NOW + H)
    # without the late departure her earlier sessions are all dead by the start: no start rule
    spans[0] = GrantSpan(ALICE, NOW - 2 * H, NOW - H, "G1")
    guard = render_session_guard(coverages_of(spans, NOW, H).kept, SPEC, NOW)
    assert guard_window(guard, f"{ROLE_ID}:Alice") == (None, NOW + H)


# -- retention: issuable_until ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "named"),
    [
        (NOW, True),
        (NOW + 20 * M - timedelta(seconds=1), True),  # left the trust policy at -40M: issued then, alive until +20M
        (NOW + 20 * M, False),
    ],
)
def test_render_session_guard_with_a_late_departure_keeps_the_coverage_from_when_it_left_trust(
    now: datetime, named: bool
) -> None:
    late = coverage(ALICE, -3 * H, -2 * H, left=-40 * M)
    assert late.issuable_until == NOW - 40 * M
    guard = render_session_guard([late], SPEC, now)
    # the end enforced is still the coverage's own: only how long it is remembered changes
    assert guard_window(guard, f"{ROLE_ID}:Alice") == ((None, NOW - 2 * H) if named else (None, None))
    assert render_session_guard([coverage(ALICE, -3 * H, -2 * H)], SPEC, now) is None  # without it: long pruned


def test_render_session_guard_with_left_trust_before_the_end_keeps_it_until_the_end_plus_keep_for() -> None:
    early = coverage(ALICE, -3 * H, -H + M, left=-2 * H)
    assert early.issuable_until == early.ends_at
    assert guard_window(render_session_guard([early], SPEC, NOW), f"{ROLE_ID}:Alice") == (None, NOW - H + M)
    assert render_session_guard([early], SPEC, NOW + M) is None


def test_render_session_guard_with_a_live_coverage_that_left_trust_is_still_rendered_as_live() -> None:
    live = coverage(ALICE, -H, H, earlier=-90 * M, left=-30 * M)
    guard = render_session_guard([live], SPEC, NOW)
    assert sids(guard) == ["TrustGateEnd1", "TrustGateStart1"]
    assert guard_window(guard, f"{ROLE_ID}:Alice") == (NOW - H, NOW + H)


def test_session_lifetime_max_is_the_longest_role_session() -> None:
    assert timedelta(hours=12) == SESSION_LIFETIME_MAX
    ended = [coverage(ALICE, -13 * H, -12 * H + M), coverage(BOB, -13 * H, -12 * H)]
    guard = render_session_guard(ended, GuardSpec(ROLE_ID, keep_for=SESSION_LIFETIME_MAX), NOW)
    assert userids(statements_of(guard or {})[0]) == [f"{ROLE_ID}:Alice"]


def test_render_session_guard_with_nothing_left_to_guard_is_none() -> None:
    assert render_session_guard([], SPEC, NOW) is None
    ended = [coverage(ALICE, -3 * H, -2 * H), coverage(BOB, -2 * H, -1 * H)]
    assert render_session_guard(ended, SPEC, NOW) is None
    kept = render_session_guard(ended, GuardSpec(ROLE_ID, keep_for=12 * H), NOW)
    assert kept == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TrustGateEnded",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {
                    "DateGreaterThanEquals": {"aws:CurrentTime": "2026-11-26T09:00:00Z"},
                    "StringEquals": {"aws:userid": [f"{ROLE_ID}:Alice", f"{ROLE_ID}:bob"]},
                },
            }
        ],
    }


# -- capacity ---------------------------------------------------------------------------------------


def many(count: int) -> list[Coverage]:
    return [
        coverage(f"arn:aws:iam::222222222222:user/person{i:03d}", i * M, H + i * M, earlier=i * M - M)
        for i in range(count)
    ]


def test_render_session_guard_with_other_inline_policies_filling_the_quota_names_the_numbers() -> None:
    covered = many(20)
    size = policy_size(render_session_guard(covered, SPEC, NOW) or {})
    others = 10240 - size + 1
    with pytest.raises(SessionGuardFullError) as raised:
        render_session_guard(covered, GuardSpec(ROLE_ID, H, other_inline_size=others), NOW)
    assert isinstance(raised.value, ConflictError)
    assert raised.value.code == "session_guard_full"
    message = raised.value.message
    assert f"need {size} characters" in message
    assert f"only {10240 - others} are left" in message
    assert "10240-character" in message
    assert f"({others} are used by its other inline policies)" in message


def test_render_session_guard_with_exactly_the_room_left_fits() -> None:
    covered = many(20)
    size = policy_size(render_session_guard(covered, SPEC, NOW) or {})
    guard = render_session_guard(covered, GuardSpec(ROLE_ID, H, other_inline_size=10240 - size), NOW)
    assert guard is not None
    assert policy_size(guard) == size


def test_render_session_guard_with_a_small_quota_refuses_what_the_default_holds() -> None:
    covered = many(5)
    assert render_session_guard(covered, SPEC, NOW) is not None
    with pytest.raises(SessionGuardFullError):
        render_session_guard(covered, GuardSpec(ROLE_ID, H, quota=500), NOW)


# -- precision and exactness ------------------------------------------------------------------------


def test_render_session_guard_with_microseconds_writes_whole_seconds_rounded_down() -> None:
    odd = Coverage(
        person_of(ALICE),
        (ALICE,),
        NOW + timedelta(microseconds=999_999),
        NOW + H + timedelta(seconds=1.5),
        earlier_until=NOW,
    )
    guard = render_session_guard([odd], SPEC, NOW)
    times = [
        value
        for statement in statements_of(guard or {})
        for operator in ("DateGreaterThanEquals", "DateLessThan")
        for value in statement["Condition"].get(operator, {}).values()
    ]
    assert times == ["2026-11-26T11:00:01Z", "2026-11-26T10:00:00Z"]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t) for t in times)


def test_guard_window_with_a_userid_not_named_is_none_none() -> None:
    guard = render_session_guard([coverage(ALICE, 0 * M, 1 * H)], SPEC, NOW)
    assert guard_window(guard, f"{ROLE_ID}:bob") == (None, None)
    assert guard_window(guard, "AROAANOTHERROLE00001:Alice") == (None, None)
    assert guard_window(None, f"{ROLE_ID}:Alice") == (None, None)


arns = st.sampled_from(
    [
        ALICE,
        BOB,
        CAROL,
        "arn:aws:iam::333333333333:user/alice",  # the same pin as ALICE: coverages_of refuses one of them
        "arn:aws:iam::222222222222:user/dave",
        "arn:aws:sts::333333333333:assumed-role/AWSReservedSSO_Dev_00112233445566ff/erin",
    ]
)
spans = st.builds(
    lambda arn, start, length, left: GrantSpan(
        arn,
        NOW + start * M,
        NOW + (start + length) * M,
        "",
        None if left is None else NOW + (start + length + left) * M,
    ),
    arns,
    st.integers(-300, 60),
    st.integers(1, 240),
    st.none() | st.integers(0, 120),  # minutes after its end a sync took the person out of the trust policy
)


@settings(max_examples=200, deadline=None)
@given(st.lists(spans, max_size=12))
def test_render_session_guard_with_any_coverages_names_exactly_the_guarded_sessions(items: list[GrantSpan]) -> None:
    kept = coverages_of(items, NOW, H).kept
    guard = render_session_guard(kept, SPEC, NOW)
    live = [c for c in kept if c.ends_at > NOW]
    ended = [c for c in kept if c.ends_at <= NOW]
    expected = {
        f"{ROLE_ID}:{c.person.session_name}": (
            c.starts_at if c.earlier_until is not None and c.earlier_until + H > c.starts_at else None,
            c.ends_at,
        )
        for c in live
    } | {f"{ROLE_ID}:{c.person.session_name}": (None, max(e.ends_at for e in ended)) for c in ended}
    if not expected:
        assert guard is None
        return
    named: set[str] = set()
    for statement in statements_of(guard or {}):
        assert statement["Effect"] == "Deny"
        assert statement["Condition"]["StringEquals"]["aws:userid"], "a Deny * without a userid would lock out everyone"
        named.update(userids(statement))
    assert named == set(expected)
    assert sids(guard).count("TrustGateEnded") == (1 if ended else 0)
    assert len([sid for sid in sids(guard) if sid.startswith("TrustGateEnd")]) == len({c.ends_at for c in live}) + bool(
        ended
    )
    for userid, window in expected.items():
        assert guard_window(guard, userid) == window
    for c in kept:  # from now on, each person's sessions are denied exactly from their own end
        end = guard_window(guard, f"{ROLE_ID}:{c.person.session_name}")[1]
        assert end is not None
        for later in (NOW, NOW + M, NOW + 5 * H):
            assert (later >= end) is (later >= c.ends_at)
    for name in ("mallory", "ALICE", "Carol@example.com"):
        if f"{ROLE_ID}:{name}" not in expected:
            assert guard_window(guard, f"{ROLE_ID}:{name}") == (None, None)
