"""Admin services: role overviews and role policies, which may only tighten the deploy ceiling."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from trustgate.app import access, effects, requests
from trustgate.app.standing import open_statements, start_just_in_time
from trustgate.app.sync import (
    ProposedPolicy,
    SyncResult,
    grants_shaping,
    nonconforming_grants,
    plan_policy_change,
    proposed_target,
    sync_role,
)
from trustgate.core import messages
from trustgate.core.durations import format_duration
from trustgate.core.errors import ForbiddenError, PreconditionFailedError, RuleViolationError, ValidationError
from trustgate.core.identity import Caller, caller_for_arn
from trustgate.core.ids import new_id
from trustgate.core.models import AccessRequest, AuditEvent, RolePolicy
from trustgate.core.ports import Dependencies
from trustgate.core.records import StoredPolicy
from trustgate.core.rules import break_glass_max, check_within_ceiling, effective_policy
from trustgate.core.trust_policy import Document, Statement, policy_size, unmanaged_statements


@dataclass(frozen=True)
class RoleOverview:
    role_arn: str
    mode: str
    policy: dict[str, Any]  # `policy_view`: the stored policy with every default shown, and its version
    trust_policy: Document
    trust_policy_chars: int
    trust_policy_quota: int
    active_grants: list[AccessRequest]


def role_overview(deps: Dependencies, caller: Caller, role_arn: str) -> RoleOverview:
    """A role as its admin sees it: policy, live trust policy, capacity, live grants. Only an admin of the role."""
    access.check_admin(deps, caller, role_arn)
    return _overview(deps, role_arn)


def administered_roles(deps: Dependencies, caller: Caller) -> list[RoleOverview]:
    """Every role the caller administers (403 for someone who administers none)."""
    arns = access.roles_for_admin(deps, caller)
    if not arns:
        access.check_admin(deps, caller)
    return [_overview(deps, arn) for arn in arns]


def _overview(deps: Dependencies, role_arn: str) -> RoleOverview:
    now = deps.clock.now()
    stored = deps.store.get_stored_policy(role_arn)
    live = deps.roles.trust_policy(role_arn)
    grants = [g for g in deps.store.active_grants(role_arn) if g.is_grant_live(now)]
    return RoleOverview(
        role_arn,
        stored.policy.mode or "unmanaged",
        _policy_view(deps, role_arn, stored),
        live,
        policy_size(live),
        deps.settings.trust_policy_quota,
        grants,
    )


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
    if_match: str | None = None,
) -> PolicyChange:
    """Validate a new role policy, show its effect, and (unless dry-run) apply it through `sync_role`.

    Applying it stores it only once IAM accepted the trust policy it renders (see `sync.ProposedPolicy`);
    `if_match` is the `If-Match` header: the version the admin read (412 when the stored one moved on). Only an
    admin of the role may; a non-admin is refused before anything else is looked at.
    """
    access.check_admin(deps, caller, role_arn)
    expected_version = policy_version_in(if_match)
    settings = deps.settings
    check_within_ceiling(policy, settings)
    effective = effective_policy(role_arn, policy, settings)
    if not effective.admins:
        raise RuleViolationError("admins may not be empty: a role must keep at least one admin", code="last_admin")
    stored = deps.store.get_stored_policy(role_arn)
    if expected_version is not None and expected_version != stored.version:
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
    proposal = ProposedPolicy(policy, audit, expected_version)
    result = sync_role(deps, role_arn, caller.arn, "role policy changed", proposal=proposal)
    for grant in result.ended:
        deps.schedules.delete(grant.id)
        effects.notify(deps, messages.outcome_for_requester(grant))
    return PolicyChange(policy, result.before, result.after, result.ended, applied=True, version=result.policy_version)


def policy_version_in(if_match: str | None) -> int | None:
    """The policy version an `If-Match` header names (the ETag GET returned); None without one, or for `*`.

    Optional, so older clients keep working; the trustgate CLI always sends it.
    """
    if if_match is None or if_match.strip() in ("", "*"):
        return None
    tag = if_match.strip().removeprefix("W/").strip('"')
    if not re.fullmatch(r"[0-9]{1,12}", tag):  # ASCII digits: str.isdigit() accepts '²', which int() refuses
        raise ValidationError(
            f'If-Match: {if_match[:40]!r} is not an ETag GET /roles/{{role}}/policy returned, such as "3" (its version)'
        )
    return int(tag)


def sync_now(deps: Dependencies, caller: Caller, role_arn: str) -> SyncResult:
    """A manual sync; under InitialStandingAccess=none it first takes a role nobody set a policy for to
    just-in-time (that change syncs the role as well). Only an admin of the role may."""
    access.check_admin(deps, caller, role_arn)
    started = start_just_in_time(deps, role_arn)
    return started or sync_role(deps, role_arn, caller.arn, "manual sync", alone=True)


def revoke_person(
    deps: Dependencies, caller: Caller, role_arn: str, principal: str, reason: str | None
) -> requests.Revocation:
    """An admin ends everything one person holds on the role (`requests.revoke_person`). Only an admin may."""
    access.check_admin(deps, caller, role_arn)
    return requests.revoke_person(deps, caller, role_arn, _checked_principal(deps, principal), reason)


# Person keys as `identity.person_of` builds them (lower-case). A key is matched exactly, never as a pattern,
# so wildcards are refused rather than silently matching nobody.
_PERSON_KEY = re.compile(r"^(iam:\d{12}:[\w+=,.@-]+|idc:[\w+=,.@-]+|role:[\w+=,.@-]+)$")


def _checked_principal(deps: Dependencies, principal: str) -> str:
    """`principal` as the service takes it: a person key (lower-cased, as keys are built), or an ARN of a person."""
    text = principal.strip()
    if text.split(":", 1)[0].lower() in ("iam", "idc", "role"):
        if not _PERSON_KEY.match(text.lower()):
            raise ValidationError(
                f"principal: {principal!r} is not a person key like iam:111122223333:alice, idc:alice or "
                "role:alice@example.com"
            )
        return text.lower()
    try:  # the same checks as for a caller: partition, allowed accounts, Identity Center trust
        caller_for_arn(text, deps.settings.caller_policy()).person  # noqa: B018 - validates
    except ForbiddenError as error:  # includes an ARN that is no person (root, other partitions)
        raise ValidationError(
            f"principal: {principal!r} is neither an IAM user or role-session ARN of this deployment nor a "
            f"person key (iam:<account>:<user>, idc:<user>, role:<session>): {error.message}"
        ) from error
    return text


def policy_view(deps: Dependencies, caller: Caller, role_arn: str) -> dict[str, Any]:
    """The stored policy with every default shown, so admins see what applies, and its `version` (If-Match).
    Only an admin of the role."""
    access.check_admin(deps, caller, role_arn)
    return _policy_view(deps, role_arn, deps.store.get_stored_policy(role_arn))


def _duration_or_none(value: timedelta | None) -> str | None:
    return format_duration(value) if value is not None else None


def _policy_view(deps: Dependencies, role_arn: str, stored: StoredPolicy) -> dict[str, Any]:
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
        # null where the role allows none, or AllowBreakGlass is false (a stored rule then does not apply)
        "break_glass_max_duration": _duration_or_none(break_glass_max(effective, deps.settings)),
    }
    if stored.unrenderable:
        view["effective"]["unrenderable"] = stored.unrenderable
    view["version"] = stored.version
    return view
