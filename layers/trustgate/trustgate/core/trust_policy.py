"""The trust-policy engine: derives a role's trust policy from its grants. Pure: no I/O, no clock.

TrustGate owns only statements whose Sid starts with `TrustGate`, and re-renders all of them on every sync.
The role's hand-written statements are kept as they are and in order, except where an admin took standing
access over (a `mode`): the hand-written statements present then are on record, and one that appears later
is drift, removed (see `drift_in`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from trustgate.core.clock import to_rfc3339
from trustgate.core.errors import InvalidPrincipalError, TrustPolicyFullError
from trustgate.core.identity import UNIQUE_ID, principal_for_arn

if TYPE_CHECKING:
    from trustgate.core.coverage import Coverage

Document = dict[str, Any]
Statement = dict[str, Any]

MANAGED_SID_PREFIX = "TrustGate"
BASELINE_SID = "TrustGateBaseline"
GRANT_SID_PREFIX = "TrustGateGrant"
USERS_SID = f"{GRANT_SID_PREFIX}Users"
SESSION_SID_PREFIX = f"{GRANT_SID_PREFIX}Session"
# IAM users' session name is pinned to their own user name; AWS documents the variable for exactly this,
# and it is absent for temporary credentials, so the statement can only ever match IAM users.
OWN_USER_NAME = "${aws:username}"
# IAM refuses a trust policy without statements; when nobody may assume the role, say so explicitly.
NOBODY = {"Sid": "TrustGateNoStandingAccess", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
ASSUME = "sts:AssumeRole"
VERSION = "2012-10-17"


@dataclass(frozen=True)
class Baseline:
    """Standing access TrustGate renders when the admin manages it (`mode`)."""

    mode: str  # organization | accounts | none
    organization_id: str = ""
    standing_principals: tuple[str, ...] = ()


@dataclass(frozen=True)
class GrantConditions:
    """Conditions every managed statement carries, from the role policy."""

    require_mfa: bool = False
    source_ip_ranges: tuple[str, ...] = ()
    principal_tags: tuple[tuple[str, str], ...] = ()


# Where standing access comes from: the stored policy's baseline; the baseline statement IAM holds now (pruned of
# deleted principals) when the policy no longer renders; or none at all, failing closed.
Standing = Literal["policy", "held", "none"]


@dataclass(frozen=True)
class RenderSpec:
    """Everything besides the live document that decides the rendered trust policy."""

    coverages: Sequence[Coverage] = ()
    baseline: Baseline | None = None
    conditions: GrantConditions = field(default_factory=GrantConditions)
    adopted_sids: frozenset[str] = frozenset()
    quota: int = 2048
    partition: str = "aws"
    # The role's hand-written statements when an admin set a mode (None: no record, every one is kept).
    hand_written: tuple[Statement, ...] | None = None
    standing: Standing = "policy"


def policy_size(document: Document) -> int:
    """Characters IAM counts against the quota: the JSON without any whitespace."""
    return len(re.sub(r"\s", "", serialize(document)))


def serialize(document: Document) -> str:
    """Compact JSON, as written to IAM."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def is_managed(statement: Statement) -> bool:
    sid = statement.get("Sid")
    return isinstance(sid, str) and sid.startswith(MANAGED_SID_PREFIX)


def statements_of(document: Document) -> list[Statement]:
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        return [statements]
    return list(statements)


def unmanaged_statements(document: Document, adopted_sids: Iterable[str] = ()) -> list[Statement]:
    """Hand-written statements, in order, minus the ones an admin adopted and deleted principals."""
    adopted = set(adopted_sids)
    kept: list[Statement] = []
    for statement in statements_of(document):
        if is_managed(statement) or statement.get("Sid") in adopted:
            continue
        pruned = _without_unique_ids(statement)
        if pruned is not None:
            kept.append(pruned)
    return kept


def render_trust_policy(live: Document, spec: RenderSpec, now: datetime) -> Document:
    """The trust policy the role should have: unmanaged statements + baseline + live coverages.

    Every grant statement pins `sts:RoleSessionName`: IAM users share one statement pinned to
    `${aws:username}`; every other person gets one naming their session ARNs and their literal session
    name. A statement's `DateLessThan` is the latest end among its members: the session guard ends each
    person's sessions at their own end, so the trust policy needs no statement per distinct expiry.

    Raises TrustPolicyFullError when the result exceeds the quota and is larger than the live document
    (a removal is never refused, even from a policy already over the quota), and InvalidPrincipalError
    for a principal that may never be rendered.
    """
    kept = hand_written_statements(live, spec)
    statements = kept + _baseline_statements(spec, live) + _grant_statements(spec, now)
    document = {"Version": live.get("Version", VERSION), "Statement": statements or [dict(NOBODY)]}
    size = policy_size(document)
    if size > spec.quota and size > policy_size(live):  # never refuse a change that only shrinks it
        raise TrustPolicyFullError(spec.quota, size)
    return document


def hand_written_statements(live: Document, spec: RenderSpec) -> list[Statement]:
    """The hand-written statements the rendered policy keeps, in order.

    Without a record: every one in the live document, minus the adopted ones while a baseline replaces them.
    With one: the recorded statements (minus the adopted ones while a baseline replaces them), each as IAM
    holds it now (a deleted principal pruned), or restored from the record when it is gone from IAM; anything
    else is drift. When the policy no longer renders (`standing` is not "policy") nothing is restored: only
    what IAM holds now is kept, so a stale record can never block a removal.
    """
    adopted = spec.adopted_sids if spec.baseline else frozenset()
    if spec.hand_written is None:
        return unmanaged_statements(live, adopted)
    present = unmanaged_statements(live)
    kept: list[Statement] = []
    for recorded in spec.hand_written:
        match = _take_match(present, recorded)
        if recorded.get("Sid") in adopted:
            continue
        if match is not None:
            kept.append(match)
        elif spec.standing == "policy":
            kept.append(recorded)
    return kept


def drift_in(live: Document, spec: RenderSpec) -> list[Statement]:
    """Hand-written statements in the live document the record does not hold, as IAM holds them.

    Only where a record exists (an admin set a mode): each of these is removed by the render. A recorded
    statement an admin adopted that appears again while the baseline replaces it is drift too, and so is one
    posing as TrustGate's own (a `TrustGate…` Sid TrustGate never renders), and a `TrustGateBaseline` that is not
    the one the stored policy renders (a principal or condition changed by hand; also once after the deployer
    changes the organization id, which the baseline carries).
    """
    if spec.hand_written is None:
        return []
    adopted = spec.adopted_sids if spec.baseline else frozenset()
    recorded = list(spec.hand_written)
    # Only while the policy renders: a held or absent baseline is already a fallback, reported as such.
    baselines = [_canon(s) for s in _baseline_statements(spec, live)] if spec.standing == "policy" else None
    found: list[Statement] = []
    for statement in statements_of(live):
        if is_managed(statement):
            if not _rendered_by_trustgate(statement) or (
                statement.get("Sid") == BASELINE_SID and baselines is not None and _canon(statement) not in baselines
            ):  # a hand-written one posing as TrustGate's
                found.append(statement)
            continue
        pruned = _without_unique_ids(statement)
        if pruned is None:  # only deleted principals left: pruned anyway, nothing anyone could use
            continue
        match = next((r for r in recorded if _holds(r, pruned)), None)
        if match is None or match.get("Sid") in adopted:
            found.append(statement)
        if match is not None:
            recorded.remove(match)
    return found


def _rendered_by_trustgate(statement: Statement) -> bool:
    sid = statement.get("Sid")
    return sid in (BASELINE_SID, USERS_SID, NOBODY["Sid"]) or bool(
        isinstance(sid, str) and re.fullmatch(rf"{SESSION_SID_PREFIX}\d+", sid)
    )


def _take_match(present: list[Statement], recorded: Statement) -> Statement | None:
    """Remove and return the live statement that is `recorded` as IAM holds it now, if any."""
    for statement in present:
        if _holds(recorded, statement):
            present.remove(statement)
            return statement
    return None


def _holds(recorded: Statement, live: Statement) -> bool:
    """Is `live` the recorded statement, possibly with fewer principals (IAM drops deleted ones)? Never more."""
    if _shape(recorded) != _shape(live):
        return False
    return set(aws_principals(live)) <= set(aws_principals(recorded))


def _shape(statement: Statement) -> Any:
    """A statement in canonical form without its `Principal.AWS` values (compared separately)."""
    principal = statement.get("Principal")
    if isinstance(principal, dict) and "AWS" in principal:
        statement = {**statement, "Principal": {k: v for k, v in principal.items() if k != "AWS"}}
    return _canon(statement)


def grant_expiry_in(document: Document, principal_arn: str) -> datetime | None:
    """The IAM-level expiry a rendered document gives a principal, or None if it is not granted."""
    found: datetime | None = None
    for statement in statements_of(document):
        sid = statement.get("Sid", "")
        if not (isinstance(sid, str) and sid.startswith(GRANT_SID_PREFIX)):
            continue
        if principal_arn in aws_principals(statement):
            raw = statement.get("Condition", {}).get("DateLessThan", {}).get("aws:CurrentTime")
            if isinstance(raw, str):
                moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
                found = moment if found is None else max(found, moment)
    return found


def departed_principals(before: Document, after: Document, now: datetime) -> dict[str, datetime]:
    """Principals TrustGate's grant statements named in `before` but not in `after`, each with the last
    moment `before` let them assume the role (`now`, or their statement's end if that came first)."""
    remaining = {arn for statement in _grant_statements_in(after) for arn in aws_principals(statement)}
    departed: dict[str, datetime] = {}
    for statement in _grant_statements_in(before):
        raw = statement.get("Condition", {}).get("DateLessThan", {}).get("aws:CurrentTime")
        ends = datetime.fromisoformat(raw.replace("Z", "+00:00")) if isinstance(raw, str) else now
        for arn in aws_principals(statement):
            if arn not in remaining:
                until = min(ends, now)
                departed[arn] = max(departed.get(arn, until), until)
    return departed


def _grant_statements_in(document: Document) -> list[Statement]:
    return [
        statement
        for statement in statements_of(document)
        if isinstance(statement.get("Sid"), str) and statement["Sid"].startswith(GRANT_SID_PREFIX)
    ]


def deleted_principal_ids(document: Document) -> set[str]:
    """Unique ids IAM shows in TrustGate's own statements where a granted principal was deleted."""
    return {
        principal
        for statement in statements_of(document)
        if is_managed(statement)
        for principal in aws_principals(statement)
        if UNIQUE_ID.match(principal)
    }


def aws_principals(statement: Statement) -> list[str]:
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    if not isinstance(principal, dict):
        return []
    value = principal.get("AWS", [])
    return [value] if isinstance(value, str) else list(value)


def normalized(document: Document) -> Document:
    """A canonical form for comparing documents as IAM stores them (single-item lists become strings)."""
    return {"Version": document.get("Version", VERSION), "Statement": [_canon(s) for s in statements_of(document)]}


def _canon(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _canon(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        items = [_canon(item) for item in value]
        if len(items) == 1 and not isinstance(items[0], dict):
            return items[0]
        if all(isinstance(item, str) for item in items):
            return sorted(items)
        return items
    return value


def same_policy(left: Document, right: Document) -> bool:
    return normalized(left) == normalized(right)


# -- rendering helpers ---------------------------------------------------------------------------


def _grant_statements(spec: RenderSpec, now: datetime) -> list[Statement]:
    live = [coverage for coverage in spec.coverages if coverage.is_live(now)]
    for coverage in live:
        for arn in coverage.principal_arns:
            principal_for_arn(arn, spec.partition)  # refuses root, wildcards, other partitions
    users = [c for c in live if c.person.kind == "iam_user"]
    others = sorted((c for c in live if c.person.kind != "iam_user"), key=lambda c: c.person.key)
    statements = []
    if users:
        arns = sorted({arn for c in users for arn in c.principal_arns})
        statements.append(_grant_statement(USERS_SID, arns, OWN_USER_NAME, max(c.ends_at for c in users), spec))
    for number, coverage in enumerate(others, 1):
        statements.append(
            _grant_statement(
                f"{SESSION_SID_PREFIX}{number}",
                list(coverage.principal_arns),
                coverage.person.session_name,
                coverage.ends_at,
                spec,
            )
        )
    return statements


def _grant_statement(sid: str, arns: list[str], session_name: str, ends: datetime, spec: RenderSpec) -> Statement:
    condition = _conditions(spec.conditions)
    condition["DateLessThan"] = {"aws:CurrentTime": to_rfc3339(ends)}
    condition.setdefault("StringEquals", {})["sts:RoleSessionName"] = session_name
    condition["StringEquals"] = dict(sorted(condition["StringEquals"].items()))
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": arns[0] if len(arns) == 1 else arns},
        "Action": ASSUME,
        "Condition": dict(sorted(condition.items())),
    }


def _baseline_statements(spec: RenderSpec, live: Document) -> list[Statement]:
    baseline = spec.baseline
    if baseline is None or baseline.mode == "none" or spec.standing == "none":
        return []
    held: set[str] | None = None
    if spec.standing == "held":
        # The policy no longer renders as stored: its own baseline, limited to the principals IAM still shows
        # by ARN (a deleted one shows as a unique id). Never a principal or condition added to IAM by hand.
        held = {p for s in statements_of(live) if s.get("Sid") == BASELINE_SID for p in aws_principals(s)}
    if baseline.mode == "organization":
        if not re.fullmatch(r"o-[a-z0-9]{10,32}", baseline.organization_id):
            raise InvalidPrincipalError(
                "organization-wide standing access needs the organization id (OrganizationId parameter); "
                "a wildcard principal is never rendered without it"
            )
        principal: str | list[str] = "*"
        condition = _conditions(spec.conditions)
        condition.setdefault("StringEquals", {})["aws:PrincipalOrgID"] = baseline.organization_id
    else:
        principals = sorted(
            {_standing_principal(p, spec.partition) for p in baseline.standing_principals}
            if held is None
            else {p for p in _renderable(baseline.standing_principals, spec.partition) if p in held}
        )
        if not principals:
            return []
        principal = principals[0] if len(principals) == 1 else principals
        condition = _conditions(spec.conditions)
        if re.fullmatch(r"o-[a-z0-9]{10,32}", baseline.organization_id):
            # IAM itself keeps standing access inside the organization, whatever account a principal names.
            condition.setdefault("StringEquals", {})["aws:PrincipalOrgID"] = baseline.organization_id
            condition["StringEquals"] = dict(sorted(condition["StringEquals"].items()))
    statement: Statement = {"Sid": BASELINE_SID, "Effect": "Allow", "Principal": {"AWS": principal}, "Action": ASSUME}
    if condition:
        statement["Condition"] = dict(sorted(condition.items()))
    return [statement]


def _renderable(values: Iterable[str], partition: str) -> Iterator[str]:
    """The standing principals that render, skipping those that cannot (for a fallback that must not fail)."""
    for value in values:
        try:
            yield _standing_principal(value, partition)
        except InvalidPrincipalError:
            continue


def _standing_principal(value: str, partition: str) -> str:
    if re.fullmatch(r"\d{12}", value):
        return f"arn:{partition}:iam::{value}:root"  # the account, delegating to its own IAM policies
    if value == "*" or "*" in value:
        raise InvalidPrincipalError(f"standing principal {value!r} may not contain a wildcard")
    if not value.startswith(f"arn:{partition}:"):
        raise InvalidPrincipalError(
            f"standing principal {value!r} is not an account id or an ARN in partition {partition!r}"
        )
    return value


def _conditions(conditions: GrantConditions) -> dict[str, Any]:
    rendered: dict[str, Any] = {}
    if conditions.require_mfa:
        rendered["Bool"] = {"aws:MultiFactorAuthPresent": "true"}
    if conditions.source_ip_ranges:
        ranges = sorted(conditions.source_ip_ranges)
        rendered["IpAddress"] = {"aws:SourceIp": ranges[0] if len(ranges) == 1 else ranges}
    if conditions.principal_tags:
        rendered["StringEquals"] = {
            f"aws:PrincipalTag/{key}": value for key, value in sorted(conditions.principal_tags)
        }
    return rendered


def _without_unique_ids(statement: Statement) -> Statement | None:
    """Drop principals IAM shows as unique ids (deleted users/roles); None if nothing is left."""
    principal = statement.get("Principal")
    if not isinstance(principal, dict) or "AWS" not in principal:
        return statement
    names = principal["AWS"]
    values = [names] if isinstance(names, str) else list(names)
    alive = [value for value in values if not UNIQUE_ID.match(value)]
    if len(alive) == len(values):
        return statement
    if not alive and len(principal) == 1:
        return None
    pruned_principal = dict(principal)
    if alive:
        pruned_principal["AWS"] = alive[0] if isinstance(names, str) or len(alive) == 1 else alive
    else:
        del pruned_principal["AWS"]
    return {**statement, "Principal": pruned_principal}
