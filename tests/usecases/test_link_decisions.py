"""Deciding through a personal approval link on the fakes: tests/functional/test_approval_page.py without moto.

The links are the ones `workflow_steps.notify_approvers` minted and sent to each approver (read back from the
notifications), opened and posted through `link_decisions.open_link` and `decide_by_link` as the approval page's
GET and POST do. The CSRF value is checked by `decide_by_link` itself (`require_csrf`, set by the route for form
posts), so it is tested here.
"""

from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace

import pytest

from tests.usecases.conftest import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    MANAGEMENT,
    ROLE_ARN,
    SETTINGS,
    VENDOR_TRUST,
    caller,
    request_access,
    task_token,
)
from trustgate.app import approval_links, decisions, effects, link_decisions, roles, workflow_steps
from trustgate.app.link_decisions import LinkOutcome, LinkRefused
from trustgate.core.errors import DecisionBusyError
from trustgate.core.ids import new_id
from trustgate.core.models import AccessRequest, AuditEvent, RequestStatus, RolePolicy
from trustgate.core.trust_policy import grant_expiry_in
from trustgate_local.fakes import FakeDependencies

pytestmark = pytest.mark.unit

LINK_PREFIX = f"{SETTINGS.approval_base_url}/decide/"


@pytest.fixture(autouse=True)
def no_grant_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """`decide_by_link` waits (in real time, `time.sleep`) up to GRANT_WAIT_SECONDS for the flow to grant an
    approved request; on the fakes nothing grants it meanwhile, so it would only wait."""
    monkeypatch.setattr(link_decisions, "GRANT_WAIT_SECONDS", 0.0)


def links_of(deps: FakeDependencies, request_id: str) -> dict[str, str]:
    """Each approver's raw token, from the approval message `notify_approvers` sent them."""
    found: dict[str, str] = {}
    for n in deps.notifier.sent:
        if n.request.id == request_id and n.event == "approval.requested" and n.link is not None:
            assert n.link.startswith(LINK_PREFIX), n.link
            assert n.recipient not in found  # one link per approver
            found[n.recipient] = n.link.removeprefix(LINK_PREFIX)
    return found


def pending_with_links(deps: FakeDependencies, who: str = ALICE) -> tuple[str, dict[str, str]]:
    request = request_access(deps, who)
    return request.id, links_of(deps, request.id)


def token_used(deps: FakeDependencies, token: str) -> bool:
    item = deps.store.get_token(approval_links.token_hash(token))
    assert item is not None
    return "used_at" in item


def approve_on_page(deps: FakeDependencies, token: str, comment: str | None = None) -> LinkOutcome:
    """GET the page, then POST its form (with the CSRF value it embedded)."""
    view = link_decisions.open_link(deps, token)
    return link_decisions.decide_by_link(deps, token, "approve", comment, csrf=view.csrf, require_csrf=True)


def store_policy(deps: FakeDependencies, policy: RolePolicy) -> None:
    """Write a role policy through the store (the admin use case's own checks are tested elsewhere)."""
    _, version = deps.store.get_role_policy(ROLE_ARN)
    now = deps.clock.now()
    audit = AuditEvent(id=new_id(now), at=now, actor=CAROL, action="policy.changed", role_arn=ROLE_ARN)
    deps.store.put_role_policy(ROLE_ARN, policy, version, audit)


def assert_untouched(deps: FakeDependencies, request_id: str, before: AccessRequest) -> None:
    after = deps.store.get_request(request_id)
    assert after == before
    assert (after.status, after.approvals, after.decided_at) == (RequestStatus.PENDING, [], None)


# -- showing -------------------------------------------------------------------------------------


def test_each_approver_gets_their_own_link_and_opening_it_shows_the_request_and_changes_nothing(
    deps: FakeDependencies,
) -> None:
    request_id, links = pending_with_links(deps)
    assert set(links) == {BOB, DAVE}
    assert links[BOB] != links[DAVE]
    before = deps.store.get_request(request_id)
    audits = dict(deps.store.audits)

    views = {who: link_decisions.open_link(deps, token) for who, token in links.items() for _ in range(3)}

    assert views[BOB].request == before
    assert (views[BOB].approver_arn, views[DAVE].approver_arn) == (BOB, DAVE)
    assert views[BOB].csrf
    assert views[BOB].csrf != views[DAVE].csrf  # each link has its own
    assert views[BOB].nonconforming is None
    assert_untouched(deps, request_id, before)
    assert deps.store.audits == audits
    assert not any(token_used(deps, token) for token in links.values())
    assert deps.flow.resumed == []


# -- deciding ------------------------------------------------------------------------------------


def test_a_valid_link_approves_as_its_approver_and_resumes_the_flow(deps: FakeDependencies) -> None:
    request_id, links = pending_with_links(deps)

    outcome = approve_on_page(deps, links[BOB], "ticket checked")

    assert (outcome.approver_arn, outcome.decision, outcome.missing) == (BOB, "approve", 0)
    decided = deps.store.get_request(request_id)
    assert outcome.request == decided
    assert decided.decided_at == deps.clock.now()
    assert [(a.approver_arn, a.decision, a.comment) for a in decided.approvals] == [(BOB, "approve", "ticket checked")]
    assert deps.flow.resumed == [(task_token(request_id), "approve")]
    assert token_used(deps, links[BOB])
    assert not token_used(deps, links[DAVE])
    assert [n.recipient for n in deps.notifier.sent if n.event == "approval.closed"] == [DAVE]
    workflow_steps.grant(deps, request_id)  # what the resumed flow does next
    assert grant_expiry_in(deps.roles.trust_policy(ROLE_ARN), ALICE) is not None


def test_the_page_shows_the_grant_when_the_flow_makes_it_while_it_waits(
    deps: FakeDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    request_id, links = pending_with_links(deps)
    monkeypatch.setattr(link_decisions, "GRANT_WAIT_SECONDS", 5.0)
    # The flow's Grant step runs while the page waits (its `time.sleep`): the page then says "granted".
    flow = SimpleNamespace(monotonic=time.monotonic, sleep=lambda _: workflow_steps.grant(deps, request_id))
    monkeypatch.setattr(effects, "time", flow)  # where the bounded wait sleeps (effects.while_pending)

    outcome = approve_on_page(deps, links[BOB])

    assert outcome.request.status == RequestStatus.ACTIVE
    assert outcome.request == deps.store.get_request(request_id)


def test_n_of_m_needs_two_links_and_resumes_the_flow_once(deps: FakeDependencies) -> None:
    store_policy(deps, RolePolicy(required_approvals=2))
    request_id, links = pending_with_links(deps)

    first = approve_on_page(deps, links[BOB])

    assert first.missing == 1
    half = deps.store.get_request(request_id)
    assert (half.status, half.decided_at, len(half.approvals)) == (RequestStatus.PENDING, None, 1)
    assert deps.flow.resumed == []
    assert link_decisions.open_link(deps, links[DAVE]).request.approvals == half.approvals  # dave sees bob's

    second = approve_on_page(deps, links[DAVE])

    assert second.missing == 0
    assert second.request.decided_at == deps.clock.now()
    assert {a.approver_arn for a in second.request.approvals} == {BOB, DAVE}
    assert deps.flow.resumed == [(task_token(request_id), "approve")]


def test_a_link_works_once_a_second_use_is_refused_and_changes_nothing(deps: FakeDependencies) -> None:
    store_policy(deps, RolePolicy(required_approvals=2))  # so the request is still open after bob's approval
    request_id, links = pending_with_links(deps)
    view = link_decisions.open_link(deps, links[BOB])
    link_decisions.decide_by_link(deps, links[BOB], "approve", None, csrf=view.csrf, require_csrf=True)
    before = deps.store.get_request(request_id)

    with pytest.raises(LinkRefused) as replay:
        link_decisions.decide_by_link(deps, links[BOB], "approve", None, csrf=view.csrf, require_csrf=True)
    with pytest.raises(LinkRefused) as as_deny:
        link_decisions.decide_by_link(deps, links[BOB], "deny", None, csrf=view.csrf, require_csrf=True)
    with pytest.raises(LinkRefused) as opened_again:
        link_decisions.open_link(deps, links[BOB])

    for refusal in (replay, as_deny, opened_again):
        assert (refusal.value.error.status, refusal.value.error.code) == (409, "link_used")
        assert refusal.value.request == before
    assert deps.store.get_request(request_id) == before
    assert len(before.approvals) == 1
    assert deps.flow.resumed == []
    approve_on_page(deps, links[DAVE])  # the other approver's link still works
    assert deps.flow.resumed == [(task_token(request_id), "approve")]


def test_a_link_of_a_decided_request_is_refused_and_left_unused(deps: FakeDependencies) -> None:
    request_id, links = pending_with_links(deps)
    dave = link_decisions.open_link(deps, links[DAVE])  # dave opened the page before bob decided
    approve_on_page(deps, links[BOB])
    before = deps.store.get_request(request_id)

    with pytest.raises(LinkRefused) as shown:
        link_decisions.open_link(deps, links[DAVE])
    with pytest.raises(LinkRefused) as posted:
        link_decisions.decide_by_link(deps, links[DAVE], "deny", None, csrf=dave.csrf, require_csrf=True)

    for refusal in (shown, posted):
        assert (refusal.value.error.status, refusal.value.error.code) == (409, "already_decided")
    assert deps.store.get_request(request_id) == before
    assert not token_used(deps, links[DAVE])
    assert deps.flow.resumed == [(task_token(request_id), "approve")]


def test_an_expired_link_is_refused_and_changes_nothing(deps: FakeDependencies) -> None:
    request_id, links = pending_with_links(deps)
    view = link_decisions.open_link(deps, links[BOB])
    before = deps.store.get_request(request_id)
    assert before.approval_deadline is not None
    deps.clock.at = before.approval_deadline  # the link lives as long as the approval window

    with pytest.raises(LinkRefused) as shown:
        link_decisions.open_link(deps, links[BOB])
    with pytest.raises(LinkRefused) as posted:
        link_decisions.decide_by_link(deps, links[BOB], "approve", None, csrf=view.csrf, require_csrf=True)

    for refusal in (shown, posted):
        error = refusal.value.error
        assert isinstance(error, approval_links.ExpiredLinkError)
        assert (error.status, error.code, error.request_id) == (403, "link_expired", request_id)
    assert_untouched(deps, request_id, before)
    assert not token_used(deps, links[BOB])
    assert deps.flow.resumed == []


@pytest.mark.parametrize("csrf", [None, "", "not-the-pages-value", "dave"], ids=["missing", "empty", "forged", "daves"])
def test_a_form_post_without_the_pages_csrf_value_is_refused_and_changes_nothing(
    deps: FakeDependencies, csrf: str | None
) -> None:
    request_id, links = pending_with_links(deps)
    if csrf == "dave":
        csrf = link_decisions.open_link(deps, links[DAVE]).csrf  # a real value, of another link
    before = deps.store.get_request(request_id)

    with pytest.raises(LinkRefused) as posted:
        link_decisions.decide_by_link(deps, links[BOB], "approve", None, csrf=csrf, require_csrf=True)

    assert isinstance(posted.value.error, link_decisions.CsrfError)
    assert (posted.value.error.status, posted.value.error.code) == (403, "csrf_failed")
    assert posted.value.request is None  # a post that fails it learns nothing about the request
    assert_untouched(deps, request_id, before)
    assert not token_used(deps, links[BOB])
    assert deps.flow.resumed == []


def test_a_json_post_needs_no_csrf_value_but_a_wrong_one_sent_anyway_is_refused(deps: FakeDependencies) -> None:
    request_id, links = pending_with_links(deps)

    with pytest.raises(LinkRefused) as wrong:
        link_decisions.decide_by_link(deps, links[BOB], "approve", None, csrf="wrong", require_csrf=False)
    assert wrong.value.error.code == "csrf_failed"
    assert not token_used(deps, links[BOB])

    outcome = link_decisions.decide_by_link(deps, links[BOB], "approve", None, csrf=None, require_csrf=False)

    assert outcome.request.decided_at is not None
    assert deps.flow.resumed == [(task_token(request_id), "approve")]


@pytest.mark.parametrize(
    "token",
    ["Gx3vQ9m_Tz0bKc7LpW2yRf5sNa8dHj4uEo1iVq6tXw", "short", "x" * 500, "..%2F..%2Fetc%2Fpasswd-----------"],
    ids=["well-formed-guess", "short", "long", "path"],
)
def test_a_guessed_or_forged_token_is_refused_and_changes_nothing(deps: FakeDependencies, token: str) -> None:
    request_id, links = pending_with_links(deps)
    tampered = links[BOB][:-1] + ("A" if links[BOB][-1] != "A" else "B")
    before = deps.store.get_request(request_id)

    for guess in (token, tampered):
        with pytest.raises(LinkRefused) as shown:
            link_decisions.open_link(deps, guess)
        with pytest.raises(LinkRefused) as posted:
            link_decisions.decide_by_link(deps, guess, "approve", None, csrf=None, require_csrf=False)
        for refusal in (shown, posted):
            assert (refusal.value.error.status, refusal.value.error.code) == (403, "invalid_link")
            assert refusal.value.request is None

    assert_untouched(deps, request_id, before)
    assert not token_used(deps, links[BOB])


def test_a_link_cannot_decide_another_request(deps: FakeDependencies) -> None:
    first, first_links = pending_with_links(deps, ALICE)
    second, _ = pending_with_links(deps, CAROL)
    before_first, before_second = deps.store.get_request(first), deps.store.get_request(second)
    view = link_decisions.open_link(deps, first_links[BOB])

    with pytest.raises(LinkRefused) as claimed:
        link_decisions.decide_by_link(
            deps, first_links[BOB], "approve", None, csrf=view.csrf, require_csrf=True, request_id=second
        )

    assert (claimed.value.error.status, claimed.value.error.code) == (403, "invalid_link")
    assert "another request" in claimed.value.error.message
    assert_untouched(deps, first, before_first)
    assert_untouched(deps, second, before_second)
    assert not token_used(deps, first_links[BOB])


# -- who may decide through a link ------------------------------------------------------------------


def test_the_requester_gets_no_link_and_one_minted_for_them_cannot_approve(deps: FakeDependencies) -> None:
    request_id, links = pending_with_links(deps, BOB)  # bob is an approver of the role, not of his own request
    assert set(links) == {DAVE}
    request = deps.store.get_request(request_id)
    assert request.approval_deadline is not None
    own = approval_links.mint(deps.store, request_id, BOB, request.approval_deadline)

    with pytest.raises(LinkRefused) as shown:
        link_decisions.open_link(deps, own)
    with pytest.raises(LinkRefused) as posted:
        link_decisions.decide_by_link(deps, own, "approve", None, csrf=None, require_csrf=False)

    for refusal in (shown, posted):
        assert (refusal.value.error.status, refusal.value.error.code) == (403, "own_request")
    assert_untouched(deps, request_id, request)
    assert not token_used(deps, own)
    assert deps.flow.resumed == []
    approve_on_page(deps, links[DAVE])  # another approver still may
    assert deps.flow.resumed == [(task_token(request_id), "approve")]


def test_an_approver_removed_by_a_policy_change_cannot_decide_through_their_link(deps: FakeDependencies) -> None:
    request_id, links = pending_with_links(deps)
    deps.clock.advance(timedelta(minutes=5))
    change = roles.change_policy(deps, caller(CAROL), ROLE_ARN, RolePolicy(approvers=[DAVE]), dry_run=False)
    assert change.applied
    before = deps.store.get_request(request_id)
    view = link_decisions.open_link(deps, links[DAVE])

    for decision in ("approve", "deny"):
        with pytest.raises(LinkRefused) as posted:
            link_decisions.decide_by_link(deps, links[BOB], decision, None, csrf=None, require_csrf=False)
        assert (posted.value.error.status, posted.value.error.code) == (403, "approver_removed")
    with pytest.raises(LinkRefused) as shown:
        link_decisions.open_link(deps, links[BOB])
    assert shown.value.error.code == "approver_removed"

    assert_untouched(deps, request_id, before)
    assert not token_used(deps, links[BOB])
    outcome = link_decisions.decide_by_link(deps, links[DAVE], "approve", None, csrf=view.csrf, require_csrf=True)
    assert outcome.request.decided_at is not None  # the approver the policy in force names still decides
    assert deps.flow.resumed == [(task_token(request_id), "approve")]


def test_a_request_the_policy_no_longer_allows_is_shown_can_be_denied_but_not_approved(
    deps: FakeDependencies,
) -> None:
    request_id, links = pending_with_links(deps)
    store_policy(deps, RolePolicy(requester_accounts=[MANAGEMENT]))  # alice asked from another account
    before = deps.store.get_request(request_id)

    view = link_decisions.open_link(deps, links[BOB])
    assert view.nonconforming is not None
    assert "requester_accounts" in view.nonconforming
    with pytest.raises(LinkRefused) as approving:
        link_decisions.decide_by_link(deps, links[BOB], "approve", None, csrf=view.csrf, require_csrf=True)
    assert (approving.value.error.status, approving.value.error.code) == (409, "request_nonconforming")
    assert_untouched(deps, request_id, before)
    assert not token_used(deps, links[BOB])

    denied = link_decisions.decide_by_link(
        deps, links[BOB], "deny", "no longer allowed", csrf=view.csrf, require_csrf=True
    )

    assert denied.request.status == RequestStatus.DENIED
    assert deps.flow.resumed == [(task_token(request_id), "deny")]


def test_a_deny_through_a_link_ends_the_request_at_once(deps: FakeDependencies) -> None:
    store_policy(deps, RolePolicy(required_approvals=2))
    request_id, links = pending_with_links(deps)
    view = link_decisions.open_link(deps, links[BOB])

    outcome = link_decisions.decide_by_link(
        deps, links[BOB], "deny", "use the read-only role", csrf=view.csrf, require_csrf=True
    )

    assert (outcome.decision, outcome.request.status) == ("deny", RequestStatus.DENIED)  # one deny is enough
    denied = deps.store.get_request(request_id)
    assert denied.status == RequestStatus.DENIED
    assert denied.reason == "use the read-only role"
    assert [(a.approver_arn, a.decision) for a in denied.approvals] == [(BOB, "deny")]
    assert deps.flow.resumed == [(task_token(request_id), "deny")]
    assert deps.roles.trust_policy(ROLE_ARN) == VENDOR_TRUST
    assert deps.roles.writes == []
    assert [n.recipient for n in deps.notifier.sent if n.event == "approval.closed"] == [DAVE]
    with pytest.raises(LinkRefused) as dave:
        link_decisions.open_link(deps, links[DAVE])
    assert dave.value.error.code == "already_decided"
    assert workflow_steps.finalize(deps, request_id, "denied")["status"] == "denied"  # RecordDenied
    assert [n.recipient for n in deps.notifier.sent if n.event == "request.denied"] == [ALICE]
    request_access(deps)  # alice may ask again


# -- a decision that could not be recorded --------------------------------------------------------------


def test_a_decision_not_recorded_because_others_were_deciding_gives_the_link_back(
    deps: FakeDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    request_id, links = pending_with_links(deps)
    before = deps.store.get_request(request_id)

    def busy(*_: object, **__: object) -> AccessRequest:
        raise DecisionBusyError("others are deciding")

    with monkeypatch.context() as patch:
        patch.setattr(decisions, "decide", busy)
        with pytest.raises(LinkRefused) as posted:
            link_decisions.decide_by_link(deps, links[BOB], "approve", None, csrf=None, require_csrf=False)

    assert (posted.value.error.status, posted.value.error.code) == (429, "decision_busy")
    assert "use this link again" in posted.value.error.message
    assert_untouched(deps, request_id, before)
    assert not token_used(deps, links[BOB])  # given back: the approver can use it again
    assert approve_on_page(deps, links[BOB]).request.decided_at is not None
    assert token_used(deps, links[BOB])
    assert deps.flow.resumed == [(task_token(request_id), "approve")]
