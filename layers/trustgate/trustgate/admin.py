"""Admin services: role overviews and role policies, which may only tighten the deploy ceiling."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trustgate import messages, rules, service
from trustgate.durations import format_duration
from trustgate.errors import PreconditionFailedError, RuleViolationError
from trustgate.identity import Caller
from trustgate.ids import new_id
from trustgate.models import AccessRequest, AuditEvent, RolePolicy
from trustgate.ports import Dependencies
from trustgate.rules import check_within_ceiling, effective_policy
from trustgate.standing import open_statements, start_just_in_time
from trustgate.sync import (
    ProposedPolicy,
    SyncResult,
    grants_shaping,
    nonconforming_grants,
    plan_policy_change,
    proposed_target,
    sync_role,
)
from trustgate.trust_policy import Document, Statement, policy_size, unmanaged_statements


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
    version: int | None = None  # the stored policy's version after the change (before it, for a dry run)


def check_adoptable(policy: RolePolicy, hand_written: Sequence[Statement]) -> None:
    """Only a whole `Allow` statement can be adopted: a `Deny` (say the vendor's MFA requirement) keeps applying,
    whatever the baseline, so adopting it would only delete it."""
    for sid in policy.adopt_statements:
        for statement in hand_written:
            if statement.get("Sid") == sid and statement.get("Effect") != "Allow":
                raise RuleViolationError(
                    f"adopt_statements: statement {sid!r} is a {statement.get('Effect')}; only Allow statements can "
                    "be adopted (the baseline replaces who may assume the role, a Deny keeps applying); remove it "
                    "from adopt_statements",
                    code="invalid_policy",
                )


def change_policy(
    deps: Dependencies,
    caller: Caller,
    role_arn: str,
    policy: RolePolicy,
    *,
    dry_run: bool,
    if_match: int | None = None,
) -> PolicyChange:
    """Validate a new role policy, show its effect, and (unless dry-run) apply it through `sync_role`.

    Applying it stores it only once IAM accepted the trust policy it renders (see `sync.ProposedPolicy`);
    `if_match` is the version the admin read (412 when the stored one moved on).
    """
    settings = deps.settings
    check_within_ceiling(policy, settings)
    effective = effective_policy(role_arn, policy, settings)
    if not effective.admins:
        raise RuleViolationError("admins may not be empty: a role must keep at least one admin", code="last_admin")
    stored = deps.store.get_stored_policy(role_arn)
    if if_match is not None and if_match != stored.version:
        raise PreconditionFailedError(stored.version)
    live_role = deps.roles.read(role_arn)
    live = live_role.trust_policy
    target, _ = proposed_target(deps, role_arn, policy, stored, live)
    hand_written = list(target.hand_written) if target.hand_written is not None else unmanaged_statements(live)
    check_adoptable(policy, hand_written)
    if policy.mode in ("accounts", "none"):
        still_open = open_statements(hand_written, policy.adopt_statements)
        if still_open:
            raise RuleViolationError(
                f"statement(s) {', '.join(still_open)} still let the whole organization assume the role; "
                f"add their Sid to adopt_statements so mode {policy.mode!r} replaces them",
                code="unadopted_open_statement",
            )
    now = deps.clock.now()
    if dry_run:
        history = grants_shaping(deps, role_arn)
        ending = nonconforming_grants(history, target.effective, settings, now)
        after = plan_policy_change(deps, role_arn, live_role, history, target, ending, now).trust_policy
        revoked = [g for g in history if g.id in ending]
        return PolicyChange(policy, live, after, revoked, applied=False, version=stored.version)
    audit = AuditEvent(
        id=new_id(now),
        at=now,
        actor=caller.arn,
        action="policy.changed",
        role_arn=role_arn,
        after=policy.model_dump(mode="json", exclude_defaults=True),
    )
    proposal = ProposedPolicy(policy, audit, if_match)
    result = sync_role(deps, role_arn, caller.arn, "role policy changed", proposal=proposal)
    for grant in result.ended:
        deps.schedules.delete(grant.id)
        service.notify(deps, messages.outcome_for_requester(grant))
    return PolicyChange(policy, result.before, result.after, result.ended, applied=True, version=result.policy_version)


def sync_now(deps: Dependencies, caller: Caller, role_arn: str) -> SyncResult:
    """A manual sync; under InitialStandingAccess=none it first takes a role nobody set a policy for to
    just-in-time (that change syncs the role as well)."""
    started = start_just_in_time(deps, role_arn)
    return started or sync_role(deps, role_arn, caller.arn, "manual sync", alone=True)


def policy_view(deps: Dependencies, role_arn: str) -> dict[str, Any]:
    """The stored policy with every default shown, so admins see what applies, and its `version` (If-Match)."""
    stored = deps.store.get_stored_policy(role_arn)
    effective = effective_policy(role_arn, stored.policy, deps.settings)
    view = stored.policy.model_dump(mode="json")
    # The deployer's floor applies where the policy asks for fewer (a read-modify-write then keeps it).
    view["required_approvals"] = effective.policy.required_approvals
    view["effective"] = {
        "approvers": list(effective.approvers),
        "admins": list(effective.admins),
        "default_duration": format_duration(effective.default_duration),
        "max_duration": format_duration(effective.max_duration),
        "approval_window": format_duration(effective.approval_window),
        "required_approvals": effective.policy.required_approvals,
        "auto_approve": bool(effective.policy.auto_approve),
        "allow_self_approval": effective.policy.allow_self_approval,
    }
    if stored.unrenderable:
        view["effective"]["unrenderable"] = stored.unrenderable
    view["version"] = stored.version
    return view
