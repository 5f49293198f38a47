"""Measure 4: how many concurrent grants a trust policy holds, against a bare principal list.

Uses the pure engine (`render_trust_policy`) with the vendor's organization statement present, 60-character
principal ARNs, and two expiry patterns: spread over 12 hours (every expiry distinct) and clustered within
5 minutes. Bucketing (rounding expiries down so grants share a statement) is compared with it switched off by
patching `EXPIRY_BUCKETS` to `(timedelta(0),)`. The baseline is a single statement naming every principal with
no condition at all: the most principals that fit, but with no IAM-level expiry.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from bench.results import Section
from trustgate import trust_policy
from trustgate.errors import TrustPolicyFullError
from trustgate.trust_policy import GrantEntry, RenderSpec, policy_size, render_trust_policy

ORG_ID = "o-exampleorg12"
ARN_LENGTH = 60
GOAL_GRANTS = 25
NOW = datetime(2026, 11, 26, 9, 7, 13, tzinfo=UTC)
# The vendor's default statement (DESIGN.md's worked example), kept byte for byte by the engine.
VENDOR_STATEMENT = {
    "Sid": "PumpOrganizationAccess",
    "Effect": "Allow",
    "Principal": {"AWS": "*"},
    "Action": "sts:AssumeRole",
    "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG_ID}},
}
LIVE = {"Version": "2012-10-17", "Statement": [VENDOR_STATEMENT]}


def principal(index: int) -> str:
    """A realistic 60-character IAM user ARN, distinct per index."""
    prefix = f"arn:aws:iam::{222222222222 + index % 7}:user/engineering/"
    name = f"engineer-{index:04d}-"
    arn = prefix + name + "x" * (ARN_LENGTH - len(prefix) - len(name))
    assert len(arn) == ARN_LENGTH
    return arn


def spread(count: int, seed: int = 6) -> list[datetime]:
    """Expiries spread over 12 hours (grants asked at different times for different durations), all distinct."""
    rng = random.Random(seed)
    seconds = rng.sample(range(15 * 60, 12 * 3600), count)
    return [NOW + timedelta(seconds=s) for s in seconds]


def clustered(count: int, seed: int = 6) -> list[datetime]:
    """Expiries within 5 minutes of each other (a team granted together for an incident), all distinct."""
    rng = random.Random(seed)
    seconds = rng.sample(range(3600, 3600 + 300), count)
    return [NOW + timedelta(seconds=s) for s in seconds]


def fits_engine(count: int, quota: int, expiries: Callable[[int], list[datetime]]) -> bool:
    grants = [GrantEntry(principal(i), at) for i, at in enumerate(expiries(count))]
    try:
        render_trust_policy(LIVE, RenderSpec(grants=grants, quota=quota), NOW)
    except TrustPolicyFullError:
        return False
    return True


def fits_bare(count: int, quota: int) -> bool:
    bare: dict[str, Any] = {
        "Version": "2012-10-17",
        "Statement": [
            VENDOR_STATEMENT,
            {"Effect": "Allow", "Principal": {"AWS": [principal(i) for i in range(count)]}, "Action": "sts:AssumeRole"},
        ],
    }
    return bool(policy_size(bare) <= quota)


def most(fits: Callable[[int], bool], ceiling: int = 1000) -> int:
    """The largest count that fits (fitting is monotonic in the count: more grants never shrink a policy)."""
    count = 0
    while count < ceiling and fits(count + 1):
        count += 1
    return count


EXACT_ONLY = (timedelta(0),)
# A what-if, not the engine's setting: coarser buckets take up to an hour off a grant's IAM-level expiry.
UP_TO_AN_HOUR = (*trust_policy.EXPIRY_BUCKETS, timedelta(minutes=30), timedelta(hours=1))


@contextmanager
def buckets(tried: tuple[timedelta, ...] | None) -> Iterator[None]:
    """Render with other expiry buckets (None: the engine's own); `EXACT_ONLY` switches bucketing off."""
    saved = trust_policy.EXPIRY_BUCKETS
    if tried is not None:
        trust_policy.EXPIRY_BUCKETS = tried
    try:
        yield
    finally:
        trust_policy.EXPIRY_BUCKETS = saved


def run(quick: bool) -> Section:
    """Pure computation, fast enough to run in full even in quick mode."""
    section = Section("capacity")
    patterns = {"spread": spread, "clustered": clustered}
    for quota in (2048, 4096):
        bare = most(partial(fits_bare, quota=quota))
        section.details[f"bare_{quota}"] = bare
        for pattern, expiries in patterns.items():
            with buckets(EXACT_ONLY):
                exact = most(partial(fits_engine, quota=quota, expiries=expiries))
            with buckets(None):
                bucketed = most(partial(fits_engine, quota=quota, expiries=expiries))
            with buckets(UP_TO_AN_HOUR):
                hourly = most(partial(fits_engine, quota=quota, expiries=expiries))
            section.details[f"{pattern}_{quota}"] = {"bucketed": bucketed, "exact": exact, "what_if_60min": hourly}
            goal = f">= {GOAL_GRANTS}" if quota == 2048 else ""
            section.add(
                f"grants at {quota} chars, expiries {pattern}, bucketed",
                bucketed,
                "grants",
                baseline=bare,
                baseline_label="bare principal list",
                goal=goal,
                met=bucketed >= GOAL_GRANTS if goal else None,
                note=f"without bucketing: {exact}; what-if buckets up to 60 min: {hourly}",
            )
            section.add(
                f"grants at {quota} chars, expiries {pattern}, exact expiries",
                exact,
                "grants",
                baseline=bare,
                baseline_label="bare principal list",
            )
    section.details["statement_chars"] = _statement_sizes()
    return section


def _statement_sizes() -> dict[str, int]:
    """Where the characters go: the fixed part of one grant statement against one principal ARN."""
    one = render_trust_policy(LIVE, RenderSpec(grants=[GrantEntry(principal(0), NOW + timedelta(hours=1))]), NOW)
    empty = policy_size(LIVE)
    return {
        "vendor_policy": empty,
        "one_grant_statement": policy_size(one) - empty - 1,  # minus the comma between statements
        "principal_arn": ARN_LENGTH + 3,  # quotes and a comma in a list
    }
