"""Typed domain errors. Adapters raise these; the API maps them to HTTP by type, never by text."""

from __future__ import annotations


class TrustGateError(Exception):
    """Base of every error TrustGate reports to a caller."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class ValidationError(TrustGateError):
    status = 400
    code = "invalid_input"


class UnauthenticatedError(TrustGateError):
    status = 401
    code = "unauthenticated"


class ForbiddenError(TrustGateError):
    status = 403
    code = "forbidden"


class InvalidPrincipalError(ForbiddenError):
    """The caller (or a principal to render) can never be named in a trust policy."""

    code = "invalid_principal"


class NotAPersonError(ForbiddenError):
    """The caller's identity does not tell which human it is (a role session whose name the caller chose)."""

    code = "not_a_person"


class OwnRequestError(ForbiddenError):
    """The approver is the requester and the request does not allow self-approval."""

    code = "own_request"


class NotFoundError(TrustGateError):
    status = 404
    code = "not_found"


class ConflictError(TrustGateError):
    status = 409
    code = "conflict"


class AlreadyDecidedError(ConflictError):
    code = "already_decided"


class AlreadyDecidedByYouError(ConflictError):
    """This approver's decision is already counted; the others must add theirs."""

    code = "already_decided_by_you"


class TrustPolicyFullError(ConflictError):
    """The rendered trust policy would exceed the role's size quota."""

    code = "trust_policy_full"

    def __init__(self, quota: int, size: int) -> None:
        super().__init__(
            f"the trust policy would need {size} characters but the role's quota is {quota}; "
            "wait for a grant to end, revoke one, or raise the IAM quota "
            "'Role trust policy length' (up to 4,096) and the TrustPolicyQuota parameter"
        )
        self.quota = quota
        self.size = size


class SessionGuardFullError(ConflictError):
    """The session guard would push the role's inline policies past IAM's aggregate quota."""

    code = "session_guard_full"

    def __init__(self, quota: int, size: int, others: int, *, trust_policy_written: bool | None = None) -> None:
        self.quota, self.size, self.others = quota, size, others
        message = (
            f"the session guard would need {size} characters but only {quota - others} are left of the role's "
            f"{quota}-character inline-policy quota ({others} are used by its other inline policies); wait for a "
            "grant's guard to lapse, or move the role's other inline policies into a managed policy"
        )
        if trust_policy_written is not None:
            message += (
                ". The trust policy was brought up to date, so nobody who lost access can switch in again, but "
                "their sessions already open could not be ended: make room, then run `trustgate sync`"
            )
        super().__init__(message)


class SessionNameConflictError(ConflictError):
    """Two persons would share one pinned session name (and so one aws:userid) on the role."""

    code = "session_name_conflict"


class RuleViolationError(TrustGateError):
    """Well-formed input that breaks a rule of the role's policy or the deploy ceiling."""

    status = 422
    code = "rule_violation"


class CeilingExceededError(RuleViolationError):
    """A role policy tried to be looser than the vendor's deploy-time ceiling."""

    def __init__(self, field: str, ceiling: str, message: str | None = None) -> None:
        super().__init__(
            message or f"{field} may not be looser than the deploy ceiling ({ceiling})",
            code="exceeds_ceiling",
        )
        self.field = field
        self.ceiling = ceiling


class LockTimeoutError(TrustGateError):
    """Another sync of the same role held the lock for too long; safe to retry."""

    status = 429
    code = "role_busy"
    retry_after_seconds = 5  # a round that started after the change usually serves it within seconds


class SyncVerificationError(TrustGateError):
    """The trust policy read back after a write is not the one written."""

    status = 409
    code = "sync_not_verified"


class InvalidCursorError(ValidationError):
    """A `next` cursor this API never issued for this listing (forged, truncated, or from another query)."""

    code = "invalid_cursor"

    def __init__(self, message: str = "the `next` cursor is not one this API returned; start again without it") -> None:
        super().__init__(message)


class UnknownParameterError(ValidationError):
    """A query parameter the route does not take (a misspelled `dry_run` must never be ignored)."""

    code = "unknown_parameter"


class RepeatedParameterError(ValidationError):
    """A query parameter given more than once: which value counts would be a guess."""

    code = "repeated_parameter"


class BodyTooLargeError(TrustGateError):
    status = 413
    code = "body_too_large"


class UnsupportedMediaTypeError(TrustGateError):
    status = 415
    code = "unsupported_media_type"


class RevokeIncompleteError(TrustGateError):
    """A revoke is recorded (every later sync renders the person out) but IAM could not be updated yet."""

    status = 503
    code = "revoke_incomplete"
    retry_after_seconds = 30


class RequestNonconformingError(ConflictError):
    """A pending request that the role policy in force no longer allows (it changed after the request was made)."""

    code = "request_nonconforming"


class ApproverRemovedError(ForbiddenError):
    """An approver named when the request was made whom the role policy in force no longer names."""

    code = "approver_removed"


class PreconditionFailedError(TrustGateError):
    """`If-Match` named a version of the role policy that is no longer the stored one."""

    status = 412
    code = "precondition_failed"

    def __init__(self, version: int) -> None:
        super().__init__(
            f"the policy changed since you read it (version {version} now); read it again, "
            "apply your change to what it holds now, and send that version in If-Match"
        )
        self.version = version


class DocumentRefusedError(Exception):
    """The role editor's answer when IAM refuses a document as such: malformed, naming a principal that does not
    exist, or over a size quota; never a throttle or a denied call. A sync can then render something safer.
    Not a `TrustGateError`: it is a fact about IAM for the sync to act on, not an answer to a caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class IamRefusedError(RuleViolationError):
    """IAM refused the trust policy a new role policy renders; nothing was stored."""

    code = "iam_refused"


class ActivationNotRecordedError(TrustGateError):
    """IAM names the grant's person, but its activation could not be recorded yet: a retry finishes it."""

    status = 503
    code = "activation_not_recorded"
    retry_after_seconds = 5


class ThrottledError(TrustGateError):
    """AWS throttled a call this operation needed (or a write lost to a concurrent one) beyond its retries;
    nothing was changed, and the same call is safe to repeat."""

    status = 429
    code = "throttled"
    retry_after_seconds = 5

    def __init__(
        self, message: str = "AWS is throttling TrustGate right now; nothing was changed. Retry in a few seconds"
    ) -> None:
        super().__init__(message)


class DecisionBusyError(TrustGateError):
    """Others kept deciding the same request at the same moment, every time this decision was about to be
    recorded; nothing was recorded, and the same decision is safe to repeat."""

    status = 429
    code = "decision_busy"
    retry_after_seconds = 2


class RolesRefusedError(TrustGateError):
    """A multi-role request one or more of whose roles refuse it: nothing was recorded or granted for any of them.

    `refusals` holds each refusing role's own answer ({role, status, code, message}); the status is the first's."""

    code = "roles_refused"

    def __init__(self, refusals: list[dict[str, object]]) -> None:
        shown = "; ".join(f"{r['role']}: {r['code']}: {r['message']}" for r in refusals)
        super().__init__(
            f"{len(refusals)} of the roles asked for refuse the request, so nothing was asked for any of them. {shown}"
        )
        self.refusals = refusals
        status = refusals[0]["status"]
        self.status = status if isinstance(status, int) else 422
