"""Admin services: role overviews and role policies, which may only tighten the deploy ceiling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trustgate import messages, rules, service
from trustgate.durations import format_duration
from trustgate.errors import RuleViolationError
from trustgate.identity import Caller, account_of_or_none, is_identity_role_session, matches_person, person_of
from trustgate.ids import new_id
from trustgate.models import AccessRequest, AuditEvent, RequestStatus, RolePolicy
from trustgate.rules import EffectivePolicy, check_within_ceiling, effective_policy
from trustgate.sync import SyncResult, end_now, grants_shaping, plan_role, sync_role
from trustgate.trust_policy import Document, aws_principals, policy_size, statements_of
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
    session_guard: Document | None = None


def role_overview(deps: Dependencies, role_arn: str, *, with_guard: bool = False) -> RoleOverview:
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
        deps.roles.session_guard(role_arn) if with_guard else None,
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
    if policy.requester_patterns and not matches_person(grant.principal_arn, policy.requester_patterns):
        return "the principal no longer matches requester_patterns"
    person = person_of(grant.principal_arn)
    if person.kind == "identity_role" and not is_identity_role_session(grant.principal_arn, effective.identity_roles):
        return f"role {person.role_name} is no longer an identity role, so its sessions no longer name a person"
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
    live_role = deps.roles.read(role_arn)
    live = live_role.trust_policy
    if policy.mode in ("accounts", "none"):
        still_open = open_statements(live, policy.adopt_statements)
        if still_open:
            raise RuleViolationError(
                f"statement(s) {', '.join(still_open)} still let the whole organization assume the role; "
                f"add their Sid to adopt_statements so mode {policy.mode!r} replaces them",
                code="unadopted_open_statement",
            )
    now = deps.clock.now()
    history = grants_shaping(deps, role_arn)
    revoked = [g for g in history if g.is_grant_live(now) and nonconforming(g, effective)]
    revoked_ids = {g.id for g in revoked}
    as_if = [
        g.model_copy(update={"status": RequestStatus.REVOKED, "expires_at": now}) if g.id in revoked_ids else g
        for g in history
    ]
    after = plan_role(deps, role_arn, live_role, as_if, effective).trust_policy  # raises before anything is written
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
    ended: list[AccessRequest] = []

    def revoke_nonconforming() -> None:
        at = deps.clock.now()
        for grant in deps.store.active_grants(role_arn):
            why = nonconforming(grant, effective)
            if why and grant.is_grant_live(at):
                reason = f"no longer allowed by the role policy: {why}"
                ended.append(end_now(deps, grant, RequestStatus.REVOKED, reason, caller.arn))

    result = sync_role(deps, role_arn, caller.arn, "role policy changed", under_lock=revoke_nonconforming)
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
