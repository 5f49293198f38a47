"""Coverage: one span of access per person per role, derived from their grants (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from random import Random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustgate.core.coverage import Coverage, Coverages, GrantSpan, coverages_of, newest_coverage, pin_holder
from trustgate.core.identity import person_of

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
KEEP = timedelta(hours=1)  # how long a session may live (the sync passes SESSION_LIFETIME_MAX)
H = timedelta(hours=1)
M = timedelta(minutes=1)
ALICE = "arn:aws:iam::222222222222:user/alice"
ALICE_ELSEWHERE = "arn:aws:iam::333333333333:user/alice"
BOB = "arn:aws:iam::222222222222:user/bob"
CAROL_ADMIN = "arn:aws:sts::222222222222:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/carol"
CAROL_READ = "arn:aws:sts::333333333333:assumed-role/AWSReservedSSO_ReadOnly_fedcba9876543210/carol"


def span(arn: str, start: timedelta, end: timedelta, grant_id: str = "", left: timedelta | None = None) -> GrantSpan:
    """A grant of `arn` from NOW + start to NOW + end; `left`: when a sync took its person out of the trust policy."""
    return GrantSpan(arn, NOW + start, NOW + end, grant_id, None if left is None else NOW + left)


# -- merging ----------------------------------------------------------------------------------------


def test_coverages_of_with_overlapping_grants_merges_them_into_one_coverage() -> None:
    spans = [span(ALICE, 0 * H, 1 * H, "G1"), span(ALICE, 30 * M, 2 * H, "G2")]
    coverages = coverages_of(spans, NOW, KEEP)
    assert coverages.kept == (Coverage(person_of(ALICE), (ALICE,), NOW, NOW + 2 * H, ("G1", "G2")),)
    assert coverages.refused == ()


def test_coverages_of_with_a_grant_inside_another_keeps_the_later_end() -> None:
    coverage = coverages_of([span(ALICE, 0 * H, 3 * H, "G1"), span(ALICE, 1 * H, 2 * H, "G2")], NOW, KEEP).kept[0]
    assert (coverage.starts_at, coverage.ends_at) == (NOW, NOW + 3 * H)
    assert coverage.grant_ids == ("G1", "G2")


def test_coverages_of_with_chained_overlaps_merges_all_of_them() -> None:
    spans = [span(ALICE, 0 * H, 1 * H, "G1"), span(ALICE, 50 * M, 2 * H, "G2"), span(ALICE, 110 * M, 3 * H, "G3")]
    coverage = coverages_of(spans, NOW, KEEP).kept[0]
    assert (coverage.starts_at, coverage.ends_at, coverage.grant_ids) == (NOW, NOW + 3 * H, ("G1", "G2", "G3"))


def test_coverages_of_with_grants_of_two_persons_gives_one_coverage_each() -> None:
    coverages = coverages_of([span(ALICE, 0 * H, 1 * H), span(BOB, 0 * H, 2 * H)], NOW, KEEP)
    assert {c.person.key: c.ends_at for c in coverages.kept} == {
        "iam:222222222222:alice": NOW + H,
        "iam:222222222222:bob": NOW + 2 * H,
    }


def test_coverages_of_with_identity_center_permission_sets_in_two_accounts_merges_into_one_coverage() -> None:
    coverages = coverages_of([span(CAROL_ADMIN, 0 * H, 1 * H, "G1"), span(CAROL_READ, 10 * M, 2 * H, "G2")], NOW, KEEP)
    assert len(coverages.kept) == 1
    carol = coverages.kept[0]
    assert carol.person.key == "idc:carol"
    assert carol.principal_arns == tuple(sorted((CAROL_ADMIN, CAROL_READ)))
    assert (carol.starts_at, carol.ends_at, carol.grant_ids) == (NOW, NOW + 2 * H, ("G1", "G2"))
    assert coverages.refused == ()
    assert coverages.of("idc:carol") == carol


def test_coverages_of_with_microseconds_rounds_both_ends_down_to_whole_seconds() -> None:
    spans = [GrantSpan(ALICE, NOW + timedelta(microseconds=900_000), NOW + H + timedelta(microseconds=999_999))]
    coverage = coverages_of(spans, NOW, KEEP).kept[0]
    assert (coverage.starts_at, coverage.ends_at) == (NOW, NOW + H)


def test_coverages_of_with_a_backwards_span_ignores_it() -> None:
    assert coverages_of([span(BOB, 2 * H, 1 * H)], NOW, KEEP) == Coverages(())


def test_coverages_of_with_a_grant_revoked_in_its_first_second_keeps_it_for_the_guard() -> None:
    # Sessions may have been issued in that second: the coverage is kept (not live) so its end is enforced.
    coverages = coverages_of([span(ALICE, -10 * M, -10 * M, "G1")], NOW, KEEP)
    assert coverages.kept == (Coverage(person_of(ALICE), (ALICE,), NOW - 10 * M, NOW - 10 * M, ("G1",)),)
    assert coverages.live(NOW) == []


# -- newest coverage only ---------------------------------------------------------------------------


def test_coverages_of_with_revoke_then_regrant_makes_a_new_coverage_with_the_later_start() -> None:
    # G1 was granted for an hour and revoked after 20 minutes: its span ends when it really ended.
    spans = [span(ALICE, -1 * H, -40 * M, "G1"), span(ALICE, -10 * M, 1 * H, "G2")]
    coverages = coverages_of(spans, NOW, KEEP)
    assert coverages.kept == (
        Coverage(person_of(ALICE), (ALICE,), NOW - 10 * M, NOW + H, ("G2",), earlier_until=NOW - 40 * M),
    )


def test_coverages_of_with_a_grant_starting_exactly_at_the_end_opens_a_new_coverage() -> None:
    coverage = coverages_of([span(ALICE, -1 * H, 0 * H, "G1"), span(ALICE, 0 * H, 1 * H, "G2")], NOW, KEEP).kept[0]
    assert (coverage.starts_at, coverage.grant_ids, coverage.earlier_until) == (NOW, ("G2",), NOW)


def test_coverages_of_with_a_first_or_merged_coverage_has_no_earlier_until() -> None:
    assert coverages_of([span(ALICE, 0 * H, 1 * H)], NOW, KEEP).kept[0].earlier_until is None
    merged = [span(ALICE, 0 * H, 1 * H), span(ALICE, 30 * M, 2 * H)]
    assert coverages_of(merged, NOW, KEEP).kept[0].earlier_until is None


def test_coverages_of_with_several_earlier_coverages_keeps_the_end_of_the_latest_one() -> None:
    spans = [
        span(ALICE, -5 * H, -4 * H),
        span(ALICE, -3 * H, -150 * M),
        span(ALICE, -2 * H, -70 * M, "A"),
        span(ALICE, -100 * M, -80 * M, "B"),  # inside A: the coverage A and B make ends at A's end
        span(ALICE, -1 * M, 1 * H, "NOW"),
    ]
    coverage = coverages_of(spans, NOW, KEEP).kept[0]
    assert coverage.grant_ids == ("NOW",)
    assert coverage.earlier_until == NOW - 70 * M


def test_coverages_of_with_an_old_coverage_still_inside_keep_for_returns_only_the_newest() -> None:
    spans = [span(ALICE, -50 * M, -30 * M, "OLD"), span(ALICE, 5 * M, 1 * H, "NEW")]  # NEW has not started yet
    coverages = coverages_of(spans, NOW, KEEP)
    assert [c.grant_ids for c in coverages.kept] == [("NEW",)]


def test_newest_coverage_with_no_spans_is_none() -> None:
    assert newest_coverage([]) is None


# -- keeping ended coverages ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "kept", "live"),
    [
        (NOW - timedelta(seconds=1), True, True),
        (NOW, True, False),  # ended: no longer live, still kept so the session guard enforces the end
        (NOW + KEEP - timedelta(seconds=1), True, False),
        (NOW + KEEP, False, False),  # no session issued before the end can still be alive: dropped
        (NOW + 2 * KEEP, False, False),
    ],
)
def test_coverages_of_with_an_ended_coverage_keeps_it_for_keep_for_then_drops_it(
    now: datetime, kept: bool, live: bool
) -> None:
    coverages = coverages_of([span(ALICE, -2 * H, 0 * H, "G1")], now, KEEP)
    assert (len(coverages.kept) == 1) is kept
    assert (len(coverages.live(now)) == 1) is live


def test_coverages_of_with_a_longer_keep_for_keeps_the_coverage_longer() -> None:
    spans = [span(ALICE, -2 * H, -1 * H)]
    assert coverages_of(spans, NOW, timedelta(hours=1)).kept == ()
    assert len(coverages_of(spans, NOW, timedelta(hours=12)).kept) == 1


# -- leaving the trust policy late ------------------------------------------------------------------


def test_grant_span_takes_left_trust_at_as_its_fifth_field() -> None:
    left = NOW + 5 * M
    assert GrantSpan(ALICE, NOW - H, NOW, "G1", left).left_trust_at == left
    assert GrantSpan(ALICE, NOW - H, NOW).left_trust_at is None


def test_coverage_issuable_until_is_the_later_of_its_end_and_when_it_left_trust() -> None:
    base = Coverage(person_of(ALICE), (ALICE,), NOW - 2 * H, NOW - H)
    assert base.issuable_until == NOW - H
    assert Coverage(person_of(ALICE), (ALICE,), NOW - 2 * H, NOW - H, left_trust_at=NOW - 10 * M).issuable_until == (
        NOW - 10 * M
    )
    assert Coverage(person_of(ALICE), (ALICE,), NOW - 2 * H, NOW - H, left_trust_at=NOW - 3 * H).issuable_until == (
        NOW - H
    )


def test_coverages_of_with_spans_that_left_trust_takes_the_latest_of_them_rounded_up_to_the_second() -> None:
    spans = [
        span(ALICE, -3 * H, -2 * H, "G1", left=-100 * M),
        GrantSpan(ALICE, NOW - 150 * M, NOW - 110 * M, "G2", NOW - 90 * M + timedelta(microseconds=700_000)),
        span(ALICE, -140 * M, -130 * M, "G3"),
    ]
    (coverage,) = coverages_of(spans, NOW, 12 * H).kept
    assert coverage.grant_ids == ("G1", "G2", "G3")
    # "Until when to remember" rounds up: a session issued in that last fraction of a second is remembered too.
    assert (coverage.ends_at, coverage.left_trust_at) == (NOW - 110 * M, NOW - 90 * M + timedelta(seconds=1))
    assert coverage.issuable_until == NOW - 90 * M + timedelta(seconds=1)


def test_coverages_of_with_no_span_leaving_trust_has_no_left_trust_at() -> None:
    (coverage,) = coverages_of([span(ALICE, -H, H)], NOW, KEEP).kept
    assert coverage.left_trust_at is None
    assert coverage.issuable_until == coverage.ends_at


@pytest.mark.parametrize(
    ("now", "kept"),
    [
        (NOW, True),
        (NOW + 30 * M - timedelta(seconds=1), True),  # a session issued as it left (-30M) lives until +30M
        (NOW + 30 * M, False),
    ],
)
def test_coverages_of_with_an_ended_coverage_that_left_trust_late_keeps_it_from_then(now: datetime, kept: bool) -> None:
    spans = [span(ALICE, -3 * H, -2 * H, "G1", left=-30 * M)]
    assert (len(coverages_of(spans, now, KEEP).kept) == 1) is kept
    assert coverages_of([span(ALICE, -3 * H, -2 * H, "G1")], now, KEEP).kept == ()


def test_coverages_of_with_a_late_leaver_still_holds_the_session_name() -> None:
    # The guard still names <role id>:alice while her late sessions may live, so another alice waits.
    spans = [span(ALICE, -3 * H, -2 * H, "FIRST", left=-10 * M), span(ALICE_ELSEWHERE, -5 * M, H, "LATER")]
    coverages = coverages_of(spans, NOW, KEEP)
    assert [c.grant_ids for c in coverages.kept] == [("FIRST",)]
    assert [c.grant_ids for c in coverages.refused] == [("LATER",)]


def test_coverages_of_with_a_regrant_after_a_late_departure_takes_it_as_earlier_until() -> None:
    spans = [span(ALICE, -3 * H, -2 * H, "G1", left=-20 * M), span(ALICE, -10 * M, H, "G2")]
    (coverage,) = coverages_of(spans, NOW, KEEP).kept
    assert coverage.grant_ids == ("G2",)
    assert coverage.earlier_until == NOW - 20 * M
    assert coverage.left_trust_at is None  # the departure belongs to the earlier coverage


def test_coverages_of_with_a_departure_before_the_earlier_end_keeps_that_end_as_earlier_until() -> None:
    spans = [span(ALICE, -3 * H, -H, "G1", left=-2 * H), span(ALICE, -10 * M, H, "G2")]
    assert coverages_of(spans, NOW, KEEP).kept[0].earlier_until == NOW - H


def test_coverages_of_with_a_regrant_after_several_spans_takes_the_latest_departure_of_them() -> None:
    spans = [
        span(ALICE, -4 * H, -3 * H, "A", left=-150 * M),
        span(ALICE, -200 * M, -170 * M, "B", left=-40 * M),  # overlaps A: one earlier coverage
        span(ALICE, -5 * M, H, "NOW"),
    ]
    assert coverages_of(spans, NOW, KEEP).kept[0].earlier_until == NOW - 40 * M


# -- pinned session names ---------------------------------------------------------------------------


def test_coverages_of_with_one_name_in_two_accounts_refuses_the_later_person() -> None:
    coverages = coverages_of(
        [span(ALICE_ELSEWHERE, 5 * M, 1 * H, "LATER"), span(ALICE, 0 * M, 1 * H, "FIRST")], NOW, KEEP
    )
    assert [c.grant_ids for c in coverages.kept] == [("FIRST",)]
    assert [c.grant_ids for c in coverages.refused] == [("LATER",)]
    assert coverages.refused[0].person.key == "iam:333333333333:alice"


def test_coverages_of_with_session_names_differing_only_in_case_refuses_the_later_person() -> None:
    later = "arn:aws:iam::333333333333:user/ALICE"
    coverages = coverages_of([span(ALICE, 0 * M, 1 * H), span(later, 5 * M, 1 * H)], NOW, KEEP)
    assert [c.person.key for c in coverages.kept] == ["iam:222222222222:alice"]
    assert [c.person.key for c in coverages.refused] == ["iam:333333333333:alice"]


def test_coverages_of_with_an_iam_user_and_identity_center_user_of_one_name_refuses_the_later() -> None:
    carol_user = "arn:aws:iam::222222222222:user/Carol"
    coverages = coverages_of([span(CAROL_ADMIN, 0 * M, 1 * H), span(carol_user, 1 * M, 1 * H)], NOW, KEEP)
    assert [c.person.key for c in coverages.kept] == ["idc:carol"]
    assert [c.person.key for c in coverages.refused] == ["iam:222222222222:carol"]


def test_coverages_of_with_the_pin_holder_ended_but_still_guarded_refuses_the_newcomer() -> None:
    # The guard still names <role id>:alice until the first coverage's sessions are surely dead.
    spans = [span(ALICE, -1 * H, -30 * M), span(ALICE_ELSEWHERE, -10 * M, 1 * H)]
    coverages = coverages_of(spans, NOW, KEEP)
    assert [c.person.key for c in coverages.refused] == ["iam:333333333333:alice"]


def test_coverages_of_with_the_pin_holder_past_keep_for_lets_the_newcomer_in() -> None:
    spans = [span(ALICE, -3 * H, -2 * H), span(ALICE_ELSEWHERE, -10 * M, 1 * H)]
    coverages = coverages_of(spans, NOW, KEEP)
    assert [c.person.key for c in coverages.kept] == ["iam:333333333333:alice"]
    assert coverages.refused == ()


def test_pin_holder_with_another_person_holding_the_name_returns_their_coverage() -> None:
    coverages = coverages_of([span(ALICE, 0 * M, 1 * H)], NOW, KEEP)
    holder = pin_holder(coverages, person_of("arn:aws:sts::222222222222:assumed-role/SamlRole/Alice"))
    assert holder is not None
    assert holder.person.key == "iam:222222222222:alice"


def test_pin_holder_with_the_person_themself_or_a_free_name_is_none() -> None:
    coverages = coverages_of([span(ALICE, 0 * M, 1 * H)], NOW, KEEP)
    assert pin_holder(coverages, person_of("arn:aws:iam::222222222222:user/Alice")) is None
    assert pin_holder(coverages, person_of(BOB)) is None


# -- properties -------------------------------------------------------------------------------------

arns = st.sampled_from([ALICE, ALICE_ELSEWHERE, BOB, CAROL_ADMIN, CAROL_READ, "arn:aws:iam::222222222222:user/Carol"])
spans = st.builds(
    lambda arn, start, length, grant_id, left: span(
        arn, start * M, (start + length) * M, grant_id, None if left is None else (start + length + left) * M
    ),
    arns,
    st.integers(-180, 60),
    st.integers(1, 240),
    st.uuids().map(str),
    st.none() | st.none() | st.integers(0, 120),  # mostly none: most grants leave the trust policy at their end
)


def rendered_view(coverages: Coverages) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """What the trust policy and session guard are rendered from: the person's key, kind and pin (not which
    permission set's ARN happened to sort first), their ARNs and times, and their grant ids as a set."""

    def view(c: Coverage) -> tuple[object, ...]:
        person = (c.person.key, c.person.kind, c.person.session_name)
        times = (c.starts_at, c.ends_at, c.left_trust_at, c.earlier_until)
        return (*person, c.principal_arns, *times, sorted(c.grant_ids))

    return [view(c) for c in coverages.kept], [view(c) for c in coverages.refused]


@settings(max_examples=300, deadline=None)
@given(st.lists(spans, max_size=12), st.randoms(use_true_random=False))
def test_coverages_of_with_any_order_of_spans_gives_the_same_answer(items: list[GrantSpan], rng: Random) -> None:
    shuffled = list(items)
    rng.shuffle(shuffled)
    assert rendered_view(coverages_of(shuffled, NOW, KEEP)) == rendered_view(coverages_of(items, NOW, KEEP))


@settings(max_examples=200, deadline=None)
@given(st.lists(spans, max_size=12))
def test_coverages_of_with_any_spans_gives_each_person_and_each_pin_at_most_once(items: list[GrantSpan]) -> None:
    coverages = coverages_of(items, NOW, KEEP)
    keys = [c.person.key for c in coverages.kept + coverages.refused]
    pins = [c.person.session_name.lower() for c in coverages.kept]
    assert len(keys) == len(set(keys))
    assert len(pins) == len(set(pins))
    for coverage in coverages.kept:
        assert coverage.issuable_until + KEEP > NOW
        mine = [s for s in items if s.person.key == coverage.person.key]
        # the coverage is a union of the person's grants: it never begins before or ends after all of them
        assert min(s.starts_at for s in mine) <= coverage.starts_at
        assert coverage.ends_at == max(s.ends_at for s in mine if s.starts_at >= coverage.starts_at)
        lefts = [s.left_trust_at for s in mine if s.starts_at >= coverage.starts_at and s.left_trust_at]
        assert coverage.left_trust_at == (max(lefts) if lefts else None)
        before = [s for s in mine if s.starts_at < coverage.starts_at]
        if all(s.left_trust_at is None for s in mine):
            assert coverage.earlier_until == (max(s.ends_at for s in before) if before else None)
            assert coverage.earlier_until is None or coverage.earlier_until <= coverage.starts_at
        elif not before:
            assert coverage.earlier_until is None
        else:  # the previous coverage's end, or a later departure of one of its grants
            assert coverage.earlier_until is not None
            assert coverage.earlier_until >= max(s.ends_at for s in before)
            assert coverage.earlier_until in {t for s in before for t in (s.ends_at, s.left_trust_at)}
