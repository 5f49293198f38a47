"""How people are told where a request stands: one vocabulary for notifications (`messages`), refusals (`rules`)
and the approval page (`approval_page`), so that an approver reads the same outcome wherever they look. Pure.
"""

from __future__ import annotations

from trustgate.core.models import AccessRequest, RequestStatus

# How each decision reads once made: "approved by bob", "denied by bob".
DECISION_WORDS: dict[str, str] = {"approve": "approved", "deny": "denied"}

# Outcomes that happened to a request rather than something someone did: "timed out", never "was timed out".
_HAPPENED = frozenset({"timed out", "failed"})


def status_words(status: RequestStatus) -> str:
    """A status as people write it: `timed_out` is "timed out"."""
    return status.value.replace("_", " ")


def outcome_of(request: AccessRequest) -> str:
    """How a request left `pending`, in one word or two: approved, denied, cancelled, timed out, failed.

    An approved request stays "approved" while its grant is made, once it is active, and after it ended or was
    revoked: that is how it was decided. "pending" while it waits for a decision.
    """
    if request.break_glass and request.status in (RequestStatus.PENDING, RequestStatus.ACTIVE):
        return "taken without approval (break-glass)"
    if request.status == RequestStatus.PENDING:
        return "approved" if request.decided_at is not None else "pending"
    if request.status in (RequestStatus.SCHEDULED, RequestStatus.ACTIVE, RequestStatus.EXPIRED, RequestStatus.REVOKED):
        return "approved"
    return status_words(request.status)


def ended_phrase(outcome: str, *, already: bool = False) -> str:
    """How a request ended, as a verb phrase: "was (already) denied", but "(already) timed out", "failed"."""
    adverb = "already " if already else ""
    if outcome in _HAPPENED:
        return f"{adverb}{outcome}"
    return f"was {adverb}{outcome}"


def status_label(request: AccessRequest) -> str:
    """A request's status as a short label (the approval page's badge): "Waiting for approval", "Approved",
    "Access granted", "Timed out", "Denied", …"""
    if request.status == RequestStatus.PENDING and request.break_glass:
        return "Break-glass, being granted"
    if request.status == RequestStatus.PENDING:
        return "Approved" if request.decided_at is not None else "Waiting for approval"
    if request.status == RequestStatus.ACTIVE:
        return "Access granted"
    if request.status == RequestStatus.SCHEDULED:
        return "Approved, not begun"
    return status_words(request.status).capitalize()
