"""`sync_role`: the one path by which any trust policy changes.

Lock the role, read the live policy, render the desired one from the grants, write it only if it
differs, read it back to verify, and audit the change. Idempotent: retries and the reconciler are safe.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from trustgate.errors import ConflictError, LockTimeoutError, SyncVerificationError
from trustgate.ids import new_id
from trustgate.models import AccessRequest, AuditEvent, RequestStatus
from trustgate.rules import effective_policy, render_spec
from trustgate.store import Store
from trustgate.transitions import transition
from trustgate.trust_policy import (
    Document,
    deleted_principal_ids,
    policy_size,
    render_trust_policy,
    same_policy,
)
from trustgate.wiring import Dependencies

LOCK_LEASE = timedelta(seconds=120)  # longer than any sync can take, so only a dead holder's lease lapses
LOCK_WAIT_SECONDS = 20.0  # below API Gateway's 29 s limit, so a busy role answers 429, not 504
VERIFY_ATTEMPTS = 5


@dataclass(frozen=True)
class SyncResult:
    role_arn: str
    changed: bool
    before: Document
    after: Document
    size: int
    quota: int
    grants: list[AccessRequest] = field(default_factory=list)
    activated: AccessRequest | None = None


@contextmanager
def role_lock(
    store: Store, deps: Dependencies, role_arn: str, sleep: Callable[[float], None] | None = None
) -> Iterator[None]:
    """Serialize edits of one role: IAM has no conditional write for trust policies."""
    owner = uuid.uuid4().hex
    pause = sleep or deps.sleep
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        now = deps.clock.now()
        if store.try_lock(role_arn, owner, now, now + LOCK_LEASE):
            break
        if time.monotonic() > deadline:
            raise LockTimeoutError(f"another change to {role_arn} is in progress; try again in a minute")
        pause(random.uniform(0.02, 0.2))
    try:
        yield
    finally:
        store.unlock(role_arn, owner)


@dataclass(frozen=True)
class Desired:
    document: Document
    grants: list[AccessRequest]
    orphaned: list[AccessRequest]


def desired_trust_policy(
    deps: Dependencies, role_arn: str, live: Document, activating: AccessRequest | None = None
) -> Desired:
    """Render what the role's trust policy should be right now (no writes).

    A grant whose principal was deleted shows up in our statements as its unique id (AIDA…/AROA…);
    such grants are left out (IAM would refuse the whole write) and reported as orphaned.
    """
    now = deps.clock.now()
    policy, _ = deps.store.get_role_policy(role_arn)
    effective = effective_policy(role_arn, policy, deps.settings)
    deleted = deleted_principal_ids(live)
    live_grants = [grant for grant in deps.store.active_grants(role_arn) if grant.is_grant_live(now)]
    if activating is not None:
        live_grants.append(activating)
    grants = [g for g in live_grants if not g.principal_id or g.principal_id not in deleted]
    orphaned = [g for g in live_grants if g not in grants]
    return Desired(render_trust_policy(live, render_spec(effective, grants, deps.settings), now), grants, orphaned)


@dataclass(frozen=True)
class Activation:
    """An approved request about to become an active grant from `starts_at` to `expires_at`."""

    request: AccessRequest
    starts_at: datetime
    expires_at: datetime

    def as_grant(self) -> AccessRequest:
        return self.request.model_copy(
            update={"status": RequestStatus.ACTIVE, "starts_at": self.starts_at, "expires_at": self.expires_at}
        )


def sync_role(
    deps: Dependencies, role_arn: str, actor: str, reason: str, activation: Activation | None = None
) -> SyncResult:
    """Make the role's trust policy match its grants and policy; audit any change.

    With an `activation`, the new grant is rendered in and marked active only once the trust policy
    is verified, still under the lock: a grant is never reported active before IAM names its
    principal, and no concurrent sync can render it out in between.
    """
    with role_lock(deps.store, deps, role_arn):
        live = deps.roles.trust_policy(role_arn)
        rendered = desired_trust_policy(deps, role_arn, live, activation.as_grant() if activation else None)
        desired = rendered.document
        for grant in rendered.orphaned:
            transition(deps, grant, RequestStatus.FAILED, "trustgate", reason="the principal was deleted from IAM")
        changed = not same_policy(live, desired)
        if changed:
            deps.roles.write_trust_policy(role_arn, desired)
            _verify(deps, role_arn, desired)
            event = AuditEvent(
                id=new_id(deps.clock.now()),
                at=deps.clock.now(),
                actor=actor,
                action="role.synced",
                role_arn=role_arn,
                before=live,
                after=desired,
                detail={"reason": reason},
            )
            deps.store.put_audit(event)
            deps.events.publish(event)
        activated = None
        if activation is not None:
            if activation.request.id not in {grant.id for grant in rendered.grants}:
                raise ConflictError(f"{activation.request.principal_arn} could not be put in the trust policy")
            activated = transition(
                deps,
                activation.request,
                RequestStatus.ACTIVE,
                "trustgate",
                starts_at=activation.starts_at,
                expires_at=activation.expires_at,
            )
    return SyncResult(
        role_arn,
        changed,
        live,
        desired,
        policy_size(desired),
        deps.settings.trust_policy_quota,
        rendered.grants,
        activated,
    )


def _verify(deps: Dependencies, role_arn: str, desired: Document) -> None:
    """Re-read until IAM shows what was written (it is eventually consistent)."""
    for attempt in range(VERIFY_ATTEMPTS):
        if same_policy(deps.roles.trust_policy(role_arn), desired):
            return
        deps.sleep(0.2 * 2**attempt)
    raise SyncVerificationError(
        f"the trust policy of {role_arn} read back differs from what was written; another tool may be editing it"
    )
