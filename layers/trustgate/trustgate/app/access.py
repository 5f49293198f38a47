"""Who may do what on a role: the managed role a name means, the role policy in force, admins and owners."""

from __future__ import annotations

from urllib.parse import unquote

from trustgate.core.errors import (
    ForbiddenError,
    NotAPersonError,
    NotFoundError,
)
from trustgate.core.identity import Caller, check_person
from trustgate.core.models import AccessRequest
from trustgate.core.ports import Dependencies
from trustgate.core.rules import (
    EffectivePolicy,
    effective_policy,
    is_admin,
)

SYSTEM = "trustgate"


def resolve_role(deps: Dependencies, role: str) -> str:
    """A managed role ARN from its ARN or its name (API Gateway passes path parameters still URL-encoded).

    Names match without regard to case, as IAM's do (`pumpcustomeraccess` is `PumpCustomerAccess`); the answer
    is always the managed role's own ARN, so whatever is rendered names the real role.
    """
    role = unquote(role)
    arns = deps.settings.managed_role_arns
    for arn in arns:
        if role in (arn, arn.rsplit("/", 1)[-1]):
            return arn
    for arn in arns:
        prefix, name = arn.rsplit("/", 1)
        given_prefix, _, given_name = role.rpartition("/")
        if given_name.casefold() == name.casefold() and given_prefix in ("", prefix):
            return arn
    names = [arn.rsplit("/", 1)[-1] for arn in arns]
    by_folded = {name.casefold(): name for name in names}
    import difflib  # only for a name not found: not on every cold start

    close = difflib.get_close_matches(role.rsplit("/", 1)[-1].casefold(), list(by_folded), n=1, cutoff=0.6)
    hint = f"; did you mean {by_folded[close[0]]}?" if close else ""
    raise NotFoundError(f"{role!r} is not a role TrustGate manages{hint} (managed roles: {', '.join(names) or 'none'})")


def policy_for(deps: Dependencies, role_arn: str) -> EffectivePolicy:
    policy, _ = deps.store.get_role_policy(role_arn)
    return effective_policy(role_arn, policy, deps.settings)


def check_admin(deps: Dependencies, caller: Caller, role_arn: str | None = None) -> None:
    admins = policy_for(deps, role_arn).admins if role_arn else tuple(deps.settings.bootstrap_admins)
    if not is_admin(caller, admins):
        raise ForbiddenError(f"{caller.arn} is not a TrustGate admin" + (f" for {role_arn}" if role_arn else ""))


def owns(deps: Dependencies, caller: Caller, request: AccessRequest) -> bool:
    """Is the caller the person who made the request? Only a person can own anything (see `check_person`)."""
    try:
        person = check_person(caller, policy_for(deps, request.role_arn).identity_roles)
    except NotAPersonError:
        return False
    return person.key == request.requester.key


def roles_for_admin(deps: Dependencies, caller: Caller) -> list[str]:
    """The managed roles whose policy in force names the caller an admin."""
    return [arn for arn in deps.settings.managed_role_arns if is_admin(caller, policy_for(deps, arn).admins)]


def is_any_admin(deps: Dependencies, caller: Caller) -> bool:
    return any(is_admin(caller, policy_for(deps, arn).admins) for arn in deps.settings.managed_role_arns)
