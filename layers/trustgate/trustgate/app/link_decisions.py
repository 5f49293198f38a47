"""Deciding through an approval link: what GET and POST /decide/{token} do, over `decisions.decide`.

Order of checks on POST, and why:
1. the token must be real and unexpired (403), and be the one the page was shown for (403);
2. the CSRF value must match, for form posts (403) — a request that fails it learns nothing more;
3. the link must be unused (409), the request still open (409), the approver allowed to decide it under
   the role policy in force (403: removed from the approvers since the link was sent, or the requester
   without self-approval) and, to approve, the request still within that policy (409
   request_nonconforming) — the same rules `decisions.decide` enforces, checked first so that a refusal
   leaves the link unused: nothing changed, so nothing is spent;
4. only then is the link marked used, atomically (`Store.use_token`), so a replay or a concurrent
   double-submit fails with 409 before it can reach `decisions.decide`;
5. `decisions.decide` records the decision. If it still refuses, the request changed in the instant
   between 3 and 5 (decided by someone else, timed out): the link stays spent, which is right, because
   a decided request's links are dead anyway. If it could not record it because AWS throttled it or others
   kept deciding at the same moment (429 throttled / decision_busy, with Retry-After), nothing was recorded
   and the link is given back (`Store.release_token`), so the approver can use it again in a few seconds.
A GET never gets past step 3 and never writes anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from trustgate.adapters.observability import logger
from trustgate.adapters.throttling import is_throttling
from trustgate.app import approval_links, decisions, effects
from trustgate.app.approval_links import InvalidLinkError, LinkGrant
from trustgate.core.errors import (
    ConflictError,
    DecisionBusyError,
    ForbiddenError,
    NotFoundError,
    ThrottledError,
    TrustGateError,
)
from trustgate.core.identity import Caller, caller_for_arn
from trustgate.core.models import AccessRequest
from trustgate.core.ports import Dependencies
from trustgate.core.rules import nonconforming_reason

Decision = Literal["approve", "deny"]
GRANT_WAIT_SECONDS = 5.0  # show "Access granted" when the flow is quick; API Gateway allows 29 s


class LinkUsedError(ConflictError):
    """The link already decided once; opening or posting it again changes nothing."""

    code = "link_used"


class CsrfError(ForbiddenError):
    """A form post without the value the approval page embedded."""

    code = "csrf_failed"


@dataclass(frozen=True)
class LinkView:
    """What the approval page shows for a usable link."""

    request: AccessRequest
    approver_arn: str
    csrf: str
    nonconforming: str | None = None  # why the policy in force no longer allows approving it (deny still may)


@dataclass(frozen=True)
class LinkOutcome:
    """What a decision through a link did."""

    request: AccessRequest
    approver_arn: str
    decision: Decision
    missing: int = 0  # approvals still needed, counted as the role policy in force counts them


class LinkRefused(Exception):
    """A typed refusal plus the request it concerns, so the page can show where things stand."""

    def __init__(self, error: TrustGateError, request: AccessRequest | None) -> None:
        super().__init__(error.message)
        self.error = error
        self.request = request


def hash_prefix(token: str) -> str:
    """What logs may say about a token: the first characters of its hash, never the token."""
    return approval_links.token_hash(token)[:12]


def open_link(deps: Dependencies, token: str) -> LinkView:
    """GET: the request behind a link and the page's CSRF value. Never writes anything."""
    grant, request = _resolve(deps, token)
    approver = _approver(deps, grant, request)
    _check_open(deps, grant, request, approver, None)
    judged = decisions.judged_by(deps, request)
    why = next((w for view, policy in judged if (w := nonconforming_reason(view, policy, deps.settings))), None)
    return LinkView(request, grant.approver_arn, approval_links.csrf_for(grant), why)


def decide_by_link(
    deps: Dependencies,
    token: str,
    decision: Decision,
    comment: str | None,
    *,
    csrf: str | None,
    require_csrf: bool,
    request_id: str | None = None,
) -> LinkOutcome:
    """POST: decide as the link's approver, once. See the module docstring for the order of checks."""
    grant, request = _resolve(deps, token)
    if request_id is not None and request_id != grant.request_id:
        raise LinkRefused(InvalidLinkError("this approval link belongs to another request"), None)
    if (require_csrf or csrf is not None) and not approval_links.csrf_matches(grant, csrf):
        raise LinkRefused(
            CsrfError("the form was not sent from the approval page this link opens; nothing was changed"), None
        )
    approver = _approver(deps, grant, request)
    _check_open(deps, grant, request, approver, decision)
    now = deps.clock.now()
    if not deps.store.use_token(grant.token_hash, now):
        raise LinkRefused(LinkUsedError("this approval link was already used; nothing was changed"), request)
    logger.info(
        "decision through approval link",
        extra={"request_id": request.id, "token_hash_prefix": grant.token_hash[:12], "decision": decision},
    )
    try:
        decided = decisions.decide(deps, approver, request.id, decision, comment)
    except (ConflictError, ForbiddenError) as error:  # the request changed since the checks above
        raise LinkRefused(error, _current(deps, request)) from error
    except (DecisionBusyError, ThrottledError) as error:
        raise LinkRefused(_not_recorded(error, request, decision, _give_back(deps, grant, now)), request) from error
    except Exception as error:
        if not is_throttling(error):
            raise
        released = _give_back(deps, grant, now)
        raise LinkRefused(_not_recorded(ThrottledError(), request, decision, released), request) from error
    missing = decisions.approvals_missing(deps, decided)
    if decision == "approve" and decided.decided_at is not None:
        decided = effects.while_pending(deps, decided, GRANT_WAIT_SECONDS, poll=0.2)  # the page can say 'granted'
    return LinkOutcome(decided, grant.approver_arn, decision, missing)


def _resolve(deps: Dependencies, token: str) -> tuple[LinkGrant, AccessRequest]:
    try:
        grant = approval_links.look_up(deps.store, token, deps.clock.now())
    except ForbiddenError as error:
        raise LinkRefused(error, None) from error
    try:
        request = deps.store.get_request(grant.request_id)
    except NotFoundError as error:
        raise LinkRefused(InvalidLinkError("this approval link's request no longer exists"), None) from error
    return grant, request


def _approver(deps: Dependencies, grant: LinkGrant, request: AccessRequest) -> Caller:
    try:
        return caller_for_arn(grant.approver_arn, deps.settings.caller_policy())
    except ForbiddenError as error:
        raise LinkRefused(error, request) from error


def _check_open(
    deps: Dependencies, grant: LinkGrant, request: AccessRequest, approver: Caller, decision: Decision | None
) -> None:
    """The refusals that leave a link unused: used, or not this approver's to decide now (`decision` None:
    only opened, so a request the policy no longer allows approving is still shown, to be denied)."""
    if grant.used:
        raise LinkRefused(LinkUsedError("this approval link was already used; nothing was changed"), request)
    try:
        decisions.check_decision(deps, request, approver, approving=decision == "approve")
    except (ForbiddenError, ConflictError) as error:
        raise LinkRefused(error, request) from error


def _give_back(deps: Dependencies, grant: LinkGrant, used_at: datetime) -> bool:
    """Unspend a link whose decision was not recorded; False if that could not be written either (AWS still
    busy), and the link stays used: the message then says how else to decide."""
    try:
        return deps.store.release_token(grant.token_hash, used_at)
    except Exception:  # a throttled table, most likely: the link stays used, and the message says how else to decide
        logger.warning(
            "could not give back an approval link", extra={"token_hash_prefix": grant.token_hash[:12]}, exc_info=True
        )
        return False


def _not_recorded(error: TrustGateError, request: AccessRequest, decision: Decision, released: bool) -> TrustGateError:
    """A decision not recorded for a passing reason (429, with Retry-After): say so, and how to send it again."""
    busy = isinstance(error, DecisionBusyError)
    why = "others were deciding it at the same moment" if busy else "AWS is throttling TrustGate"
    command = f"`trustgate {decision} {request.id}` (POST /requests/{request.id}/{decision})"
    again = (
        f"In a few seconds, use this link again or run {command}"
        if released
        else f"This link could not be given back: in a few seconds, run {command}"
    )
    message = f"your {decision} of request {request.id} was not recorded because {why}; nothing was changed. {again}"
    return DecisionBusyError(message) if busy else ThrottledError(message)


def _current(deps: Dependencies, request: AccessRequest) -> AccessRequest:
    try:
        return deps.store.get_request(request.id)
    except NotFoundError:
        return request
