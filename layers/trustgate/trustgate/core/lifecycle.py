"""Which status changes a request may make. Pure; `app.transitions.transition` is the only caller that writes."""

from __future__ import annotations

from trustgate.core.errors import AlreadyDecidedError, ConflictError
from trustgate.core.models import RequestStatus

S = RequestStatus
LEGAL_TRANSITIONS: dict[RequestStatus, frozenset[RequestStatus]] = {
    S.PENDING: frozenset({S.SCHEDULED, S.ACTIVE, S.DENIED, S.CANCELLED, S.TIMED_OUT, S.FAILED}),
    # Approved for later: it starts (active), or is cancelled or revoked before, or cannot start (failed).
    S.SCHEDULED: frozenset({S.ACTIVE, S.CANCELLED, S.REVOKED, S.FAILED}),
    S.ACTIVE: frozenset({S.EXPIRED, S.REVOKED, S.FAILED}),
}
FINAL = frozenset(s for s in RequestStatus if s not in LEGAL_TRANSITIONS)


def check_transition(current: RequestStatus, target: RequestStatus) -> None:
    """Raise a conflict naming the current status when `current -> target` is not a legal move."""
    if target in LEGAL_TRANSITIONS.get(current, frozenset()):
        return
    decided = FINAL | {S.SCHEDULED}  # a decision came before: nobody can decide it again
    if current == S.PENDING or (current in decided and target in LEGAL_TRANSITIONS[S.PENDING]):
        raise AlreadyDecidedError(f"the request is already {current.value}; it cannot become {target.value}")
    raise ConflictError(f"the request is {current.value}; it cannot become {target.value}")


def event_name(target: RequestStatus) -> str:
    """The audit action / EventBridge detail-type for reaching a status."""
    return {
        S.SCHEDULED: "request.scheduled",
        S.ACTIVE: "request.granted",
        S.EXPIRED: "grant.expired",
        S.REVOKED: "grant.revoked",
        S.DENIED: "request.denied",
        S.CANCELLED: "request.cancelled",
        S.TIMED_OUT: "request.timed_out",
        S.FAILED: "request.failed",
    }.get(target, f"request.{target.value}")
