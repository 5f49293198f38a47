"""Break-glass with post-hoc review through the API and the real state machine on moto (issue 13, section 2):
allowed by a role policy within the deployer's ceiling, active at once without approval, everyone who would have
approved told at once, an event, a metric an alarm watches, and an approver's review afterwards. Whether IAM lets
alice in is the independent evaluator's answer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.support.assume import decisions
from tests.support.aws import ALICE, BOB, CAROL, DAVE, ERIN, ROLE_NAME, World, running_world
from tests.support.flows import JUSTIFICATION, approve, request_access
from tests.support.iam_eval import ALLOWED
from tests.support.links import messages_for, received_by

pytestmark = pytest.mark.functional

POLICY = f"/roles/{ROLE_NAME}/policy"
JUST_IN_TIME = {"mode": "none", "adopt_statements": ["PumpOrganizationAccess"]}
BREAK_GLASS = {"requesters": [ALICE], "max_duration": "PT30M"}


@pytest.fixture
def world() -> Iterator[World]:
    with running_world({"AllowBreakGlass": "true"}) as running:
        yield running


def put_policy(world: World, **fields: Any) -> None:
    status, answer = world.api("PUT", POLICY, CAROL, {**JUST_IN_TIME, **fields})
    assert status == 200, answer


def break_glass(world: World, caller: str = ALICE, **extra: Any) -> tuple[int, dict[str, Any]]:
    body = {"role": ROLE_NAME, "justification": JUSTIFICATION, "break_glass": True, **extra}
    status, answer = world.api("POST", "/requests", caller, body)
    return status, answer


def alice_may_assume(world: World) -> str:
    return decisions(world, ("alice", ALICE, "alice"))["alice"]


def pending_reviews(world: World, caller: str, **query: str) -> list[str]:
    status, answer = world.api("GET", "/requests", caller, query={"review": "pending", **query})
    assert status == 200, answer
    return [item["id"] for item in answer["items"]]


def review(world: World, caller: str, request_id: str, verdict: str, comment: str | None = None) -> tuple[int, Any]:
    body = {"verdict": verdict, **({"comment": comment} if comment else {})}
    return world.api("POST", f"/requests/{request_id}/review", caller, body)


def test_break_glass_is_active_at_once_everyone_is_told_and_an_approver_reviews_it(
    world: World, published: list[str], metrics_added: list[str]
) -> None:
    put_policy(world, break_glass=BREAK_GLASS)
    assert alice_may_assume(world) != ALLOWED
    assert world.api("GET", POLICY, CAROL)[1]["effective"]["break_glass_max_duration"] == "PT30M"
    # What she may do is listed before she needs it; bob is not named by the rule.
    assert world.api("GET", "/requestable-roles", ALICE)[1]["items"][0]["break_glass_max_duration"] == "PT30M"
    assert world.api("GET", "/requestable-roles", BOB)[1]["items"][0]["break_glass_max_duration"] is None

    status, answer = break_glass(world, duration="PT30M")
    assert status == 201, answer
    request_id = answer["id"]
    assert (answer["status"], answer["break_glass"], answer["approvals"]) == ("active", True, [])
    assert answer.get("review") is None
    assert alice_may_assume(world) == ALLOWED  # IAM lets her in at once, with nobody's approval

    # Straight to Grant: the flow never waited for a decision.
    history = world.session.client("stepfunctions").get_execution_history(
        executionArn=world.execution(request_id)["executionArn"]
    )
    entered = [e["stateEnteredEventDetails"]["name"] for e in history["events"] if "stateEnteredEventDetails" in e]
    assert "WaitForApproval" not in entered
    assert "Grant" in entered

    # Every approver on their own delivery, and the team, at once; an event and the alarm's metric.
    for approver in (BOB, DAVE):
        told = [s for s in received_by(world, approver) if s.request_id == request_id and s.event == "break_glass"]
        assert len(told) == 1
        assert "BREAK-GLASS" in told[0].subject
        assert f"trustgate review {request_id} --ok" in told[0].email
        assert told[0].token is None  # no link: a review is given as the reviewer, with the CLI or the API
    assert [s.event for s in messages_for(world, request_id, "break_glass", topic="shared")] == ["break_glass"]
    assert "trustgate.break_glass" in published
    assert "BreakGlassUsed" in metrics_added
    (record,) = [e for e in world.deps.store.audit_events().items if e.action == "break_glass"]
    assert (record.request_id, record.actor, record.detail["duration"]) == (request_id, ALICE, "PT30M")

    # Awaiting review: listed for its approvers (and admins), not for others.
    assert pending_reviews(world, BOB) == [request_id]
    assert pending_reviews(world, CAROL) == [request_id]
    assert pending_reviews(world, ERIN) == []
    assert pending_reviews(world, BOB, role=ROLE_NAME, status="active") == [request_id]
    assert pending_reviews(world, BOB, status="revoked") == []

    # Breaking the glass again waits for this use's review: max_duration bounds access, not one grant.
    world.api("POST", f"/requests/{request_id}/revoke", CAROL, {"reason": "incident over"})
    status, answer = break_glass(world, duration="PT30M")
    assert (status, answer["error"]["code"]) == (403, "break_glass_not_allowed")
    assert f"trustgate review {request_id}" in answer["error"]["message"]

    # Only an approver reviews, once; the requester is told the verdict. A stranger learns nothing.
    status, answer = review(world, ERIN, request_id, "ok")
    assert (status, answer["error"]["code"]) == (404, "not_found")
    status, answer = review(world, BOB, request_id, "misuse", "no incident was open")
    assert status == 200, answer
    assert answer["review"]["verdict"] == "misuse"
    assert answer["review"]["reviewer_arn"] == BOB
    assert answer["review"]["comment"] == "no incident was open"
    status, answer = review(world, DAVE, request_id, "ok")
    assert (status, answer["error"]["code"]) == (409, "already_reviewed")
    assert "trustgate.request.reviewed" in published
    assert "BreakGlassMisuse" in metrics_added
    told = [s for s in received_by(world, ALICE) if s.event == "break_glass.reviewed"]
    assert len(told) == 1
    assert "MISUSE" in told[0].subject
    assert pending_reviews(world, BOB) == []
    status, view = world.api("GET", f"/requests/{request_id}", ALICE)
    assert view["review"]["verdict"] == "misuse"
    assert alice_may_assume(world) != ALLOWED  # revoked above

    # Reviewed, the next use may go ahead; it ends on time like any grant.
    status, answer = break_glass(world, duration="PT15M")
    assert status == 201, answer
    # The API answers once the grant is active; the Grant step makes its expiry schedule just after.
    world.wait_status(answer["id"], "active")
    world.advance(timedelta(minutes=16))
    world.fire_schedule(answer["id"])
    assert world.status(answer["id"]) == "expired"
    assert alice_may_assume(world) != ALLOWED


def test_the_requester_never_reviews_their_own_break_glass_even_where_self_approval_is_allowed() -> None:
    with running_world({"AllowBreakGlass": "true", "AllowSelfApproval": "true"}) as world:
        put_policy(world, break_glass=BREAK_GLASS, approvers=[BOB, ALICE], allow_self_approval=True)
        status, answer = break_glass(world)
        assert status == 201, answer
        status, refused = review(world, ALICE, answer["id"], "ok")
        assert (status, refused["error"]["code"]) == (403, "own_request")
        # Nor is she told to review it: only the other approvers are.
        assert [s.recipient for s in messages_for(world, answer["id"], "break_glass")] == [BOB]


def test_break_glass_is_refused_with_a_reason_and_records_nothing(world: World) -> None:
    # The role's policy has no break_glass rule: 403, saying why.
    put_policy(world)
    status, answer = break_glass(world)
    assert (status, answer["error"]["code"]) == (403, "break_glass_not_allowed")
    assert "no break_glass rule" in answer["error"]["message"]

    # A rule that does not name the requester: 403.
    put_policy(world, break_glass={"requesters": [DAVE], "max_duration": "PT30M"})
    status, answer = break_glass(world)
    assert (status, answer["error"]["code"]) == (403, "break_glass_not_allowed")
    assert "break_glass.requesters" in answer["error"]["message"]

    # Longer than its maximum: 422; at a later time: 400.
    put_policy(world, break_glass=BREAK_GLASS)
    status, answer = break_glass(world, duration="PT45M")
    assert (status, answer["error"]["code"]) == (422, "duration_too_long")
    assert "PT30M" in answer["error"]["message"]
    status, answer = break_glass(world, start_at="PT3H")
    assert (status, answer["error"]["code"]) == (400, "invalid_input")
    status, answer = break_glass(world, duration="PT30M", break_glass="yes")
    assert status == 400, answer

    status, listed = world.api("GET", "/requests", ALICE, query={"mine": "true"})
    assert listed["items"] == []
    assert alice_may_assume(world) != ALLOWED
    assert not [e for e in world.deps.store.audit_events().items if e.action == "break_glass"]


def test_break_glass_while_holding_the_role_is_refused_and_a_normal_grant_has_nothing_to_review(world: World) -> None:
    put_policy(world, break_glass=BREAK_GLASS)
    request_id = request_access(world)["id"]
    approve(world, request_id)
    world.wait_status(request_id, "active")
    status, answer = break_glass(world)
    assert (status, answer["error"]["code"]) == (409, "already_covered")
    status, answer = review(world, BOB, request_id, "ok")
    assert (status, answer["error"]["code"]) == (409, "not_break_glass")
    status, answer = world.api("GET", "/requests", BOB, query={"review": "pending", "mine": "true"})
    assert status == 400, answer


def test_an_unreviewed_break_glass_grant_is_reminded_daily_until_reviewed(world: World) -> None:
    put_policy(world, break_glass=BREAK_GLASS)
    status, answer = break_glass(world)
    assert status == 201, answer
    request_id = answer["id"]

    def reminders(to: str) -> int:
        return len([s for s in received_by(world, to) if s.event == "break_glass.review_due"])

    assert world.invoke("ReconcileFunction", {})["reviews_reminded"] == []  # not a day old yet
    world.advance(timedelta(days=1, minutes=1))
    assert world.invoke("ReconcileFunction", {})["reviews_reminded"] == [request_id]
    assert (reminders(BOB), reminders(DAVE)) == (1, 1)
    world.advance(timedelta(minutes=5))
    assert world.invoke("ReconcileFunction", {})["reviews_reminded"] == []  # once a day, however many runs
    world.advance(timedelta(days=1))
    assert world.invoke("ReconcileFunction", {})["reviews_reminded"] == [request_id]
    assert (reminders(BOB), reminders(DAVE)) == (2, 2)

    status, answer = review(world, DAVE, request_id, "ok", "the incident was real")
    assert status == 200, answer
    world.advance(timedelta(days=1))
    assert world.invoke("ReconcileFunction", {})["reviews_reminded"] == []
    assert reminders(BOB) == 2


def test_taking_the_rule_away_ends_a_live_break_glass_grant(world: World) -> None:
    put_policy(world, break_glass=BREAK_GLASS)
    status, answer = break_glass(world)
    assert status == 201, answer
    assert answer["status"] == "active"
    assert alice_may_assume(world) == ALLOWED
    put_policy(world)  # the admin removes break_glass while alice holds it
    world.invoke("ReconcileFunction", {})
    assert alice_may_assume(world) != ALLOWED
    assert world.status(answer["id"]) == "revoked"
    assert pending_reviews(world, BOB) == [answer["id"]]  # ended early, still reviewed


def test_the_deployer_ceiling_bounds_break_glass_rules() -> None:
    with running_world() as world:  # AllowBreakGlass is false by default
        status, answer = world.api("PUT", POLICY, CAROL, {**JUST_IN_TIME, "break_glass": BREAK_GLASS})
        assert (status, answer["error"]["code"]) == (422, "exceeds_ceiling")
        assert "AllowBreakGlass" in answer["error"]["message"]
    with running_world({"AllowBreakGlass": "true", "MaxBreakGlassDuration": "PT1H"}) as world:
        too_long = {"requesters": [ALICE], "max_duration": "PT2H"}
        status, answer = world.api("PUT", POLICY, CAROL, {**JUST_IN_TIME, "break_glass": too_long})
        assert (status, answer["error"]["code"]) == (422, "exceeds_ceiling")
        assert "MaxBreakGlassDuration" in answer["error"]["message"]
        nobody = {"requesters": [], "max_duration": "PT30M"}
        status, answer = world.api("PUT", POLICY, CAROL, {**JUST_IN_TIME, "break_glass": nobody})
        assert status == 422, answer
        # Someone other than the requesters must be able to review each use.
        own_reviewers = {"requesters": [BOB, DAVE], "max_duration": "PT30M"}
        status, answer = world.api("PUT", POLICY, CAROL, {**JUST_IN_TIME, "break_glass": own_reviewers})
        assert (status, answer["error"]["code"]) == (422, "invalid_policy")
        assert "not its requester" in answer["error"]["message"]
        outside = {"requesters": ["arn:aws:iam::*:user/alice"], "max_duration": "PT30M"}
        status, answer = world.api("PUT", POLICY, CAROL, {**JUST_IN_TIME, "break_glass": outside})
        assert (status, answer["error"]["code"]) == (422, "exceeds_ceiling")


class _Killed(BaseException):
    """The API function dies (no clean-up runs)."""


def test_a_break_glass_whose_api_call_died_is_granted_and_announced_by_the_reconciler(
    world: World, published: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    put_policy(world, break_glass=BREAK_GLASS)

    def killed(*_: Any) -> None:
        raise _Killed

    with monkeypatch.context() as patch:
        patch.setattr("trustgate.app.requests.announce_break_glass", killed)
        with pytest.raises(_Killed):
            break_glass(world)
    (request,) = world.deps.store.requests_by_person("iam:222222222222:alice").items
    # Recorded with its break_glass audit record in one write, so the audit trail has it even now.
    recorded = sorted(e.action for e in world.deps.store.audit_events().items if e.request_id == request.id)
    assert recorded == ["break_glass", "request.created"]
    assert messages_for(world, request.id, "break_glass") == []

    world.advance(timedelta(minutes=3))
    report = world.invoke("ReconcileFunction", {})
    assert report["flows"] == [{"request_id": request.id, "done": "flow started"}]
    world.wait_status(request.id, "active")
    assert alice_may_assume(world) == ALLOWED
    # The Grant step announced it before it let her in (the API never did).
    assert sorted(s.recipient for s in messages_for(world, request.id, "break_glass")) == sorted([BOB, DAVE])
    assert "trustgate.break_glass" in published
    granted = world.deps.store.get_request(request.id)
    assert granted.announced_at is not None
    assert granted.starts_at is not None
    assert granted.announced_at <= granted.starts_at
