"""Break-glass reviews: an approver's verdict after the fact, the list awaiting one, and the daily reminder."""

from __future__ import annotations

from datetime import timedelta

from trustgate.adapters.observability import count
from trustgate.app.access import owns, policy_for, resolve_role
from trustgate.app.effects import notify, reviewers_of
from trustgate.app.requests import RequestQuery
from trustgate.app.transitions import commit_change
from trustgate.core import messages
from trustgate.core.errors import ConflictError, NotFoundError, TrustGateError
from trustgate.core.identity import Caller, role_name_of
from trustgate.core.models import AccessRequest, Review, ReviewVerdict
from trustgate.core.ports import Dependencies
from trustgate.core.records import Page, filled_page, iterate_pages
from trustgate.core.rules import check_may_decide, is_admin

REMIND_EVERY = timedelta(days=1)


def review_request(
    deps: Dependencies, caller: Caller, request_id: str, verdict: ReviewVerdict, comment: str | None
) -> AccessRequest:
    """Record an approver's verdict on a break-glass grant, once.

    Who may review is who may decide the role's requests now (the policy in force: its approvers, their kinds),
    never the requester under any of their identities, even where the role allows self-approval.
    """
    request = deps.store.get_request(request_id)
    effective = policy_for(deps, request.role_arn)
    may_see = caller.matches(effective.approvers) or is_admin(caller, effective.admins)
    if not may_see and not owns(deps, caller, request):  # as GET /requests/{id}: a stranger learns nothing
        raise NotFoundError(f"no request {request_id} that you may see")
    if not request.break_glass:
        raise ConflictError(
            f"request {request_id} was not break-glass access: it went through approval, so there is nothing to review",
            code="not_break_glass",
        )
    person = check_may_decide(caller, request.model_copy(update={"allow_self_approval": False}), effective)
    if request.starts_at is None:
        raise ConflictError(
            f"request {request_id} has not begun (it is {request.status.value}): review a break-glass use once it "
            "was granted",
        )
    if request.review is not None:
        raise ConflictError(
            f"request {request_id} was already reviewed ({request.review.verdict}) by "
            f"{request.review.person}; a review is given once",
            code="already_reviewed",
        )
    review = Review(reviewer_arn=caller.arn, verdict=verdict, at=deps.clock.now(), comment=comment)
    reviewed = commit_change(
        deps,
        request,
        {"review": review},
        caller.arn,
        "request.reviewed",
        {"verdict": verdict, "reviewer": person.label, "role": role_name_of(request.role_arn)},
    )
    if verdict == "misuse":
        count("BreakGlassMisuse")
    notify(deps, messages.break_glass_reviewed(reviewed))
    return reviewed


def pending_reviews(deps: Dependencies, caller: Caller, query: RequestQuery) -> Page[AccessRequest]:
    """The break-glass grants awaiting review that this caller may review or administer (bootstrap admins: all),
    of `query.role` and in `query.status` when given."""
    role_arn = resolve_role(deps, query.role) if query.role else None
    every_role = is_admin(caller, deps.settings.bootstrap_admins)
    policies = [policy_for(deps, role_arn) for role_arn in deps.settings.managed_role_arns]
    reviewable = {p.role_arn for p in policies if caller.matches(p.approvers) or is_admin(caller, p.admins)}

    def wanted(request: AccessRequest) -> bool:
        visible = every_role or request.role_arn in reviewable
        return visible and role_arn in (None, request.role_arn) and query.status in (None, request.status)

    return filled_page(deps.store.review_pending, wanted, query.cursor, query.limit)


def remind_reviews(deps: Dependencies) -> list[str]:
    """The reconciler's part: remind the approvers of each break-glass grant still unreviewed a day after it was
    taken, and every day after. A claim on the request makes one reminder a day, however many runs overlap."""
    now = deps.clock.now()
    reminded = []
    for request in iterate_pages(deps.store.review_pending):
        if request.created_at > now - REMIND_EVERY:
            continue
        if not deps.store.claim_review_reminder(request.id, now, now - REMIND_EVERY + timedelta(minutes=10)):
            continue
        for reviewer in _current_reviewers(deps, request):
            notify(deps, messages.review_due(request, reviewer))
        reminded.append(request.id)
    return reminded


def _current_reviewers(deps: Dependencies, request: AccessRequest) -> list[str]:
    """The approvers the policy in force names exactly, except the requester (the snapshot's are out of date)."""
    try:
        approvers = list(policy_for(deps, request.role_arn).approvers)
    except TrustGateError:  # a role no longer managed: those who were its approvers when it was taken
        approvers = request.approvers
    return reviewers_of(request.model_copy(update={"approvers": approvers}))
