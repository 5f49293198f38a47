"""Admin services: role overviews and role policies, which may only tighten the deploy ceiling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trustgate import messages, rules, service
from trustgate.durations import format_duration
from trustgate.errors import RuleViolationError
from trustgate.identity import Caller, account_of_or_none, matches_any
from trustgate.ids import new_id
from trustgate.models import AccessRequest, AuditEvent, RequestStatus, RolePolicy
from trustgate.rules import EffectivePolicy, check_within_ceiling, effective_policy, render_spec
from trustgate.sync import SyncResult, sync_role
from trustgate.transitions import transition
from trustgate.trust_policy import Document, aws_principals, policy_size, render_trust_policy, statements_of
from trustgate.wiring import Dependencies


@dataclass(frozen=True)
class RoleOverview:
    role_arn: str
    mode: str
    policy: RolePolicy
    trust_policy: Document
    trust_policy_chars: int
    trust_policy_quota: int
    active_grants: list[AccessRequest]


def role_overview(deps: Dependencies, role_arn: str) -> RoleOverview:
    now = deps.clock.now()
    policy, _ = deps.store.get_role_policy(role_arn)
    live = deps.roles.trust_policy(role_arn)
    grants = [g for g in deps.store.active_grants(role_arn) if g.is_grant_live(now)]
    return RoleOverview(
        role_arn,
        policy.mode or "unmanaged",
        policy,
        live,
        policy_size(live),
        deps.settings.trust_policy_quota,
        grants,
    )


def roles_for_admin(deps: Dependencies, caller: Caller) -> list[str]:
    return [
        arn for arn in deps.settings.managed_role_arns if rules.is_admin(caller, service.policy_for(deps, arn).admins)
    ]


@dataclass(frozen=True)
class PolicyChange:
    policy: RolePolicy
    before: Document
    after: Document
    revoked: list[AccessRequest]
    applied: bool


def nonconforming(grant: AccessRequest, effective: EffectivePolicy) -> str | None:
    """Why an active grant is no longer allowed under a (tightened) policy, or None if it still is."""
    policy = effective.policy
    account = account_of_or_none(grant.principal_arn)
    if policy.requester_accounts and account not in policy.requester_accounts:
        return f"account {account} is no longer in requester_accounts"
    if policy.requester_patterns and not matches_any(grant.principal_arn, policy.requester_patterns):
        return "the principal no longer matches requester_patterns"
    if grant.duration > effective.max_duration:
        return f"its duration is longer than the new max_duration {format_duration(effective.max_duration)}"
    return None


def open_statements(document: Document, adopted: list[str]) -> list[str]:
    """Hand-written statements letting any principal in (the vendor's default), not adopted."""
    found = []
    for index, statement in enumerate(statements_of(document)):
        sid = statement.get("Sid", "")
        if isinstance(sid, str) and sid.startswith("TrustGate"):
            continue
        if statement.get("Effect") == "Allow" and "*" in aws_principals(statement) and sid not in adopted:
            found.append(sid or f"#{index} (no Sid)")
    return found


def change_policy(
    deps: Dependencies, caller: Caller, role_arn: str, policy: RolePolicy, *, dry_run: bool
) -> PolicyChange:
    """Validate a new role policy, show its effect, and (unless dry-run) apply it through `sync_role`."""
    settings = deps.settings
    check_within_ceiling(policy, settings)
    effective = effective_policy(role_arn, policy, settings)
    if not effective.admins:
        raise RuleViolationError("admins may not be empty: a role must keep at least one admin", code="last_admin")
    current, version = deps.store.get_role_policy(role_arn)
    live = deps.roles.trust_policy(role_arn)
    if policy.mode in ("accounts", "none"):
        still_open = open_statements(live, policy.adopt_statements)
        if still_open:
            raise RuleViolationError(
                f"statement(s) {', '.join(still_open)} still let the whole organization assume the role; "
                f"add their Sid to adopt_statements so mode {policy.mode!r} replaces them",
                code="unadopted_open_statement",
            )
    now = deps.clock.now()
    grants = [g for g in deps.store.active_grants(role_arn) if g.is_grant_live(now)]
    revoked = [g for g in grants if nonconforming(g, effective)]
    keep = [g for g in grants if g not in revoked]
    after = render_trust_policy(live, render_spec(effective, keep, settings), now)  # raises before anything is written
    if dry_run:
        return PolicyChange(policy, live, after, revoked, applied=False)
    audit = AuditEvent(
        id=new_id(now),
        at=now,
        actor=caller.arn,
        action="policy.changed",
        role_arn=role_arn,
        before=current.model_dump(mode="json", exclude_defaults=True),
        after=policy.model_dump(mode="json", exclude_defaults=True),
    )
    deps.store.put_role_policy(role_arn, policy, version, audit)
    service.publish_event(deps, audit)
    ended = []
    for grant in revoked:
        reason = f"no longer allowed by the role policy: {nonconforming(grant, effective)}"
        ended.append(transition(deps, grant, RequestStatus.REVOKED, caller.arn, reason=reason, expires_at=now))
    result = sync_role(deps, role_arn, caller.arn, "role policy changed")
    for grant in ended:
        deps.schedules.delete(grant.id)
        service.notify(deps, messages.outcome_for_requester(grant))
    return PolicyChange(policy, live, result.after, ended, applied=True)


def sync_now(deps: Dependencies, caller: Caller, role_arn: str) -> SyncResult:
    return sync_role(deps, role_arn, caller.arn, "manual sync")


def policy_view(deps: Dependencies, role_arn: str) -> dict[str, Any]:
    """The stored policy with every default shown, so admins see what applies."""
    policy, _ = deps.store.get_role_policy(role_arn)
    effective = effective_policy(role_arn, policy, deps.settings)
    view = policy.model_dump(mode="json")
    view["effective"] = {
        "approvers": list(effective.approvers),
        "admins": list(effective.admins),
        "default_duration": format_duration(effective.default_duration),
        "max_duration": format_duration(effective.max_duration),
        "approval_window": format_duration(effective.approval_window),
    }
    return view
