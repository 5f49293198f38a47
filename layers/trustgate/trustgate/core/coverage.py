"""Coverage: the one span of time a person may use a role, derived from their grants. Pure: no I/O, no clock.

A person holds at most one coverage of a role. Grants of one person that overlap (an extension, a second
approved request) merge into it; a grant that starts after the previous coverage ended opens a new one,
and only the newest coverage counts: the session guard denies every session issued before it started.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from trustgate.core.identity import Person, person_of


@dataclass(frozen=True)
class GrantSpan:
    """What the engine needs of a grant: whose, through which ARN, and from when to when.

    An ended grant (expired, revoked) keeps its span, with `ends_at` moved to when it really ended:
    the session guard keeps enforcing that end for as long as a session from it could still be alive.
    """

    principal_arn: str
    starts_at: datetime
    ends_at: datetime
    grant_id: str = ""
    # When a sync took the person out of the trust policy after this grant ended. IAM users share one
    # statement that lasts until the latest end among them, so a late sync leaves them able to assume
    # the role past their own end: the guard must remember them from this moment, not from their end.
    left_trust_at: datetime | None = None

    @property
    def person(self) -> Person:
        return person_of(self.principal_arn)


@dataclass(frozen=True)
class Coverage:
    """One person's span of access to one role, and the ARNs a trust policy names for them."""

    person: Person
    principal_arns: tuple[str, ...]
    starts_at: datetime
    ends_at: datetime
    grant_ids: tuple[str, ...] = ()
    left_trust_at: datetime | None = None
    # Until when the person's previous coverage of the role could still issue sessions, if there was one.
    earlier_until: datetime | None = None
    # Every session name the person's recent grants pinned (names of one person may differ in case).
    session_names: tuple[str, ...] = field(default=(), compare=False)
    # Unrounded start: who came first when two persons want one session name (not part of the value).
    first_granted_at: datetime | None = field(default=None, compare=False)

    def is_live(self, now: datetime) -> bool:
        return self.ends_at > now

    @property
    def issuable_until(self) -> datetime:
        """The last moment a session of this coverage could have been issued: its end, or later when the
        trust policy still named the person after it (see `GrantSpan.left_trust_at`)."""
        return max(self.ends_at, self.left_trust_at or self.ends_at)


@dataclass(frozen=True)
class Coverages:
    """Each person's newest coverage, plus the persons refused because another person holds their session name."""

    kept: tuple[Coverage, ...]
    refused: tuple[Coverage, ...] = ()

    def live(self, now: datetime) -> list[Coverage]:
        return [coverage for coverage in self.kept if coverage.is_live(now)]

    def of(self, person_key: str) -> Coverage | None:
        return next((c for c in self.kept if c.person.key == person_key), None)


def to_second(moment: datetime) -> datetime:
    """Policies hold whole seconds; rounding down never lets anyone in later than approved."""
    return moment.astimezone(UTC).replace(microsecond=0)


def newest_coverage(spans: Sequence[GrantSpan]) -> Coverage | None:
    """Merge one person's grant spans (overlapping ones join) and return the newest coverage."""
    if not spans:
        return None
    ordered = sorted(spans, key=lambda span: (span.starts_at, span.ends_at, span.principal_arn, span.grant_id))
    current: list[GrantSpan] = [ordered[0]]
    end = to_second(ordered[0].ends_at)
    earlier_until: datetime | None = None
    for span in ordered[1:]:
        if to_second(span.starts_at) < end:  # overlaps: the same coverage, possibly longer
            current.append(span)
            end = max(end, to_second(span.ends_at))
        else:  # starts after the coverage ended: a new one (earlier sessions stay dead)
            earlier_until = max(end, *(_left(s) for s in current))
            current, end = [span], to_second(span.ends_at)
    left = [_left(span) for span in current if span.left_trust_at is not None]  # rounded up
    return Coverage(
        person=current[-1].person,  # the newest grant names them as they are now (a name may change case)
        principal_arns=tuple(sorted({span.principal_arn for span in current})),
        starts_at=to_second(current[0].starts_at),
        ends_at=end,
        grant_ids=tuple(span.grant_id for span in current if span.grant_id),
        left_trust_at=max(left) if left else None,
        earlier_until=earlier_until,
        first_granted_at=current[0].starts_at,
    )


def _left(span: GrantSpan) -> datetime:
    """Until when a session of this span could be issued, rounded *up*: it is how long to remember it."""
    if span.left_trust_at is None:
        return to_second(span.ends_at)
    rounded = to_second(span.left_trust_at)
    return rounded if rounded == span.left_trust_at else rounded + timedelta(seconds=1)


def coverages_of(spans: Iterable[GrantSpan], now: datetime, keep_for: timedelta) -> Coverages:
    """Every person's newest coverage that still matters at `now`: live, or a session issued under it could
    still be alive (issued before `issuable_until`, living at most `keep_for`).

    Two persons whose pinned session names are equal (ignoring case, as the stricter reading) would share
    one `aws:userid` in the role and cut off each other's sessions: the one whose coverage started later
    is refused, never rendered.
    """
    by_person: dict[str, list[GrantSpan]] = {}
    for span in spans:
        if span.ends_at >= span.starts_at:  # a grant revoked in its first second still had sessions
            by_person.setdefault(span.person.key, []).append(span)
    relevant = [
        replace(coverage, session_names=tuple(sorted({span.person.session_name for span in group})))
        for group in by_person.values()
        for coverage in [newest_coverage(group)]
        if coverage is not None and coverage.issuable_until + keep_for > now
    ]
    kept: list[Coverage] = []
    refused: list[Coverage] = []
    holders: dict[str, Coverage] = {}
    for coverage in sorted(relevant, key=lambda c: (c.first_granted_at or c.starts_at, c.person.key)):
        pin = coverage.person.session_name.lower()
        if pin in holders:
            refused.append(coverage)
        else:
            holders[pin] = coverage
            kept.append(coverage)
    return Coverages(tuple(kept), tuple(refused))


def pin_holder(coverages: Coverages, person: Person) -> Coverage | None:
    """Another person's coverage (kept or refused) that wants `person`'s session name on this role, if any."""
    pin = person.session_name.lower()
    return next(
        (
            c
            for c in (*coverages.kept, *coverages.refused)
            if c.person.session_name.lower() == pin and c.person.key != person.key
        ),
        None,
    )
