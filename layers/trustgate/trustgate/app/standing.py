"""A deployment that starts just-in-time: the deploy parameter `InitialStandingAccess`.

Out of the box a managed role keeps its own statements, and while the vendor's open one lets any principal of
the organization in, a grant adds nothing. With `InitialStandingAccess=none`, a role whose policy no admin has
ever saved is taken to just-in-time the first time the reconciler (every 5 minutes) or a manual sync reaches it:
TrustGate saves the role policy an admin would write by hand, `mode: none` adopting the role's open statements,
through `sync_role` like any policy change. So IAM accepts the trust policy before the policy is stored, the
change is audited (`policy.changed`, actor `trustgate`), and unsetting the mode later restores the adopted
statements exactly. It never overrides an admin: once a policy was saved, even one without a mode, it is theirs.
"""

from __future__ import annotations

from collections.abc import Sequence

from trustgate.app.sync import ProposedPolicy, SyncResult, sync_role
from trustgate.core.errors import PreconditionFailedError, RuleViolationError
from trustgate.core.ids import new_id
from trustgate.core.models import AuditEvent, RolePolicy
from trustgate.core.ports import Dependencies
from trustgate.core.trust_policy import Statement, aws_principals, is_managed, unmanaged_statements

ACTOR = "trustgate"
REASON = "InitialStandingAccess=none: the role starts just-in-time"


def is_open(statement: Statement) -> bool:
    """A hand-written statement letting any principal in (the vendor's default)."""
    return not is_managed(statement) and statement.get("Effect") == "Allow" and "*" in aws_principals(statement)


def open_statements(statements: Sequence[Statement], adopted: Sequence[str]) -> list[str]:
    """The open statements not adopted, by Sid (`#<index> (no Sid)` for one without)."""
    return [
        str(statement.get("Sid") or f"#{index} (no Sid)")
        for index, statement in enumerate(statements)
        if is_open(statement) and statement.get("Sid") not in adopted
    ]


def initial_policy(hand_written: Sequence[Statement]) -> RolePolicy:
    """`mode: none`, adopting every open statement: each needs a Sid, which is how a policy names it."""
    unnamed = [f"#{index}" for index, s in enumerate(hand_written) if is_open(s) and not s.get("Sid")]
    if unnamed:
        raise RuleViolationError(
            f"InitialStandingAccess=none cannot adopt statement(s) {', '.join(unnamed)} of the trust policy: they "
            "let the whole organization assume the role but have no Sid to adopt them by. Give each a Sid in "
            "the role's trust policy, or have an admin set the role policy (trustgate policy set)",
            code="unadopted_open_statement",
        )
    return RolePolicy(mode="none", adopt_statements=open_statements(hand_written, ()))


def start_just_in_time(deps: Dependencies, role_arn: str) -> SyncResult | None:
    """Under `InitialStandingAccess=none`, save the initial policy of a role that has none (see the module).

    None when there is nothing to do: the parameter is `unmanaged`, or a policy was saved (before, or by an
    admin while this ran: theirs stands). Raises what a policy change raises (422 when IAM refuses it, 409...).
    """
    if deps.settings.initial_standing_access != "none" or deps.store.get_stored_policy(role_arn).version != 0:
        return None
    policy = initial_policy(unmanaged_statements(deps.roles.trust_policy(role_arn)))
    now = deps.clock.now()
    audit = AuditEvent(
        id=new_id(now),
        at=now,
        actor=ACTOR,
        action="policy.changed",
        role_arn=role_arn,
        after=policy.model_dump(mode="json", exclude_defaults=True),
        detail={"reason": REASON},
    )
    try:
        return sync_role(deps, role_arn, ACTOR, REASON, proposal=ProposedPolicy(policy, audit, if_match=0))
    except PreconditionFailedError:
        return None
