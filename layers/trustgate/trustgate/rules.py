"""The rules of a role: who may request, approve and administer, for how long, and when a person is not needed.

Pure: takes the role policy, the deploy ceiling and values; returns values or raises typed errors.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from trustgate.coverage import Coverage
from trustgate.durations import format_duration
from trustgate.errors import (
    AlreadyDecidedByYouError,
    AlreadyDecidedError,
    CeilingExceededError,
    ForbiddenError,
    OwnRequestError,
    RuleViolationError,
)
from trustgate.identity import ACCEPTED_IDENTITIES, Caller, Person, check_person, matches_person
from trustgate.models import AccessRequest, AutoApproveRule, RequestStatus, RolePolicy
from trustgate.settings import Settings
from trustgate.trust_policy import Baseline, GrantConditions, RenderSpec


@dataclass(frozen=True)
class EffectivePolicy:
    """A role policy with every gap filled from the ceiling: what actually applies to a role."""

    role_arn: str
    policy: RolePolicy
    approvers: tuple[str, ...]
    admins: tuple[str, ...]
    default_duration: timedelta
    max_duration: timedelta
    min_duration: timedelta
    approval_window: timedelta
    identity_roles: tuple[str, ...] = ()


def effective_policy(role_arn: str, policy: RolePolicy, settings: Settings) -> EffectivePolicy:
    max_duration = min(policy.max_duration or settings.max_duration, settings.max_duration)
    default = min(policy.default_duration or settings.default_duration, max_duration)
    window = min(policy.approval_window or settings.default_approval_window, settings.max_approval_window)
    return EffectivePolicy(
        role_arn=role_arn,
        policy=policy,
        approvers=tuple(policy.approvers or settings.default_approvers),
        admins=tuple(dict.fromkeys([*settings.bootstrap_admins, *policy.admins])),
        default_duration=default,
        max_duration=max_duration,
        min_duration=settings.min_duration,
        approval_window=window,
        identity_roles=tuple(arn for arn in policy.identity_roles if arn in settings.identity_role_arns),
    )


def check_within_ceiling(policy: RolePolicy, settings: Settings) -> None:
    """Refuse a role policy that is looser than the vendor's ceiling, naming the field and the ceiling."""
    for name, ceiling in (("max_duration", settings.max_duration), ("default_duration", settings.max_duration)):
        value = getattr(policy, name)
        if value is not None and value > ceiling:
            raise CeilingExceededError(name, format_duration(ceiling))
    if policy.approval_window is not None and policy.approval_window > settings.max_approval_window:
        raise CeilingExceededError("approval_window", format_duration(settings.max_approval_window))
    for name in ("max_duration", "default_duration", "approval_window"):
        value = getattr(policy, name)
        if value is not None and value < settings.min_duration:
            raise RuleViolationError(
                f"{name} must be at least {format_duration(settings.min_duration)}", code="invalid_policy"
            )
    if policy.default_duration and policy.max_duration and policy.default_duration > policy.max_duration:
        raise RuleViolationError("default_duration may not be longer than max_duration", code="invalid_policy")
    if settings.allowed_account_ids:
        outside = [a for a in policy.requester_accounts if a not in settings.allowed_account_ids]
        if outside:
            raise CeilingExceededError(
                "requester_accounts",
                ", ".join(settings.allowed_account_ids),
                f"requester_accounts {outside} are outside the accounts this deployment allows "
                f"({', '.join(settings.allowed_account_ids)})",
            )
    for rule in policy.auto_approve:
        if rule.max_duration is not None and rule.max_duration > settings.max_duration:
            raise CeilingExceededError("auto_approve.max_duration", format_duration(settings.max_duration))
    if settings.allowed_account_ids:
        standing_outside = [
            p
            for p in policy.standing_principals
            if (p if p.isdigit() else p.split(":")[4]) not in settings.allowed_account_ids
        ]
        if standing_outside:
            raise CeilingExceededError(
                "standing_principals",
                ", ".join(settings.allowed_account_ids),
                f"standing_principals {standing_outside} are outside the accounts this deployment allows "
                f"({', '.join(settings.allowed_account_ids)})",
            )
    outside_roles = [arn for arn in policy.identity_roles if arn not in settings.identity_role_arns]
    if outside_roles:
        allowed = ", ".join(settings.identity_role_arns) or "none"
        raise CeilingExceededError(
            "identity_roles",
            allowed,
            f"identity_roles {outside_roles} are not among the roles this deployment lets name persons "
            f"(IdentityRoleArns: {allowed}); the deployer must add them first",
        )


def check_may_request(caller: Caller, effective: EffectivePolicy, settings: Settings) -> Person:
    """May the caller ask for this role? Returns the person they are (403 not_a_person / forbidden otherwise)."""
    person = check_person(caller, effective.identity_roles)
    if settings.allowed_account_ids and caller.account not in settings.allowed_account_ids:
        raise ForbiddenError(f"account {caller.account} is not allowed to use TrustGate in this deployment")
    policy = effective.policy
    if policy.requester_accounts and caller.account not in policy.requester_accounts:
        raise ForbiddenError(
            f"account {caller.account} may not request {effective.role_arn}; "
            "ask an admin to add it to the role policy's requester_accounts"
        )
    if policy.requester_patterns and not caller.matches(policy.requester_patterns):
        raise ForbiddenError(
            f"{caller.arn} may not request {effective.role_arn}; "
            "ask an admin to add a matching pattern to the role policy's requester_patterns"
        )
    return person


def check_request(duration: timedelta, justification: str, ticket: str | None, effective: EffectivePolicy) -> None:
    """Duration, justification and ticket against the role's rules (422 on a broken rule)."""
    if duration > effective.max_duration:
        raise RuleViolationError(
            f"duration {format_duration(duration)} is longer than this role's maximum "
            f"{format_duration(effective.max_duration)}; ask for less",
            code="duration_too_long",
        )
    if duration < effective.min_duration:
        raise RuleViolationError(
            f"duration {format_duration(duration)} is shorter than the minimum {format_duration(effective.min_duration)}",
            code="duration_too_short",
        )
    minimum = effective.policy.justification_min_length
    if len(justification.strip()) < minimum:
        raise RuleViolationError(
            f"justification must be at least {minimum} characters: say what you will do with the role",
            code="justification_too_short",
        )
    pattern = effective.policy.ticket_pattern
    if pattern:
        if not ticket:
            raise RuleViolationError(f"this role needs a ticket matching {pattern!r}", code="ticket_required")
        if not re.fullmatch(pattern, ticket):
            raise RuleViolationError(f"ticket {ticket!r} does not match {pattern!r}", code="ticket_invalid")


def check_may_decide(caller: Caller, request: AccessRequest) -> Person:
    """An approver named by the request's snapshot of the policy, a person, and not the requester unless allowed.

    Compares persons, not ARNs: an Identity Center user is one person across every permission set and
    account; an IAM user is one person whatever the name's case; a session of a role that is not an
    identity role is no person at all (403 not_a_person).
    """
    person = check_person(caller, request.identity_roles)
    if same_human(person, request.requester) and not request.allow_self_approval:
        raise OwnRequestError(
            f"you ({person.label}) asked for this access, whichever identity you use now; another approver must decide it"
        )
    if request.approver_kinds and person.kind not in request.approver_kinds:
        kinds = ", ".join(request.approver_kinds)
        raise ForbiddenError(
            f"approvers of {request.role_arn} must sign in as: {kinds}; you are {person.label}. {ACCEPTED_IDENTITIES}"
        )
    if not caller.matches(request.approvers):
        raise ForbiddenError(f"{caller.arn} is not an approver for {request.role_arn}")
    return person


def same_human(one: Person, other: Person) -> bool:
    """Could these be one human? The same person, or the same name (ignoring case) under another identity:
    nothing signed links an IAM user `alice` to an Identity Center user `alice`, so for self-approval and
    distinct approvers TrustGate takes the stricter reading."""
    return one.key == other.key or one.session_name.lower() == other.session_name.lower()


def check_decidable(request: AccessRequest, approver: Caller, now: datetime) -> None:
    """May this approver add a decision now? Open, inside its window, theirs to decide, not yet decided by them."""
    if request.status != RequestStatus.PENDING or request.decided_at is not None:
        outcome = (
            "approved"
            if request.status in (RequestStatus.PENDING, RequestStatus.ACTIVE, RequestStatus.EXPIRED)
            else request.status.value.replace("_", " ")
        )
        raise AlreadyDecidedError(f"request {request.id} was already {outcome}; nothing more is needed from you")
    if request.approval_deadline and request.approval_deadline <= now:
        raise AlreadyDecidedError(f"request {request.id} is past its approval window")
    person = check_may_decide(approver, request)
    if any(same_human(a.approver, person) for a in request.approvals):
        raise AlreadyDecidedByYouError(
            f"you ({person.label}) already decided this request, possibly through another identity; "
            "another approver must add theirs"
        )


def is_admin(caller: Caller, effective_admins: Sequence[str]) -> bool:
    return caller.matches(effective_admins)


def auto_approves(request: AccessRequest, rules: Sequence[AutoApproveRule], at: datetime) -> bool:
    """True when some rule's every condition holds for this request at this time."""
    return any(_rule_holds(rule, request, at) for rule in rules)


def _rule_holds(rule: AutoApproveRule, request: AccessRequest, at: datetime) -> bool:
    if rule.principals and not matches_person(request.principal_arn, rule.principals):
        return False
    if rule.max_duration is not None and request.duration > rule.max_duration:
        return False
    if rule.weekdays and at.weekday() not in rule.weekdays:
        return False
    return not (rule.hours_utc is not None and not rule.hours_utc[0] <= at.hour < rule.hours_utc[1])


def render_spec(
    effective: EffectivePolicy, coverages: Sequence[Coverage], settings: Settings, quota: int | None = None
) -> RenderSpec:
    """Turn a role's effective policy and its coverages into the trust-policy engine's input."""
    policy = effective.policy
    baseline = (
        Baseline(policy.mode, settings.organization_id, tuple(policy.standing_principals)) if policy.mode else None
    )
    return RenderSpec(
        coverages=tuple(coverages),
        baseline=baseline,
        conditions=GrantConditions(
            require_mfa=policy.require_mfa,
            source_ip_ranges=tuple(policy.source_ip_ranges),
            principal_tags=tuple(sorted(policy.requester_principal_tags.items())),
        ),
        adopted_sids=frozenset(policy.adopt_statements),
        quota=quota or settings.trust_policy_quota,
        partition=settings.partition,
    )
