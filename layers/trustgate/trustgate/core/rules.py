"""The rules of a role: who may request, approve and administer, for how long, and when a person is not needed.

Pure: takes the role policy, the deploy ceiling and values; returns values or raises typed errors.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from trustgate.core.coverage import Coverage
from trustgate.core.durations import format_duration
from trustgate.core.errors import (
    AlreadyDecidedByYouError,
    AlreadyDecidedError,
    ApproverRemovedError,
    CeilingExceededError,
    ForbiddenError,
    InvalidPrincipalError,
    OwnRequestError,
    RequestNonconformingError,
    RuleViolationError,
    TrustGateError,
)
from trustgate.core.identity import (
    ACCEPTED_IDENTITIES,
    Caller,
    Person,
    caller_for_arn,
    check_person,
    is_identity_role_session,
    looks_like_identity_center,
    matches_any,
    matches_person,
    person_of,
    role_name_of,
)
from trustgate.core.models import AccessRequest, Approval, AutoApproveRule, RequestStatus, RolePolicy
from trustgate.core.patterns import PatternError, glob_matches, regex_fullmatch
from trustgate.core.settings import Settings
from trustgate.core.trust_policy import Baseline, GrantConditions, RenderSpec
from trustgate.core.user_text import visible_length
from trustgate.core.wording import ended_phrase, outcome_of


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
        policy=_within_approval_floor(policy, settings),
        approvers=tuple(policy.approvers or settings.default_approvers),
        admins=tuple(dict.fromkeys([*settings.bootstrap_admins, *policy.admins])),
        default_duration=default,
        max_duration=max_duration,
        min_duration=settings.min_duration,
        approval_window=window,
        identity_roles=tuple(arn for arn in policy.identity_roles if arn in settings.identity_role_arns),
    )


def _within_approval_floor(policy: RolePolicy, settings: Settings) -> RolePolicy:
    """The policy with the ceiling's approval floor applied at run time too: a policy saved before the deployer
    raised the floor (or turned auto-approve or self-approval off) never approves more loosely than it allows now."""
    update: dict[str, object] = {}
    if policy.required_approvals < settings.min_required_approvals:
        update["required_approvals"] = settings.min_required_approvals
    if policy.auto_approve and not settings.allow_auto_approve:
        update["auto_approve"] = []
    if policy.allow_self_approval and not settings.allow_self_approval:
        update["allow_self_approval"] = False
    if policy.break_glass is not None and not settings.allow_break_glass:
        update["break_glass"] = None
    return policy.model_copy(update=update) if update else policy


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
    outside_roles = [arn for arn in policy.identity_roles if arn not in settings.identity_role_arns]
    if outside_roles:
        allowed = ", ".join(settings.identity_role_arns) or "none"
        raise CeilingExceededError(
            "identity_roles",
            allowed,
            f"identity_roles {outside_roles} are not among the roles this deployment lets name persons "
            f"(IdentityRoleArns: {allowed}); the deployer must add them first",
        )
    _check_approval_floor(policy, settings)
    _check_principals(policy, settings)


def _check_approval_floor(policy: RolePolicy, settings: Settings) -> None:
    """How few approvals, and whether rules or the requester themselves may approve: the deployer's floor."""
    floor = settings.min_required_approvals
    # Unset means the floor; only a value the admin wrote below it is refused.
    if "required_approvals" in policy.model_fields_set and policy.required_approvals < floor:
        raise CeilingExceededError(
            "required_approvals",
            str(floor),
            f"required_approvals {policy.required_approvals} is below this deployment's floor of {floor} "
            f"(MinRequiredApprovals); require {floor} or more, or leave it unset",
        )
    if policy.auto_approve and not settings.allow_auto_approve:
        raise CeilingExceededError(
            "auto_approve",
            "AllowAutoApprove=false",
            "auto_approve: this deployment does not allow auto-approve rules (AllowAutoApprove is false), so "
            "every request needs a person's approval; remove the rules",
        )
    for number, rule in enumerate(policy.auto_approve):
        if not rule.principals:
            raise RuleViolationError(
                f"auto_approve[{number}].principals: a rule without principals would approve every requester; "
                "name the requesters it approves",
                code="invalid_policy",
            )
    if policy.allow_self_approval and not settings.allow_self_approval:
        raise CeilingExceededError(
            "allow_self_approval",
            "AllowSelfApproval=false",
            "allow_self_approval: this deployment does not let requesters approve their own requests "
            "(AllowSelfApproval is false); leave it false",
        )
    _check_break_glass_rule(policy, settings)


def _check_break_glass_rule(policy: RolePolicy, settings: Settings) -> None:
    rule = policy.break_glass
    if rule is None:
        return
    if not settings.allow_break_glass:
        raise CeilingExceededError(
            "break_glass",
            "AllowBreakGlass=false",
            "break_glass: this deployment does not allow break-glass access (AllowBreakGlass is false), so every "
            "request needs a person's approval; remove break_glass",
        )
    if not rule.requesters:
        raise RuleViolationError(
            "break_glass.requesters: name who may break the glass (ARN patterns, account ids or person keys); "
            "an empty list would let every requester in without approval",
            code="invalid_policy",
        )
    ceiling = min(settings.max_break_glass_duration, settings.max_duration)
    if rule.max_duration > ceiling:
        raise CeilingExceededError(
            "break_glass.max_duration",
            format_duration(ceiling),
            f"break_glass.max_duration {format_duration(rule.max_duration)} is longer than this deployment allows "
            f"({format_duration(ceiling)}, MaxBreakGlassDuration); ask for at most that",
        )
    if rule.max_duration < settings.min_duration:
        raise RuleViolationError(
            f"break_glass.max_duration must be at least {format_duration(settings.min_duration)}", code="invalid_policy"
        )
    approvers = policy.approvers or settings.default_approvers
    if not any(_independent_reviewer(approver, rule.requesters, settings.partition) for approver in approvers):
        raise RuleViolationError(
            "break_glass: every use is reviewed by an approver who is not its requester, but each approver of this "
            "role is named by break_glass.requesters (or is a pattern); name at least one exact approver whom the "
            "rule does not name",
            code="invalid_policy",
        )


def _independent_reviewer(approver: str, requesters: Sequence[str], partition: str) -> bool:
    """Is this approver an exact person whom the break-glass rule cannot name (so they could review its uses)?
    Conservative: a person who signs in through role sessions (Identity Center, an identity role) counts only if
    the rule names nothing but IAM users and person keys that are not theirs."""
    if any(glob in approver for glob in _GLOB):
        return False
    kind, _, rest = approver.partition(":")
    user_arn: str | None = None
    if kind in _PERSON_KINDS:
        key = approver.lower()
        if kind == "iam":
            account, _, name = rest.partition(":")
            user_arn = f"arn:{partition}:iam::{account}:user/{name}"
    else:
        try:
            key = person_of(approver).key
        except InvalidPrincipalError:
            return False
        user_arn = approver if ":user/" in approver else None
    keyed = [p.lower() for p in requesters if p.split(":", 1)[0] in _PERSON_KINDS]
    if any(glob_matches(key, pattern) for pattern in keyed):
        return False
    arn_patterns = [p for p in requesters if p.split(":", 1)[0] not in _PERSON_KINDS]
    if user_arn is not None:
        return not matches_any(user_arn, arn_patterns)
    return all(":user/" in pattern for pattern in arn_patterns)


# -- every principal a policy names lies inside the deployment's accounts ---------------------------

# `arn:<partition>:<service>:<region>:<account>:<resource>`, any part possibly a glob (checked one by one).
_ARN_PARTS = re.compile(r"^arn:(?P<partition>[^:]*):(?P<service>[^:]*):(?P<region>[^:]*):(?P<account>[^:]*):.+$")
_ACCOUNT = re.compile(r"^\d{12}$")
_PERSON_KEY = re.compile(r"^(iam:\d{12}:[\w+=,.@-]+|idc:[\w+=,.@-]+|role:[\w+=,.@-]+)$")
_GLOB = ("*", "?", "[")
_PERSON_KINDS = ("iam", "idc", "role")
EXACT_PERSONS = "exact persons (no wildcards)"


def _check_principals(policy: RolePolicy, settings: Settings) -> None:
    """Every principal or pattern a policy names must stay inside the deployment's accounts.

    Patterns (requesters, auto-approve principals) may glob a name, never the partition or the account;
    approvers and admins name persons exactly, because an approver decides through a personal link that no
    resource policy guards. Without AllowedAccountIds only the shape can be checked here: the organization
    itself is not known offline, so accounts must be literal and the API's resource policy does the rest.
    """
    fields: list[tuple[str, list[str], bool]] = [
        ("standing_principals", policy.standing_principals, False),
        ("requester_patterns", policy.requester_patterns, False),
        ("approvers", policy.approvers, True),
        ("admins", policy.admins, True),
    ]
    fields += [(f"auto_approve[{n}].principals", rule.principals, False) for n, rule in enumerate(policy.auto_approve)]
    if policy.break_glass is not None:
        fields.append(("break_glass.requesters", policy.break_glass.requesters, False))
    for field, values, exact in fields:
        for value in values:
            refusal = principal_refusal(value, policy, settings, exact=exact)
            if refusal is not None:
                message, ceiling = refusal
                raise CeilingExceededError(field, ceiling, f"{field}: {message}")
    for arn in policy.identity_roles:
        refusal = _account_refusal(arn, arn.split(":")[4], settings)
        if refusal is not None:
            raise CeilingExceededError("identity_roles", refusal[1], f"identity_roles: {refusal[0]}")


def principal_refusal(value: str, policy: RolePolicy, settings: Settings, *, exact: bool) -> tuple[str, str] | None:
    """Why a principal (or pattern, unless `exact`) is outside the ceiling, and which ceiling; None if inside."""
    if exact and any(glob in value for glob in _GLOB):
        return (
            f"{value!r} is a pattern; name each person exactly: an IAM user ARN, an Identity Center user as "
            "idc:<user name> (one entry covers every permission set and account), or a person key",
            EXACT_PERSONS,
        )
    kind = value.split(":", 1)[0]
    if kind in ("iam", "idc", "role"):
        return _person_key_refusal(value, policy, settings, exact=exact)
    if _ACCOUNT.match(value):
        if exact:
            return (f"{value!r} is a whole account; name each person in it exactly", EXACT_PERSONS)
        return _account_refusal(value, value, settings)
    match = _ARN_PARTS.match(value)
    if (
        not match
        or match["partition"] != settings.partition
        or match["service"] not in ("iam", "sts")
        or match["region"]
    ):
        return (
            f"{value!r} is not an ARN of an IAM user, role or role session in partition {settings.partition!r} "
            f"(arn:{settings.partition}:iam::<account>:user/<name>, "
            f"arn:{settings.partition}:sts::<account>:assumed-role/<role>/<session>)",
            f"partition {settings.partition}",
        )
    refusal = _account_refusal(value, match["account"], settings)
    if refusal is not None or not exact:
        return refusal
    return _person_refusal(value, match["account"], policy, settings)


def _account_refusal(value: str, account: str, settings: Settings) -> tuple[str, str] | None:
    allowed = settings.allowed_account_ids
    if not _ACCOUNT.match(account):
        return (
            f"{value!r} must name its account as a literal 12-digit id: a wildcard there could reach "
            "accounts outside the organization",
            "literal accounts" + (f" in AllowedAccountIds ({', '.join(allowed)})" if allowed else ""),
        )
    if allowed and account not in allowed:
        return (
            f"{value!r} is in account {account}, outside the accounts this deployment allows "
            f"(AllowedAccountIds: {', '.join(allowed)})",
            f"AllowedAccountIds: {', '.join(allowed)}",
        )
    return None


def _person_key_refusal(value: str, policy: RolePolicy, settings: Settings, *, exact: bool) -> tuple[str, str] | None:
    kind, _, rest = value.partition(":")
    if exact and not _PERSON_KEY.match(value.lower()):
        return (
            f"{value!r} is not a person key (iam:<account>:<user>, idc:<user>, role:<session>)",
            EXACT_PERSONS,
        )
    if kind == "iam":
        account, _, name = rest.partition(":")
        if not name:
            return (f"{value!r} is not a person key iam:<account>:<user>", "person keys")
        return _account_refusal(value, account, settings)
    if kind == "idc" and not settings.identity_center_account_ids:
        return (
            f"{value!r} names an IAM Identity Center user, but this deployment trusts no Identity Center "
            "sessions (IdentityCenterAccountIds is empty), so it could match nobody or a look-alike",
            "IdentityCenterAccountIds (empty)",
        )
    if kind == "role" and not policy.identity_roles:
        return (
            f"{value!r} names a session of an identity role, but this policy lists no identity_roles; "
            "add the role there first (within IdentityRoleArns)",
            "identity_roles (none)",
        )
    return None


def _person_refusal(arn: str, account: str, policy: RolePolicy, settings: Settings) -> tuple[str, str] | None:
    """An approver or admin ARN must be a person: an IAM user, an Identity Center session or an identity role's."""
    try:
        person = person_of(arn, trusted_identity_center=account in settings.identity_center_account_ids)
    except InvalidPrincipalError:
        return (f"{arn!r} is not an IAM user or role-session ARN; only persons approve and administer", EXACT_PERSONS)
    if person.kind == "identity_role" and not is_identity_role_session(arn, policy.identity_roles):
        if looks_like_identity_center(arn):
            return (
                f"{arn!r} looks like an Identity Center session, but this deployment does not trust Identity "
                f"Center sessions from account {account} (IdentityCenterAccountIds)",
                "IdentityCenterAccountIds",
            )
        return (
            f"{arn!r} is a session of role {person.role_name}, whose session name its caller chooses, so it names "
            "no person; name IAM users or Identity Center users (idc:<user>), or list the role in identity_roles",
            EXACT_PERSONS,
        )
    return None


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
    if visible_length(justification) < minimum:  # zero-width and other invisible characters do not count
        raise RuleViolationError(
            f"justification must be at least {minimum} visible characters: say what you will do with the role",
            code="justification_too_short",
        )
    pattern = effective.policy.ticket_pattern
    if pattern:
        if not ticket:
            raise RuleViolationError(f"this role needs a ticket matching {pattern!r}", code="ticket_required")
        try:  # RE2: linear in the ticket's length whatever the pattern, so no ticket can stall the function
            matched = regex_fullmatch(pattern, ticket)
        except PatternError as error:  # saved before RE2 judged patterns: refuse until an admin replaces it
            raise RuleViolationError(
                f"this role's ticket_pattern {pattern!r} {error}; ask an admin to replace it", code="invalid_pattern"
            ) from error
        if not matched:
            raise RuleViolationError(f"ticket {ticket!r} does not match {pattern!r}", code="ticket_invalid")


def break_glass_max(effective: EffectivePolicy, settings: Settings) -> timedelta | None:
    """The longest break-glass grant the role allows now (None: the role allows no break-glass)."""
    rule = effective.policy.break_glass
    if rule is None or not settings.allow_break_glass:
        return None
    return min(rule.max_duration, settings.max_break_glass_duration, effective.max_duration)


def check_may_break_glass(caller: Caller, duration: timedelta, effective: EffectivePolicy, settings: Settings) -> None:
    """May this caller (already allowed to request the role) take it at once, for this long? 403 or 422 saying why."""
    longest = break_glass_max(effective, settings)
    role = role_name_of(effective.role_arn)
    if longest is None:
        raise ForbiddenError(
            f"{role} does not allow break-glass access: its role policy has no break_glass rule"
            + ("" if settings.allow_break_glass else " (and this deployment's AllowBreakGlass is false)")
            + "; ask for access with approval instead (leave break_glass out)",
            code="break_glass_not_allowed",
        )
    rule = effective.policy.break_glass
    assert rule is not None
    if not caller.matches(rule.requesters):
        raise ForbiddenError(
            f"{caller.arn} may not break the glass on {role}: the role policy's break_glass.requesters does not "
            "name you; ask for access with approval instead (leave break_glass out)",
            code="break_glass_not_allowed",
        )
    if duration > longest:
        raise RuleViolationError(
            f"duration {format_duration(duration)} is longer than the break-glass maximum of {role} "
            f"({format_duration(longest)}); ask for at most that",
            code="duration_too_long",
        )


def break_glass_refusal(request: AccessRequest, effective: EffectivePolicy, settings: Settings) -> str | None:
    """Why the role policy in force would no longer let this break-glass request in (None if it would)."""
    try:
        caller = caller_for_arn(request.principal_arn, settings.caller_policy())
        check_may_break_glass(caller, request.duration, effective, settings)
    except TrustGateError as error:
        return f"break-glass: {error.message}"
    return None


def check_may_decide(caller: Caller, request: AccessRequest, effective: EffectivePolicy | None = None) -> Person:
    """May this caller decide the request? Judged by the role policy in force *and* the request's snapshot.

    * Who is an approver is the policy in force's answer: an approver removed since the request was made
      no longer may decide it (403 approver_removed); one added since may, through the API or CLI.
    * Self-approval, approver kinds and identity roles take the stricter of the snapshot and the policy in
      force: loosening them after a request was made never lets anyone decide it who could not before.
    Without `effective`, the snapshot alone judges (as when the request was made).

    Compares persons, not ARNs: an Identity Center user is one person across every permission set and
    account; an IAM user is one person whatever the name's case; a session of a role that is not an
    identity role is no person at all (403 not_a_person).
    """
    identity_roles = [arn for arn in request.identity_roles if effective is None or arn in effective.identity_roles]
    person = check_person(caller, identity_roles)
    self_approval = request.allow_self_approval and (effective is None or effective.policy.allow_self_approval)
    if same_human(person, request.requester) and not self_approval:
        raise OwnRequestError(
            f"you ({person.label}) asked for this access, whichever identity you use now; another approver must decide it"
        )
    for kinds in (request.approver_kinds, effective.policy.approver_kinds if effective else []):
        if kinds and person.kind not in kinds:
            allowed = ", ".join(kinds)
            raise ForbiddenError(
                f"approvers of {request.role_arn} must sign in as: {allowed}; you are {person.label}. "
                f"{ACCEPTED_IDENTITIES}"
            )
    if not caller.matches(effective.approvers if effective else request.approvers):
        if caller.matches(request.approvers):
            raise ApproverRemovedError(approver_removed_message(request.role_arn, None))
        raise ForbiddenError(f"{caller.arn} is not an approver for {request.role_arn}")
    return person


def approver_removed_message(role_arn: str, changed_at: datetime | None) -> str:
    when = f"on {changed_at:%Y-%m-%d %H:%M} UTC" if changed_at else "after this request was made"
    return (
        f"you are no longer an approver of {role_name_of(role_arn)}: the role policy changed {when}. "
        "Nothing was changed; the role's current approvers decide this request"
    )


def same_human(one: Person, other: Person) -> bool:
    """Could these be one human? The same person, or the same name (ignoring case) under another identity:
    nothing signed links an IAM user `alice` to an Identity Center user `alice`, so for self-approval and
    distinct approvers TrustGate takes the stricter reading."""
    return one.key == other.key or one.session_name.lower() == other.session_name.lower()


def check_decidable(
    request: AccessRequest,
    approver: Caller,
    now: datetime,
    effective: EffectivePolicy | None = None,
    settings: Settings | None = None,
    *,
    approving: bool = True,
) -> None:
    """May this approver add a decision now? Open, inside its window, theirs to decide (`check_may_decide`),
    not yet decided by them, and, to approve, still within the role policy in force (a deny always may close it).
    The services always pass the policy in force; without it only the request's snapshot judges.
    """
    if request.status != RequestStatus.PENDING or request.decided_at is not None:
        raise AlreadyDecidedError(
            f"request {request.id} {ended_phrase(outcome_of(request), already=True)}; nothing more is needed from you"
        )
    if request.approval_deadline and request.approval_deadline <= now:
        raise AlreadyDecidedError(f"request {request.id} is past its approval window")
    person = check_may_decide(approver, request, effective)
    if any(same_human(a.approver, person) for a in request.approvals):
        raise AlreadyDecidedByYouError(
            f"you ({person.label}) already decided this request, possibly through another identity; "
            "another approver must add theirs"
        )
    why = nonconforming_reason(request, effective, settings) if approving and effective and settings else None
    if why:
        raise RequestNonconformingError(
            f"request {request.id} no longer conforms to the policy of {role_name_of(request.role_arn)}, which "
            f"changed after it was made: {why}. Nothing was changed; deny it, or the requester cancels it "
            f"(trustgate cancel {request.id}) and asks again within the current policy"
        )


def may_decide_now(
    request: AccessRequest, approver: Caller, now: datetime, effective: EffectivePolicy, settings: Settings
) -> bool:
    """`check_decidable` as a yes/no, for listing what an approver may decide: a deny at least (an approval may
    still be refused as nonconforming)."""
    try:
        check_decidable(request, approver, now, effective, settings, approving=False)
    except TrustGateError:
        return False
    return True


def nonconforming_reason(request: AccessRequest, effective: EffectivePolicy, settings: Settings) -> str | None:
    """Why the role policy in force would no longer accept this request as made (None if it would)."""
    if request.duration > effective.max_duration:
        return (
            f"it asks for {format_duration(request.duration)}, more than the role's maximum of "
            f"{format_duration(effective.max_duration)} now"
        )
    try:
        check_may_request(caller_for_arn(request.principal_arn, settings.caller_policy()), effective, settings)
    except TrustGateError as error:
        return f"its requester may no longer ask for the role ({error.message})"
    return break_glass_refusal(request, effective, settings) if request.break_glass else None


def counted_approvals(request: AccessRequest, effective: EffectivePolicy, settings: Settings) -> list[Approval]:
    """The approvals that count under the policy in force: from persons who may still decide the request."""
    counted = []
    for approval in request.approvals_by("approve"):
        try:
            check_may_decide(caller_for_arn(approval.approver_arn, settings.caller_policy()), request, effective)
        except TrustGateError:
            continue
        counted.append(approval)
    return counted


def approval_shortfall(
    request: AccessRequest, effective: EffectivePolicy, settings: Settings, now: datetime
) -> str | None:
    """Why the request's approval no longer stands under the policy in force (None if it does).

    A rule's approval is judged by the rules in force at the moment it approved; a person's by who may decide
    now, against the number of approvals the role requires now.
    """
    if request.break_glass:  # no approval to count: the break-glass rule in force must still let it in
        return break_glass_refusal(request, effective, settings)
    if request.auto_approved:  # judged, as when it was made, at the start it asked for (else when it was decided)
        if auto_approves(request, effective.policy.auto_approve, request.start_at or request.decided_at or now):
            return None
        return "no auto-approve rule of the role approves it any more"
    counted = len(counted_approvals(request, effective, settings))
    required = effective.policy.required_approvals
    if counted >= required:
        return None
    dropped = len(request.approvals_by("approve")) - counted
    return f"it has {counted} of the {required} approvals the role requires now" + (
        f" ({dropped} given by approvers the policy no longer names do not count)" if dropped else ""
    )


def is_admin(caller: Caller, effective_admins: Sequence[str]) -> bool:
    return caller.matches(effective_admins)


def auto_approves(request: AccessRequest, rules: Sequence[AutoApproveRule], at: datetime) -> bool:
    """True when some rule's every condition holds for this request at this time."""
    return any(_rule_holds(rule, request, at) for rule in rules)


def rule_names(rule: AutoApproveRule, principal_arn: str) -> bool:
    """Does an auto-approve rule apply to this requester? Its other conditions are about the request itself."""
    return not rule.principals or matches_person(principal_arn, rule.principals)


def always_auto_approved(principal_arn: str, effective: EffectivePolicy) -> bool:
    """Is every request this requester may make for the role approved by a rule, whatever its duration or time?"""
    return any(
        rule_names(rule, principal_arn)
        and (rule.max_duration is None or rule.max_duration >= effective.max_duration)
        and set(rule.weekdays or range(7)) == set(range(7))
        and tuple(rule.hours_utc or (0, 24)) == (0, 24)
        for rule in effective.policy.auto_approve
    )


def _rule_holds(rule: AutoApproveRule, request: AccessRequest, at: datetime) -> bool:
    if not rule_names(rule, request.principal_arn):
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
