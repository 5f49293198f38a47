"""The session guard: an inline Deny policy that ends each person's live sessions at their coverage's end.

Pure: no I/O, no clock. Removing a principal from a trust policy only stops *new* AssumeRole calls;
credentials already issued live on for up to the role's MaxSessionDuration. Inside the role a session's
`aws:userid` is `<role id>:<session name>`, and every grant pins the session name, so two Deny rules per
person end exactly that person's sessions and nobody else's:

* `aws:CurrentTime >= end`: from the coverage's end on, every call of the person's sessions is refused;
* `aws:TokenIssueTime < start`: sessions issued before this coverage (an earlier, revoked one) stay dead.
* Once a coverage has ended, the first rule alone denies everything; all ended persons share one rule.
  Only a person with an earlier coverage whose sessions may still be alive needs it: no grant statement
  named the person before their first coverage, so no session with their pinned name predates it that
  TrustGate gave (a standing statement that lets them in anyway is access TrustGate does not govern).
  Leaving it out where it cannot matter halves the guard's cost per person.

Persons sharing an end (or a start) share one statement. A rule outlives the last moment a session of
its coverage could be issued (its end, or the later sync that took the person out of the trust policy)
by the longest a session lives (`keep_for`), then it is pruned; with nothing left the policy is deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from trustgate.core.clock import to_rfc3339
from trustgate.core.coverage import Coverage
from trustgate.core.errors import SessionGuardFullError
from trustgate.core.trust_policy import VERSION, Document, Statement, policy_size, statements_of

GUARD_POLICY_NAME = "TrustGateSessionGuard"
# The longest any role session can live (MaxSessionDuration tops out at 12 hours). The guard remembers an
# ended coverage this long, not the role's current MaxSessionDuration: lowering that setting does not
# shorten sessions already issued under the old one.
SESSION_LIFETIME_MAX = timedelta(hours=12)
INLINE_POLICIES_QUOTA = 10240  # all inline policies of a role together, whitespace not counted
END_SID_PREFIX = "TrustGateEnd"
ENDED_SID = "TrustGateEnded"
START_SID_PREFIX = "TrustGateStart"


@dataclass(frozen=True)
class GuardSpec:
    """What decides a role's session guard besides its coverages."""

    role_id: str  # the role's unique id (AROA…), from GetRole
    keep_for: timedelta  # how long a session issued before the end may live (see SESSION_LIFETIME_MAX)
    other_inline_size: int = 0  # characters the role's other inline policies already use
    quota: int = INLINE_POLICIES_QUOTA


def render_session_guard(coverages: Sequence[Coverage], spec: GuardSpec, now: datetime) -> Document | None:
    """The guard the role should have, or None when no coverage needs one (the policy is then deleted).

    Raises SessionGuardFullError when it would not fit beside the role's other inline policies.
    """
    guarded = [c for c in coverages if c.issuable_until + spec.keep_for > now]
    if not guarded:
        return None
    live = [c for c in guarded if c.is_live(now)]
    ended = [c for c in guarded if not c.is_live(now)]
    ends: dict[datetime, list[str]] = {}
    starts: dict[datetime, list[str]] = {}
    for coverage in live:
        userids = _userids(spec.role_id, coverage)
        ends.setdefault(coverage.ends_at, []).extend(userids)
        if needs_start_rule(coverage, spec.keep_for):
            starts.setdefault(coverage.starts_at, []).extend(userids)
    statements = []
    if ended:
        # Every ended coverage's end has passed, so from now on one rule denies them all: the latest of
        # those ends (still in the past) works for each, and stays the same until someone else's ends.
        userids = [userid for c in ended for userid in _userids(spec.role_id, c)]
        latest_end = max(c.ends_at for c in ended)
        statements.append(_deny(ENDED_SID, userids, "DateGreaterThanEquals", "aws:CurrentTime", latest_end))
    statements += [
        _deny(f"{END_SID_PREFIX}{n}", userids, "DateGreaterThanEquals", "aws:CurrentTime", at)
        for n, (at, userids) in enumerate(sorted(ends.items()), 1)
    ] + [
        _deny(f"{START_SID_PREFIX}{n}", userids, "DateLessThan", "aws:TokenIssueTime", at)
        for n, (at, userids) in enumerate(sorted(starts.items()), 1)
    ]
    document: Document = {"Version": VERSION, "Statement": statements}
    size = policy_size(document)
    if size + spec.other_inline_size > spec.quota:
        raise SessionGuardFullError(spec.quota, size, spec.other_inline_size)
    return document


def needs_start_rule(coverage: Coverage, keep_for: timedelta) -> bool:
    """Could a session from the person's earlier coverage still be alive when this one starts?"""
    return coverage.earlier_until is not None and coverage.earlier_until + keep_for > coverage.starts_at


def _userids(role_id: str, coverage: Coverage) -> list[str]:
    """Every `aws:userid` the person's sessions may carry: one per session name their grants pinned."""
    names = coverage.session_names or (coverage.person.session_name,)
    return [session_userid(role_id, name) for name in names]


def session_userid(role_id: str, session_name: str) -> str:
    """`aws:userid` of a session of the role: `<role unique id>:<RoleSessionName>`."""
    return f"{role_id}:{session_name}"


def guard_window(document: Document | None, userid: str) -> tuple[datetime | None, datetime | None]:
    """(start, end) the guard enforces for one session userid; (None, None) when it names it nowhere."""
    start = end = None
    for statement in statements_of(document or {}):
        for operator, key in (("DateGreaterThanEquals", "aws:CurrentTime"), ("DateLessThan", "aws:TokenIssueTime")):
            condition = statement.get("Condition", {})
            userids = condition.get("StringEquals", {}).get("aws:userid", [])
            named = [userids] if isinstance(userids, str) else list(userids)
            raw = condition.get(operator, {}).get(key)
            if userid in named and isinstance(raw, str):
                moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
                if key == "aws:CurrentTime":
                    end = moment
                else:
                    start = moment
    return start, end


def _deny(sid: str, userids: list[str], operator: str, key: str, at: datetime) -> Statement:
    names = sorted(userids)
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {
            operator: {key: to_rfc3339(at)},
            "StringEquals": {"aws:userid": names[0] if len(names) == 1 else names},
        },
    }
