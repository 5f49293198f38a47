"""Break-glass on the fakes (issue 13, section 2): the steps between recording and granting, which HTTP answers
too quickly to show: announced before it can begin (by the Grant step if the API died first), reviewed only once it
began, an attempt that never began leaves the review queue, and the rule in force judges it at the Grant step."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.usecases.conftest import ALICE, BOB, CAROL, JUSTIFICATION, ROLE_ARN, ROLE_NAME, caller
from trustgate.app import requests, reviews, roles, workflow_steps
from trustgate.core.errors import ConflictError, ForbiddenError
from trustgate.core.models import AccessRequest, BreakGlassRule, RequestStatus, RolePolicy
from trustgate.core.trust_policy import grant_expiry_in
from trustgate_local.fakes import FakeDependencies

pytestmark = pytest.mark.unit

RULE = BreakGlassRule(requesters=[ALICE], max_duration=timedelta(minutes=30))


@pytest.fixture
def glass(deps: FakeDependencies) -> FakeDependencies:
    deps.settings = deps.settings.model_copy(update={"allow_break_glass": True})
    roles.change_policy(deps, caller(CAROL), ROLE_ARN, RolePolicy(break_glass=RULE), dry_run=False)
    return deps


def break_glass(deps: FakeDependencies) -> AccessRequest:
    """POST /requests with break_glass: recorded, announced, its flow started (the fakes' flow does not run)."""
    new = requests.NewRequest(ROLE_NAME, timedelta(minutes=20), JUSTIFICATION, break_glass=True)
    return requests.create_request(deps, caller(ALICE), new)


def announcements(deps: FakeDependencies) -> list[str]:
    return [n.recipient for n in deps.notifier.sent if n.event == "break_glass"]


def test_it_is_announced_before_it_begins_and_reviewed_only_once_it_began(glass: FakeDependencies) -> None:
    request = break_glass(glass)
    assert request.announced_at is not None
    assert sorted(announcements(glass)) == sorted([BOB, "arn:aws:iam::222222222222:user/dave", "*"])
    assert [e.action for e in glass.events.published][-2:] == ["break_glass", "break_glass.announced"]
    with pytest.raises(ConflictError, match="has not begun"):
        reviews.review_request(glass, caller(BOB), request.id, "ok", None)

    assert workflow_steps.grant(glass, request.id)["status"] == "active"
    assert len(announcements(glass)) == 3  # the Grant step does not announce it again
    assert grant_expiry_in(glass.roles.trust_policy(ROLE_ARN), ALICE) is not None
    reviewed = reviews.review_request(glass, caller(BOB), request.id, "ok", "the pump was down")
    assert reviewed.review is not None
    assert glass.store.review_pending().items == []


def test_the_grant_step_announces_one_the_api_never_did(
    glass: FakeDependencies, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(requests, "announce_break_glass", lambda _deps, request: request)  # the API died there
    request = break_glass(glass)
    assert announcements(glass) == []
    assert glass.store.get_request(request.id).announced_at is None

    assert workflow_steps.grant(glass, request.id)["status"] == "active"
    granted = glass.store.get_request(request.id)
    assert len(announcements(glass)) == 3
    assert granted.announced_at is not None
    assert granted.starts_at is not None
    assert granted.announced_at <= granted.starts_at


def test_an_attempt_that_never_began_needs_no_review_and_does_not_block_the_next(glass: FakeDependencies) -> None:
    request = break_glass(glass)
    assert [r.id for r in glass.store.review_pending().items] == [request.id]
    with pytest.raises(ForbiddenError, match="has not been reviewed"):  # one at a time (its request is pending)
        requests.create_request(
            glass, caller(ALICE), requests.NewRequest(ROLE_NAME, None, JUSTIFICATION, break_glass=True)
        )
    # The rule is taken away before the Grant step runs: it judges by the rule in force and fails it.
    roles.change_policy(glass, caller(CAROL), ROLE_ARN, RolePolicy(), dry_run=False)
    assert workflow_steps.grant(glass, request.id)["status"] == "failed"
    assert glass.store.get_request(request.id).status == RequestStatus.FAILED
    assert grant_expiry_in(glass.roles.trust_policy(ROLE_ARN), ALICE) is None
    assert glass.store.review_pending().items == []

    roles.change_policy(glass, caller(CAROL), ROLE_ARN, RolePolicy(break_glass=RULE), dry_run=False)
    assert break_glass(glass).status == RequestStatus.PENDING  # free to break the glass again


def test_the_deployer_turning_break_glass_off_fails_one_not_yet_granted(glass: FakeDependencies) -> None:
    request = break_glass(glass)
    glass.settings = glass.settings.model_copy(update={"allow_break_glass": False})
    result = workflow_steps.grant(glass, request.id)
    assert result["status"] == "failed"
    assert "break-glass" in result["reason"]
    assert grant_expiry_in(glass.roles.trust_policy(ROLE_ARN), ALICE) is None
