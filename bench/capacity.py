"""Measure 4: how many concurrent grants a role holds: its trust policy, and its session guard.

Everything goes through the engine as `sync` calls it: grant spans → `coverages_of(...).kept` →
`render_trust_policy(LIVE, RenderSpec(coverages=...), NOW)` and `render_session_guard(kept, GuardSpec(...), NOW)`.
A count fits when it renders without `TrustPolicyFullError` (or `SessionGuardFullError`); the most that fit is
found by rendering (exponential then binary search; a person more never shrinks either document).

The starting trust policy is the vendor's organization statement alone (`LIVE`, the one the bench has always
used), kept byte for byte by the engine. Persons:

* IAM users: 60-character ARNs `arn:aws:iam::123456789012:user/<29-character name>`. They share one statement
  pinned with `sts:RoleSessionName` `${aws:username}`, whose `DateLessThan` is the latest end among them.
* Identity Center persons: `arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_<set>_<16 hex>/<email>`,
  with common permission-set names; one statement each.

Expiry patterns: *spread* (every grant starts and ends at a different minute, over hours) and *clustered*
(every grant ends within the same minute, one activation after another, so the seconds differ). The baseline
is the vendor statement plus one statement naming every IAM-user ARN with no condition at all: the most
principals that fit, with no expiry and no session pinning.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from bench.results import Section
from trustgate.coverage import Coverage, GrantSpan, coverages_of
from trustgate.errors import SessionGuardFullError, TrustPolicyFullError
from trustgate.session_guard import INLINE_POLICIES_QUOTA, GuardSpec, render_session_guard
from trustgate.trust_policy import Document, RenderSpec, policy_size, render_trust_policy

ORG_ID = "o-exampleorg12"
ACCOUNT = "123456789012"
ARN_LENGTH = 60
GOAL_GRANTS = 25
QUOTAS = (2048, 4096)
NOW = datetime(2026, 11, 26, 9, 7, 13, tzinfo=UTC)
KEEP_FOR = timedelta(hours=1)  # MaxSessionDuration's default: how long the guard keeps an ended person
ROLE_ID = "AROA5ZBJQK2EXAMPLE7XW"  # a role's unique id as GetRole returns it (AROA + 17)
CEILING = 1000  # no search looks further than this
# The vendor's default statement (DESIGN.md's worked example), kept byte for byte by the engine.
VENDOR_STATEMENT = {
    "Sid": "PumpOrganizationAccess",
    "Effect": "Allow",
    "Principal": {"AWS": "*"},
    "Action": "sts:AssumeRole",
    "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG_ID}},
}
LIVE = {"Version": "2012-10-17", "Statement": [VENDOR_STATEMENT]}
LIVE_LABEL = "starting from the vendor's organization statement"

FIRST_NAMES = ("alice", "bob", "carol", "dmitri", "emeka", "fatima", "guillermo", "hana", "ingrid", "jun")
LAST_NAMES = ("nakamura", "okafor", "petrov", "quintero", "rasmussen", "santos", "tanaka", "usman", "vogel", "weiss")
PERMISSION_SETS = ("AdministratorAccess", "PowerUserAccess", "DatabaseAdministrator", "ReadOnlyAccess")


def iam_user(index: int) -> str:
    """A realistic 60-character IAM user ARN, distinct per index (and so a distinct pinned session name)."""
    prefix = f"arn:aws:iam::{ACCOUNT}:user/"
    name = f"engineer-{index:04d}-"
    arn = prefix + name + "x" * (ARN_LENGTH - len(prefix) - len(name))
    assert len(arn) == ARN_LENGTH
    return arn


def identity_center_person(index: int) -> str:
    """An Identity Center session: a common permission set, its role's hash, and the user's email as session name."""
    first = FIRST_NAMES[index % len(FIRST_NAMES)]
    last = LAST_NAMES[(index // len(FIRST_NAMES)) % len(LAST_NAMES)]
    suffix = "" if index < len(FIRST_NAMES) * len(LAST_NAMES) else str(index)
    permission_set = PERMISSION_SETS[index % len(PERMISSION_SETS)]
    role_hash = hashlib.sha256(permission_set.encode()).hexdigest()[:16]
    return f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_{permission_set}_{role_hash}/{first}.{last}{suffix}@example.com"


def principal(index: int) -> str:
    """The 60-character IAM user ARN `bench/reconcile_scaling.py` seeds its grants with (several accounts, a path)."""
    prefix = f"arn:aws:iam::{222222222222 + index % 7}:user/engineering/"
    name = f"engineer-{index:04d}-"
    arn = prefix + name + "x" * (ARN_LENGTH - len(prefix) - len(name))
    assert len(arn) == ARN_LENGTH
    return arn


PRINCIPALS: dict[str, Callable[[int], str]] = {
    "IAM-user grants": iam_user,
    "Identity Center persons": identity_center_person,
}


@dataclass(frozen=True)
class Window:
    starts_at: datetime
    ends_at: datetime


def spread(index: int) -> Window:
    """Asked at different times for different durations: starts 1 min to 7 h ago, ends 15 min to 12 h from now.

    Steps coprime to the ranges keep every start and every end a distinct minute (the bench never needs more
    than 420 grants), with seconds and microseconds as activations have them.
    """
    started = timedelta(minutes=1 + (index * 37) % 420, seconds=(index * 13) % 60, microseconds=index * 7919 % 10**6)
    ends = timedelta(minutes=15 + (index * 97) % 705, seconds=(index * 29) % 60)
    return Window(NOW - started, NOW + ends)


def clustered(index: int) -> Window:
    """A team granted together for an incident: 2-hour grants activated one after another within one minute.

    Every end falls within the same minute (a second apart while there are at most 60), and so does every start.
    """
    minute = NOW.replace(second=0, microsecond=0) + timedelta(hours=1)
    ends = minute + timedelta(seconds=(index * 7) % 60, microseconds=index * 7919 % 10**6)
    return Window(ends - timedelta(hours=2), ends)


PATTERNS: dict[str, Callable[[int], Window]] = {"spread": spread, "clustered": clustered}


def kept_coverages(principal: Callable[[int], str], window: Callable[[int], Window], count: int) -> Sequence[Coverage]:
    spans = [GrantSpan(principal(i), window(i).starts_at, window(i).ends_at, f"grant-{i:04d}") for i in range(count)]
    coverages = coverages_of(spans, NOW, KEEP_FOR)
    # A refused person (a session name another holds) would silently not count: the principals never collide.
    if coverages.refused or len(coverages.live(NOW)) != count:
        raise RuntimeError(f"{count} grants should make {count} live persons: {coverages}")
    return coverages.kept


def trust_policy(coverages: Sequence[Coverage], quota: int) -> Document:
    return render_trust_policy(LIVE, RenderSpec(coverages=coverages, quota=quota), NOW)


def session_guard(coverages: Sequence[Coverage]) -> Document | None:
    return render_session_guard(coverages, GuardSpec(ROLE_ID, KEEP_FOR, other_inline_size=0), NOW)


def fits_trust(count: int, quota: int, principal: Callable[[int], str], window: Callable[[int], Window]) -> bool:
    try:
        trust_policy(kept_coverages(principal, window, count), quota)
    except TrustPolicyFullError:
        return False
    return True


def fits_guard(count: int, principal: Callable[[int], str], window: Callable[[int], Window]) -> bool:
    try:
        session_guard(kept_coverages(principal, window, count))
    except SessionGuardFullError:
        return False
    return True


def fits_both(count: int, quota: int, principal: Callable[[int], str], window: Callable[[int], Window]) -> bool:
    """What `sync` needs before it activates a grant: both documents render."""
    return fits_trust(count, quota, principal, window) and fits_guard(count, principal, window)


def fits_bare(count: int, quota: int) -> bool:
    bare: dict[str, Any] = {
        "Version": "2012-10-17",
        "Statement": [
            VENDOR_STATEMENT,
            {"Effect": "Allow", "Principal": {"AWS": [iam_user(i) for i in range(count)]}, "Action": "sts:AssumeRole"},
        ],
    }
    return bool(policy_size(bare) <= quota)


def most(fits: Callable[[int], bool], ceiling: int = CEILING) -> int:
    """The largest count that fits, by rendering: double until one does not fit, then bisect (fitting is monotonic)."""
    low, high = 0, 1  # fits(low) holds (nothing always fits); fits(high) is unknown
    while high <= ceiling and fits(high):
        low, high = high, high * 2
    high = min(high, ceiling + 1)  # the first count known (or assumed, past the ceiling) not to fit
    while high - low > 1:
        middle = (low + high) // 2
        if fits(middle):
            low = middle
        else:
            high = middle
    return low


def run(quick: bool) -> Section:
    """Pure computation (a few hundred renders, well under a second), so quick mode runs it in full."""
    section = Section("capacity")
    bare = {quota: most(partial(fits_bare, quota=quota)) for quota in QUOTAS}
    section.details["bare_principal_list"] = bare
    section.details["live_trust_policy"] = LIVE_LABEL
    section.details["keep_for_seconds"] = KEEP_FOR.total_seconds()
    section.details["example_principals"] = {kind: principal(0) for kind, principal in PRINCIPALS.items()}
    for kind, principal in PRINCIPALS.items():
        for quota in QUOTAS:
            for pattern, window in PATTERNS.items():
                held = most(partial(fits_trust, quota=quota, principal=principal, window=window))
                both = most(partial(fits_both, quota=quota, principal=principal, window=window))
                section.details[f"{kind} at {quota}, {pattern}"] = {"trust_policy": held, "with_session_guard": both}
                goal = f">= {GOAL_GRANTS}" if (kind, quota) == ("IAM-user grants", 2048) else ""
                section.add(
                    f"{kind} at {quota} chars, expiries {pattern}",
                    held,
                    "grants",
                    baseline=bare[quota],
                    baseline_label="bare list of 60-char IAM-user ARNs",
                    goal=goal,
                    met=held >= GOAL_GRANTS if goal else None,
                    note=f"{LIVE_LABEL}; the role as a whole (its session guard must render too): {both}",
                )
    same_second = {
        kind: most(partial(fits_guard, principal=principal, window=_same_second))
        for kind, principal in PRINCIPALS.items()
    }
    section.details["session guard, every start and end in the same second"] = same_second
    for pattern, window in PATTERNS.items():
        persons = {
            kind: most(partial(fits_guard, principal=principal, window=window))
            for kind, principal in PRINCIPALS.items()
        }
        section.details[f"session guard, {pattern}"] = persons
        section.add(
            f"session guard persons at {INLINE_POLICIES_QUOTA} chars, ends {pattern}",
            persons["IAM-user grants"],
            "persons",
            note=(
                f"IAM users, each with their own start and end second; Identity Center persons: "
                f"{persons['Identity Center persons']}; if all shared one start and one end second: "
                f"{same_second['IAM-user grants']}; the role has no other inline policy"
            ),
        )
    section.details["statement_chars"] = _statement_sizes()
    return section


def _same_second(index: int) -> Window:
    """The guard's best case: persons sharing an end and a start share its statements."""
    return Window(NOW - timedelta(hours=1), NOW + timedelta(hours=1))


def _size_of(count: int, principal: Callable[[int], str], window: Callable[[int], Window]) -> tuple[int, int]:
    coverages = kept_coverages(principal, window, count)
    guard = session_guard(coverages)
    return policy_size(trust_policy(coverages, 10**6)), 0 if guard is None else policy_size(guard)


def _statement_sizes() -> dict[str, int]:
    """Where the characters go: what the first person, and each one more (the third), costs in either document."""
    vendor = policy_size(LIVE)
    users = [_size_of(n, iam_user, spread) for n in (1, 2, 3)]
    idc = [_size_of(n, identity_center_person, spread) for n in (1, 2, 3)]
    shared = [_size_of(n, iam_user, _same_second) for n in (2, 3)]
    return {
        "vendor_policy": vendor,
        "iam_users_statement_with_one_user": users[0][0] - vendor - 1,  # minus the comma between statements
        "each_more_iam_user": users[2][0] - users[1][0],
        "identity_center_statement_first": idc[0][0] - vendor - 1,
        "each_more_identity_center_person": idc[2][0] - idc[1][0],
        "guard_with_one_person": users[0][1],
        "guard_each_more_person_own_end_and_start": users[2][1] - users[1][1],
        "guard_each_more_person_sharing_end_and_start": shared[1][1] - shared[0][1],
    }
