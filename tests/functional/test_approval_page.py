"""The approval page on moto: links from the real notifications, the DecideFunction handler, the real flow."""

from __future__ import annotations

import html
import json
import secrets
import threading
from datetime import timedelta
from typing import Any

import pytest

from tests.support.aws import ALICE, BOB, DAVE, ERIN, EVENTS, ROLE_ARN, World
from tests.support.flows import granted, request_access
from tests.support.links import approval_links as links_of
from tests.support.links import call_page, form_for, messages_for
from trustgate.app import approval_links, decisions, link_decisions
from trustgate.app.link_decisions import LinkRefused
from trustgate.core import messages
from trustgate.core.approval_page import CONTENT_SECURITY_POLICY
from trustgate.core.clock import to_rfc3339
from trustgate.core.errors import ForbiddenError
from trustgate.core.identity import principal_for_arn
from trustgate.core.ids import new_id
from trustgate.core.models import AccessRequest, AuditEvent, RolePolicy

pytestmark = pytest.mark.functional

XSS_JUSTIFICATION = '<script>alert(1)</script> and "><img src=x onerror=alert(1)> need the bucket'
XSS_TICKET = "\"><b onmouseover='x'>OPS-1</b>"


# -- helpers -------------------------------------------------------------------------------------


def require_approvals(world: World, count: int) -> None:
    """Write the role policy through the store (the admin API's own checks are tested elsewhere)."""
    _, version = world.deps.store.get_role_policy(ROLE_ARN)
    now = world.deps.clock.now()
    audit = AuditEvent(id=new_id(now), at=now, actor="test", action="policy.changed", role_arn=ROLE_ARN)
    world.deps.store.put_role_policy(ROLE_ARN, RolePolicy(required_approvals=count), version, audit)


def pending_with_links(world: World, caller: str = ALICE, **extra: Any) -> tuple[str, dict[str, str]]:
    request_id = request_access(world, caller, **extra)["id"]
    return request_id, links_of(world, request_id)


def stored(world: World, request_id: str) -> AccessRequest:
    return world.deps.store.get_request(request_id)


def assert_untouched(world: World, request_id: str, before: AccessRequest) -> None:
    after = stored(world, request_id)
    assert after.version == before.version
    assert after.status.value == "pending"
    assert after.approvals == before.approvals
    assert after.decided_at is None


def token_used(world: World, token: str) -> bool:
    item = world.deps.store.get_token(approval_links.token_hash(token))
    assert item is not None
    return "used_at" in item


def task_successes(world: World, request_id: str) -> int:
    """How often the WaitForApproval task was completed (it must be exactly once)."""
    sfn = world.session.client("stepfunctions")
    history = sfn.get_execution_history(executionArn=world.execution(request_id)["executionArn"])["events"]
    return sum(
        1
        for event in history
        if event["type"] == "TaskSucceeded"
        and event["taskSucceededEventDetails"]["resource"] == "invoke.waitForTaskToken"
    )


def approve_on_page(world: World, token: str, comment: str = "") -> Any:
    page = call_page(world, "GET", token)
    assert page.status == 200, page.body
    return call_page(world, "POST", token, form=form_for(page.body, "approve", comment))


# -- showing -------------------------------------------------------------------------------------


def test_get_shows_the_request_from_the_approvers_own_link(world: World) -> None:
    request_id, links = pending_with_links(world, ticket="OPS-42")
    assert set(links) == {BOB, DAVE}
    assert links[BOB] != links[DAVE]

    page = call_page(world, "GET", links[BOB])

    assert page.status == 200
    for shown in (ALICE, ROLE_ARN, "1 hour", "rotate the CloudTrail bucket policy", "OPS-42", "0 of 1", request_id):
        assert shown in page.body
    # The requester as a person, with the ARN they asked from.
    assert "<strong>alice (IAM user, 222222222222)</strong> asks for access to" in page.body
    assert f"alice (IAM user, 222222222222) <span class='muted'>via</span> <code>{ALICE}</code>" in page.body
    assert "Extension" not in page.body  # alice holds nothing yet
    assert "Times out" in page.body
    assert '<form method="post"' in page.body
    assert page.body.count("<form") == 1
    assert '<button class="approve" type="submit" name="decision" value="approve">' in page.body
    assert '<button class="deny" type="submit" name="decision" value="deny">' in page.body
    assert 'name="csrf"' in page.body
    assert '<textarea id="comment" name="comment"' in page.body
    assert "<script" not in page.body
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "same-origin"


def test_scanner_fetching_every_link_many_times_decides_nothing(world: World) -> None:
    request_id, links = pending_with_links(world)
    world.wait_for_task_token(request_id)
    before = stored(world, request_id)

    for token in links.values():
        for _ in range(20):
            assert call_page(world, "GET", token).status == 200

    assert_untouched(world, request_id, before)
    assert not any(token_used(world, token) for token in links.values())
    assert task_successes(world, request_id) == 0
    assert world.execution(request_id)["status"] == "RUNNING"


def test_justification_and_ticket_html_render_as_text(world: World) -> None:
    _, links = pending_with_links(world, justification=XSS_JUSTIFICATION, ticket=XSS_TICKET)

    page = call_page(world, "GET", links[BOB])

    assert page.status == 200
    assert "<script" not in page.body
    assert "<img" not in page.body
    assert "<b " not in page.body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.body
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page.body
    assert "&quot;&gt;&lt;b onmouseover=&#x27;x&#x27;&gt;OPS-1&lt;/b&gt;" in page.body


# -- deciding ------------------------------------------------------------------------------------


def test_post_with_csrf_approves_and_the_principal_enters_the_trust_policy(world: World) -> None:
    request_id, links = pending_with_links(world)

    result = approve_on_page(world, links[BOB], comment="ticket checked")

    assert result.status == 200, result.body
    assert "Approved" in result.body
    world.wait_status(request_id, "active")
    assert ALICE in str(world.trust_policy())
    decided = stored(world, request_id)
    assert [(a.approver_arn, a.decision, a.comment) for a in decided.approvals] == [(BOB, "approve", "ticket checked")]
    assert token_used(world, links[BOB])
    assert not token_used(world, links[DAVE])


def test_approving_on_the_page_shows_the_way_in_of_the_granted_email(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(link_decisions, "GRANT_WAIT_SECONDS", 20.0)  # let the page see the grant made
    request_id, links = pending_with_links(world)

    result = approve_on_page(world, links[BOB])

    assert result.status == 200, result.body
    assert "<h1>Access granted" in result.body
    granted_request = stored(world, request_id)
    assert granted_request.status.value == "active"
    # The grant step sends the email after it marks the grant active: wait for the flow to finish first.
    world.wait_execution(request_id)
    [email] = messages_for(world, request_id, "request.active")
    lines = messages.way_in_lines(granted_request)
    assert any("--role-session-name alice" in line for line in lines)
    for line in lines:
        assert line in email.email
        assert f'<li><code class="text">{html.escape(line)}</code></li>' in result.body


def test_an_extension_page_says_what_approving_it_changes_and_then_shows_the_way_in(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(link_decisions, "GRANT_WAIT_SECONDS", 20.0)
    first = granted(world)
    extension_id, links = pending_with_links(world, duration="PT30M")
    extension = stored(world, extension_id)
    assert extension.covered_until is not None
    assert to_rfc3339(extension.covered_until) == first["expires_at"]

    page = call_page(world, "GET", links[DAVE])

    change = messages.extension_change(extension)
    assert change is not None
    assert f"<dt>Extension</dt><dd>alice (IAM user, 222222222222) {change}</dd>" in page.body
    assert "asks for <strong>30 minutes</strong> more access to <strong>PumpCustomerAccess</strong>" in page.body
    [email] = messages_for(world, extension_id, "approval.requested")[:1]
    assert f"alice (IAM user, 222222222222) {change}" in email.email  # the approvers' email says the same

    result = call_page(world, "POST", links[DAVE], form=form_for(page.body, "approve"))

    assert result.status == 200, result.body
    assert "<h1>Access granted" in result.body
    assert "approving moves the end" not in result.body
    for line in messages.way_in_lines(stored(world, extension_id)):
        assert html.escape(line) in result.body


def test_replaying_a_used_link_is_refused_and_changes_nothing(world: World) -> None:
    request_id, links = pending_with_links(world)
    page = call_page(world, "GET", links[BOB])
    form = form_for(page.body, "approve")
    assert call_page(world, "POST", links[BOB], form=form).status == 200
    world.wait_status(request_id, "active")
    before = stored(world, request_id)

    replay = call_page(world, "POST", links[BOB], form=form)
    opened_again = call_page(world, "GET", links[BOB])
    as_deny = call_page(world, "POST", links[BOB], form={**form, "decision": "deny"})

    assert replay.status == 409
    assert "already used" in replay.body
    assert opened_again.status == 409
    assert "already used" in opened_again.body
    assert as_deny.status == 409
    after = stored(world, request_id)
    assert after.version == before.version
    assert after.status.value == "active"
    assert len(after.approvals) == 1


@pytest.mark.parametrize(
    "forged",
    [
        "Gx3vQ9m_Tz0bKc7LpW2yRf5sNa8dHj4uEo1iVq6tXw",  # a well-formed guess (fixed: pytest-xdist needs stable ids)
        "short",
        "x" * 500,
        "..%2F..%2Fetc%2Fpasswd-----------",
    ],
)
def test_guessed_or_forged_tokens_get_403_and_change_nothing(world: World, forged: str) -> None:
    request_id, links = pending_with_links(world)
    before = stored(world, request_id)
    tampered = links[BOB][:-1] + ("A" if links[BOB][-1] != "A" else "B")

    for token in (forged, tampered):
        shown = call_page(world, "GET", token)
        posted = call_page(world, "POST", token, form={"decision": "approve", "csrf": "x"})
        as_json = call_page(world, "POST", token, json_body={"decision": "approve"})
        assert shown.status == 403
        assert "not valid" in shown.body
        assert posted.status == 403
        assert as_json.status == 403
        assert as_json.json()["error"]["code"] == "invalid_link"

    assert_untouched(world, request_id, before)


def test_a_link_cannot_decide_another_request(world: World) -> None:
    first, first_links = pending_with_links(world, ALICE)
    second, second_links = pending_with_links(world, ERIN)
    before_first, before_second = stored(world, first), stored(world, second)
    second_page = call_page(world, "GET", second_links[BOB])

    # The form of the second request's page, posted to the first request's link.
    crossed = call_page(world, "POST", first_links[BOB], form=form_for(second_page.body, "approve"))
    # The first request's link with the right CSRF value, but claiming the second request.
    first_page = call_page(world, "GET", first_links[BOB])
    claimed = call_page(
        world, "POST", first_links[BOB], form={**form_for(first_page.body, "approve"), "request_id": second}
    )

    assert crossed.status == 403
    assert claimed.status == 403
    assert "another request" in claimed.body
    assert_untouched(world, first, before_first)
    assert_untouched(world, second, before_second)
    assert not token_used(world, first_links[BOB])


def test_an_expired_link_is_refused(world: World) -> None:
    request_id, links = pending_with_links(world)
    page = call_page(world, "GET", links[BOB])
    before = stored(world, request_id)

    world.advance(timedelta(hours=2, minutes=1))  # past the default approval window
    shown = call_page(world, "GET", links[BOB])
    posted = call_page(world, "POST", links[BOB], form=form_for(page.body, "approve"))

    assert shown.status == 403
    assert "expired" in shown.body
    assert posted.status == 403
    assert "expired" in posted.body
    assert_untouched(world, request_id, before)
    assert not token_used(world, links[BOB])


def test_a_second_approvers_link_after_the_decision_shows_already_decided(world: World) -> None:
    request_id, links = pending_with_links(world)
    dave_page = call_page(world, "GET", links[DAVE])  # dave opened it before bob decided
    assert approve_on_page(world, links[BOB]).status == 200
    world.wait_status(request_id, "active")

    shown = call_page(world, "GET", links[DAVE])
    posted = call_page(world, "POST", links[DAVE], form=form_for(dave_page.body, "deny"))

    assert shown.status == 409
    assert "already decided" in shown.body
    assert "approved" in shown.body
    assert posted.status == 409
    assert "already decided" in posted.body
    after = stored(world, request_id)
    assert after.status.value == "active"
    assert [a.approver_arn for a in after.approvals] == [BOB]


def test_deny_through_the_page_ends_the_request_at_once(world: World) -> None:
    require_approvals(world, 2)
    request_id, links = pending_with_links(world)
    page = call_page(world, "GET", links[BOB])

    result = call_page(world, "POST", links[BOB], form=form_for(page.body, "deny", "use the read-only role"))

    assert result.status == 200
    assert "Denied" in result.body
    assert world.status(request_id) == "denied"  # one deny is enough, even with 2 approvals required
    assert world.wait_execution(request_id)["status"] == "SUCCEEDED"
    assert task_successes(world, request_id) == 1
    assert ALICE not in str(world.trust_policy())
    assert call_page(world, "GET", links[DAVE]).status == 409


def test_n_of_m_needs_both_links_and_resumes_the_flow_exactly_once(world: World) -> None:
    require_approvals(world, 2)
    request_id, links = pending_with_links(world)
    world.wait_for_task_token(request_id)

    first = approve_on_page(world, links[BOB])
    assert first.status == 200
    assert "Approved — 1 of 2 approvals" in first.body
    half = stored(world, request_id)
    assert half.status.value == "pending"
    assert half.decided_at is None
    assert task_successes(world, request_id) == 0
    assert ALICE not in str(world.trust_policy())
    dave_sees = call_page(world, "GET", links[DAVE]).body
    assert "1 of 2" in dave_sees  # dave sees bob's approval, as a person with the ARN bob used
    assert f"approved by bob (IAM user, 222222222222) <span class='muted'>via</span> <code>{BOB}</code>" in dave_sees

    second = approve_on_page(world, links[DAVE])

    assert second.status == 200
    world.wait_status(request_id, "active")
    assert ALICE in str(world.trust_policy())
    assert world.wait_execution(request_id)["status"] == "SUCCEEDED"
    assert task_successes(world, request_id) == 1
    assert {a.approver_arn for a in stored(world, request_id).approvals} == {BOB, DAVE}


def test_concurrent_approvals_by_both_approvers_end_in_exactly_one_grant(world: World) -> None:
    require_approvals(world, 2)
    request_id, links = pending_with_links(world)
    world.wait_for_task_token(request_id)
    views = {who: link_decisions.open_link(world.deps, token) for who, token in links.items()}
    resumed: list[str] = []
    original_resume = world.deps.flow.resume

    def counting_resume(task_token: str, decision: Any) -> None:
        resumed.append(decision)
        original_resume(task_token, decision)

    world.deps.flow.resume = counting_resume  # type: ignore[method-assign]
    start = threading.Barrier(len(links))
    outcomes: dict[str, object] = {}

    def decide(who: str) -> None:
        start.wait()
        try:
            outcomes[who] = link_decisions.decide_by_link(
                world.deps, links[who], "approve", None, csrf=views[who].csrf, require_csrf=True
            ).request.decided_at
        except LinkRefused as refused:
            outcomes[who] = refused.error

    threads = [threading.Thread(target=decide, args=(who,)) for who in links]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    world.wait_status(request_id, "active")
    assert world.wait_execution(request_id)["status"] == "SUCCEEDED"
    assert resumed == ["approve"]
    assert task_successes(world, request_id) == 1
    final = stored(world, request_id)
    assert sorted(a.approver_arn for a in final.approvals) == sorted([BOB, DAVE])
    grants = [s for s in world.trust_policy()["Statement"] if ALICE in str(s)]
    assert len(grants) == 1


# -- refusals that must leave everything as it was -------------------------------------------------


@pytest.mark.parametrize("csrf", [None, "", "forged-value", "A" * 43])
def test_a_form_post_without_the_pages_csrf_value_is_refused(world: World, csrf: str | None) -> None:
    request_id, links = pending_with_links(world)
    page = call_page(world, "GET", links[BOB])
    form = form_for(page.body, "approve")
    form.pop("csrf")
    if csrf is not None:
        form["csrf"] = csrf
    before = stored(world, request_id)

    refused = call_page(world, "POST", links[BOB], form=form)

    assert refused.status == 403
    assert "did not come from your approval page" in refused.body
    assert_untouched(world, request_id, before)
    assert not token_used(world, links[BOB])  # nothing changed, so the link still works
    assert call_page(world, "POST", links[BOB], form=form_for(page.body, "approve")).status == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:3000.evil.example"},
        {"Origin": None, "Referer": "https://evil.example/page"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
def test_a_post_from_another_site_is_refused_even_with_the_csrf_value(
    world: World, headers: dict[str, str | None]
) -> None:
    request_id, links = pending_with_links(world)
    page = call_page(world, "GET", links[BOB])
    before = stored(world, request_id)
    event_headers = {k: v for k, v in headers.items() if v is not None}

    refused = _post_with_headers(world, links[BOB], form_for(page.body, "approve"), event_headers, drop=headers)

    assert refused.status == 403
    assert "another site" in refused.body
    assert_untouched(world, request_id, before)
    assert not token_used(world, links[BOB])


def _post_with_headers(
    world: World, token: str, form: dict[str, str], headers: dict[str, str], drop: dict[str, str | None]
) -> Any:
    from tests.support.links import PageResponse, page_event

    event = page_event("POST", token, form=form, headers=headers)
    for name, value in drop.items():
        if value is None:
            event["headers"].pop(name, None)
            event["multiValueHeaders"].pop(name, None)
    response = world.invoke("DecideFunction", event)
    return PageResponse(response["statusCode"], response["body"], {})


def test_a_same_site_referer_without_origin_is_accepted(world: World) -> None:
    request_id, links = pending_with_links(world)
    page = call_page(world, "GET", links[BOB])
    headers = {"Referer": f"http://127.0.0.1:3000/decide/{links[BOB]}"}

    result = _post_with_headers(world, links[BOB], form_for(page.body, "approve"), headers, drop={"Origin": None})

    assert result.status == 200
    world.wait_status(request_id, "active")


def test_json_clients_decide_without_csrf_and_get_json(world: World) -> None:
    request_id, links = pending_with_links(world)

    result = call_page(world, "POST", links[BOB], json_body={"decision": "deny", "comment": "use the read-only role"})

    assert result.status == 200, result.body
    body = result.json()
    assert body["id"] == request_id
    assert body["status"] == "denied"
    assert body["approvals"][0]["comment"] == "use the read-only role"
    again = call_page(world, "POST", links[BOB], json_body={"decision": "deny"})
    assert again.status == 409
    assert again.json()["error"]["code"] == "link_used"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", '{"decision": "approve"}'),  # what a cross-site form with enctype=text/plain sends
        ("multipart/form-data; boundary=x", "--x--"),
    ],
)
def test_other_body_types_are_refused(world: World, content_type: str, body: str) -> None:
    request_id, links = pending_with_links(world)
    before = stored(world, request_id)

    refused = call_page(world, "POST", links[BOB], raw_body=body, headers={"Content-Type": content_type})

    assert refused.status == 415
    assert_untouched(world, request_id, before)


def test_a_post_without_a_decision_is_refused_and_keeps_the_link(world: World) -> None:
    request_id, links = pending_with_links(world)
    page = call_page(world, "GET", links[BOB])
    before = stored(world, request_id)

    refused = call_page(world, "POST", links[BOB], form=form_for(page.body, "maybe"))

    assert refused.status == 400
    assert "Approve or Deny" in refused.body
    assert_untouched(world, request_id, before)
    assert not token_used(world, links[BOB])


def test_a_link_minted_for_the_requester_cannot_approve_their_own_request(world: World) -> None:
    request_id, links = pending_with_links(world)
    assert ALICE not in links  # without self-approval the requester gets no link at all
    request = stored(world, request_id)
    assert request.approval_deadline is not None
    own = approval_links.mint(world.deps.store, request_id, ALICE, request.approval_deadline)

    shown = call_page(world, "GET", own)
    csrf = approval_links.csrf_for(approval_links.look_up(world.deps.store, own, world.deps.clock.now()))
    posted = call_page(world, "POST", own, form={"decision": "approve", "csrf": csrf, "request_id": request_id})

    assert shown.status == 403
    assert "your own request" in shown.body
    assert posted.status == 403
    assert_untouched(world, request_id, request)
    assert not token_used(world, own)
    # The service refuses it too, whatever the page layer does.
    with pytest.raises(ForbiddenError):
        decisions.decide(world.deps, principal_for_arn(ALICE), request_id, "approve", None)
    assert_untouched(world, request_id, request)


def test_a_link_for_someone_no_longer_an_approver_is_refused(world: World) -> None:
    request_id, _ = pending_with_links(world)
    request = stored(world, request_id)
    assert request.approval_deadline is not None
    stray = approval_links.mint(world.deps.store, request_id, ERIN, request.approval_deadline)

    shown = call_page(world, "GET", stray)

    assert shown.status == 403
    assert "not an approver" in shown.body
    assert_untouched(world, request_id, request)


def test_no_token_reaches_the_logs(world: World, caplog: pytest.LogCaptureFixture) -> None:
    _, links = pending_with_links(world)
    caplog.clear()
    with caplog.at_level("INFO"):
        approve_on_page(world, links[BOB])
        call_page(world, "GET", links[BOB])
        call_page(world, "GET", "forged-" + secrets.token_urlsafe(30))

    logged = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    for token in links.values():
        assert token not in logged
    assert approval_links.token_hash(links[BOB])[:12] in logged  # the hash prefix is what ties log lines together


def test_the_approval_request_email_is_what_the_link_came_from(world: World) -> None:
    request_id, links = pending_with_links(world)
    emails = messages_for(world, request_id, "approval.requested")
    assert {e.recipient for e in emails} == {BOB, DAVE}
    for email in emails:
        assert email.token == links[email.recipient]


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("get_decide", "text/html"), ("post_decide", "text/html"), ("post_decide_json", "application/json")],
)
def test_the_sample_events_get_a_clear_invalid_link_answer(world: World, name: str, content_type: str) -> None:
    """events/decide/*.json (what `sam local invoke` uses) carry a token nobody minted."""
    event = json.loads((EVENTS / "decide" / f"{name}.json").read_text())

    response = world.invoke("DecideFunction", event)

    headers = {k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()} | (response.get("headers") or {})
    assert response["statusCode"] == 403
    assert headers["Content-Type"].startswith(content_type)
    assert "invalid_link" in response["body"] or "not valid" in response["body"]


def test_an_approver_who_already_approved_elsewhere_is_told_so_by_their_link(world: World) -> None:
    require_approvals(world, 2)
    request_id, links = pending_with_links(world)
    world.wait_for_task_token(request_id)
    status, _ = world.api("POST", f"/requests/{request_id}/approve", BOB, {"comment": "from the CLI"})
    assert status == 200
    before = stored(world, request_id)

    shown = call_page(world, "GET", links[BOB])

    assert shown.status == 409
    assert "You already decided this request" in shown.body
    assert stored(world, request_id).version == before.version
    assert not token_used(world, links[BOB])
