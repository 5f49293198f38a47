"""The approval page's HTML, its CSRF values and the notification texts: pure, no AWS."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustgate.app.approval_links import LinkGrant, csrf_for, csrf_matches
from trustgate.core import approval_page, messages, rules
from trustgate.core.errors import AlreadyDecidedError
from trustgate.core.identity import CallerPolicy, caller_for_arn
from trustgate.core.models import AccessRequest, Approval, RequestStatus

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
ALICE = "arn:aws:iam::222222222222:user/alice"
BOB = "arn:aws:iam::222222222222:user/bob"
ROLE = "arn:aws:iam::123456789012:role/PumpCustomerAccess"


def a_request(**changes: object) -> AccessRequest:
    base = AccessRequest(
        id="01JREQUEST",
        role_arn=ROLE,
        principal_arn=ALICE,
        duration=timedelta(minutes=90),
        justification="rotate the CloudTrail bucket policy",
        ticket="OPS-42",
        created_at=NOW,
        approval_deadline=NOW + timedelta(hours=2),
        required_approvals=2,
        approvers=[BOB],
    )
    return base.model_copy(update=changes)


class Tags(HTMLParser):
    """Every element and attribute name the markup really contains (what a browser would build)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.update(name for name, _ in attrs)


def parsed(markup: str) -> Tags:
    tags = Tags()
    tags.feed(markup)
    return tags


SAFE_TAGS = {"html", "head", "meta", "title", "style", "body", "main", "div", "header", "span", "h1", "p", "strong"}
SAFE_TAGS |= {"dl", "dt", "dd", "code", "ul", "li", "form", "input", "label", "textarea", "button", "footer"}


@given(text=st.text(min_size=1, max_size=200), ticket=st.text(max_size=60), comment=st.text(max_size=60))
def test_no_request_text_can_add_markup_to_any_page(text: str, ticket: str, comment: str) -> None:
    request = a_request(
        justification=text,
        ticket=ticket or None,
        approvals=[Approval(approver_arn=BOB, decision="approve", at=NOW, comment=comment or None)],
    )
    extension = request.model_copy(update={"covered_until": NOW + timedelta(minutes=30)})
    granted = request.model_copy(
        update={"status": RequestStatus.ACTIVE, "expires_at": NOW + timedelta(hours=1), "require_mfa": True}
    )
    pages = [
        approval_page.decision_page(request, BOB, "csrf-value", NOW),
        approval_page.decision_page(extension, BOB, "csrf-value", NOW),
        approval_page.result_page(request, "approve", NOW),
        approval_page.result_page(granted, "approve", NOW),  # the way in, with the MFA placeholders
        approval_page.problem_page(409, "already_decided", text, request, NOW),
    ]
    for page in pages:
        tags = parsed(page.html)
        assert set(tags.tags) <= SAFE_TAGS
        assert not {name for name in tags.attributes if name.startswith("on")}
        assert tags.tags.count("script") == 0


def test_the_style_block_is_the_only_one_and_the_csp_allows_exactly_it() -> None:
    page = approval_page.decision_page(a_request(), BOB, "x", NOW)
    styles = re.findall(r"<style>(.*?)</style>", page.html, re.S)
    digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()

    assert len(styles) == 1
    assert f"style-src 'sha256-{digest}'" in page.headers["Content-Security-Policy"]
    for directive in ("default-src 'none'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"):
        assert directive in page.headers["Content-Security-Policy"]
    assert "style=" not in page.html  # inline style attributes would be blocked by the CSP


def test_the_decision_page_has_one_post_form_with_both_buttons_and_no_script() -> None:
    page = approval_page.decision_page(a_request(), BOB, "the-csrf", NOW)
    tags = parsed(page.html)

    assert page.status == 200
    assert tags.tags.count("form") == 1
    assert tags.tags.count("button") == 2
    assert 'name="csrf" value="the-csrf"' in page.html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page.html
    assert "1 hour 30 minutes" in page.html
    assert "0 of 2 needed" in page.html
    assert "in 2 h 0 min" in page.html
    assert "script" not in tags.tags


@pytest.mark.parametrize(
    ("request_changes", "decision", "heading"),
    [
        ({"approvals": [Approval(approver_arn=BOB, decision="approve", at=NOW)]}, "approve", "Approved — 1 of 2"),
        ({"decided_at": NOW}, "approve", "Approved — 0 of 2"),
        ({"status": RequestStatus.ACTIVE, "expires_at": NOW + timedelta(hours=1)}, "approve", "Access granted"),
        ({"status": RequestStatus.DENIED}, "deny", "Denied"),
    ],
)
def test_the_result_page_says_what_the_decision_did(
    request_changes: dict[str, object], decision: str, heading: str
) -> None:
    page = approval_page.result_page(a_request(**request_changes), decision, NOW)

    assert page.status == 200
    assert f"<h1>{heading}" in page.html


def test_pages_show_the_requester_as_a_person_with_the_arn_they_used() -> None:
    sso = "arn:aws:sts::222222222222:assumed-role/AWSReservedSSO_Ops_0123456789abcdef/jane@example.com"
    for request, person in ((a_request(), "alice (IAM user, 222222222222)"), (a_request(principal_arn=sso), None)):
        person = person or "jane@example.com (Identity Center)"
        page = approval_page.decision_page(request, BOB, "x", NOW)

        assert f"<p><strong>{person}</strong> asks for access to <strong>PumpCustomerAccess</strong>" in page.html
        assert (
            f"<dt>Requester</dt><dd>{person} <span class='muted'>via</span> <code>{request.principal_arn}</code></dd>"
            in page.html
        )


def test_an_extension_says_what_approving_it_changes_as_the_email_does() -> None:
    extension = a_request(covered_until=NOW + timedelta(minutes=45), extends="01JEARLIER")

    page = approval_page.decision_page(extension, BOB, "x", NOW)

    change = messages.extension_change(extension)
    assert change == "has access until 2026-11-26 10:45 UTC; approving moves the end to 2026-11-26 12:15 UTC"
    assert f"<dt>Extension</dt><dd>alice (IAM user, 222222222222) {change}</dd>" in page.html
    # The approvers' email says the same, about the same person.
    assert (
        f"Extension:     alice (IAM user, 222222222222) {change}\n"
        in messages.approval_needed(extension, BOB, None).text
    )
    assert "asks for <strong>1 hour 30 minutes</strong> more access to <strong>PumpCustomerAccess</strong>" in page.html


def test_a_request_that_is_no_extension_has_no_extension_line() -> None:
    page = approval_page.decision_page(a_request(), BOB, "x", NOW)
    decided = approval_page.result_page(
        a_request(covered_until=NOW, status=RequestStatus.ACTIVE, expires_at=NOW + timedelta(hours=2)), "approve", NOW
    )

    assert "Extension" not in page.html
    assert "approving moves the end" not in decided.html  # once decided, the line would no longer be true


def test_the_decided_approvals_list_shows_persons_with_the_arn_used() -> None:
    sso = "arn:aws:sts::222222222222:assumed-role/AWSReservedSSO_Ops_0123456789abcdef/dave"
    request = a_request(
        approvals=[
            Approval(approver_arn=BOB, decision="approve", at=NOW, comment="fine"),
            Approval(approver_arn=sso, decision="approve", at=NOW),
        ]
    )

    page = approval_page.decision_page(request, BOB, "x", NOW)

    assert (
        f"<li>approved by bob (IAM user, 222222222222) <span class='muted'>via</span> <code>{BOB}</code> "
        'at 2026-11-26 10:00 UTC — <span class="text">fine</span></li>'
    ) in page.html
    assert f"<li>approved by dave (Identity Center) <span class='muted'>via</span> <code>{sso}</code> at" in page.html


@pytest.mark.parametrize("require_mfa", [False, True], ids=["no-mfa", "mfa"])
def test_the_result_page_of_an_active_grant_shows_the_way_in_of_the_granted_email(require_mfa: bool) -> None:
    request = a_request(status=RequestStatus.ACTIVE, expires_at=NOW + timedelta(hours=1), require_mfa=require_mfa)

    page = approval_page.result_page(request, "approve", NOW)

    lines = messages.way_in_lines(request)
    assert len(lines) == (4 if require_mfa else 3)
    for line in lines:
        assert line in messages.outcome_for_requester(request).text
        assert f'<li><code class="text">{html.escape(line)}</code></li>' in page.html
    assert "--role-session-name alice" in page.html
    assert ("&lt;your MFA device name&gt;" in page.html) == require_mfa
    assert "<your MFA" not in page.html


@pytest.mark.parametrize(
    "request_changes",
    [{"decided_at": NOW}, {"approvals": [Approval(approver_arn=BOB, decision="approve", at=NOW)]}],
    ids=["being-granted", "more-approvals-needed"],
)
def test_the_result_page_shows_no_way_in_before_the_grant_is_active(request_changes: dict[str, object]) -> None:
    page = approval_page.result_page(a_request(**request_changes), "approve", NOW)

    assert "Session name:" not in page.html
    assert "assume-role" not in page.html


@pytest.mark.parametrize(
    ("status", "code", "heading"),
    [
        (403, "invalid_link", "This approval link is not valid"),
        (403, "link_expired", "This approval link has expired"),
        (409, "link_used", "This approval link was already used"),
        (409, "already_decided", "This request was already decided"),
        (403, "own_request", "You cannot decide your own request"),
        (403, "csrf_failed", "This form did not come from your approval page"),
    ],
)
def test_problem_pages_are_clear_and_keep_their_status(status: int, code: str, heading: str) -> None:
    page = approval_page.problem_page(status, code, "the reason", None, NOW)

    assert page.status == status
    assert f"<h1>{heading}</h1>" in page.html
    assert "The reason." in page.html
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Frame-Options"] == "DENY"


def test_csrf_values_are_per_link_and_checked_in_constant_time() -> None:
    first = LinkGrant("a" * 64, "r", BOB, NOW, used=False, csrf_key="key-one")
    second = LinkGrant("a" * 64, "r", BOB, NOW, used=False, csrf_key="key-two")
    legacy = LinkGrant("a" * 64, "r", BOB, NOW, used=False, csrf_key=None)

    assert csrf_for(first) != csrf_for(second)
    assert csrf_matches(first, csrf_for(first))
    assert not csrf_matches(first, csrf_for(second))
    assert not csrf_matches(first, None)
    assert not csrf_matches(first, "")
    assert not csrf_matches(legacy, csrf_for(legacy))  # no key, no form posts


# -- notification texts --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delta", "spoken"),
    [
        (timedelta(hours=1), "1 hour"),
        (timedelta(minutes=90), "1 hour 30 minutes"),
        (timedelta(days=2), "2 days"),
        (timedelta(minutes=1), "1 minute"),
    ],
)
def test_durations_read_as_people_say_them(delta: timedelta, spoken: str) -> None:
    assert messages.human_duration(delta) == spoken


def test_an_approver_message_puts_the_personal_link_in_the_email_only() -> None:
    link = "https://api.example/prod/decide/SECRET-TOKEN-VALUE"
    message = messages.approval_needed(a_request(), BOB, link)

    assert link in message.text
    assert "SECRET-TOKEN-VALUE" not in message.chatbot()
    card = json.loads(message.chatbot())
    assert card["content"]["nextSteps"] == [
        "trustgate approve 01JREQUEST --comment '…'",
        "trustgate deny 01JREQUEST --comment '…'",
    ]
    assert "Approvals:     0 given, 2 needed" in message.text
    assert "Times out at:  2026-11-26 12:00 UTC" in message.text


def test_a_notify_target_without_a_link_is_told_how_to_decide() -> None:
    message = messages.approval_needed(a_request(), "ops-channel", None)

    assert "/decide/" not in message.text
    assert "Decide from a terminal:" in message.text


@pytest.mark.parametrize(
    ("changes", "phrase"),
    [
        ({"status": RequestStatus.ACTIVE, "expires_at": NOW + timedelta(hours=1)}, "already approved by bob"),
        (
            {"status": RequestStatus.DENIED, "approvals": [Approval(approver_arn=BOB, decision="deny", at=NOW)]},
            "denied by bob",
        ),
        ({"status": RequestStatus.CANCELLED}, "already cancelled"),
        ({"status": RequestStatus.TIMED_OUT}, "already timed out"),
    ],
)
def test_other_approvers_learn_how_the_request_was_closed(changes: dict[str, object], phrase: str) -> None:
    approvals = changes.get("approvals") or [Approval(approver_arn=BOB, decision="approve", at=NOW)]
    request = a_request(**{**changes, "approvals": approvals})

    message = messages.already_decided(request, "arn:aws:iam::222222222222:user/dave")

    assert phrase in message.text
    assert message.event == "approval.closed"
    if "by bob" not in phrase:
        assert "by bob" not in message.text  # bob's partial approval did not cancel or time it out


def test_a_session_principal_is_shown_by_its_session_name() -> None:
    arn = "arn:aws:sts::222222222222:assumed-role/AWSReservedSSO_Admin_abc/jane@example.com"
    assert messages.short_principal(arn) == "jane@example.com (AWSReservedSSO_Admin_abc, 222222222222)"


# -- wording (issue 12, section 7) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "subject_end", "body_phrase"),
    [
        (RequestStatus.TIMED_OUT, "request for PumpCustomerAccess timed out", "already timed out."),
        (RequestStatus.FAILED, "request for PumpCustomerAccess failed", "already failed."),
        (RequestStatus.CANCELLED, "request for PumpCustomerAccess was cancelled", "was already cancelled."),
        (RequestStatus.DENIED, "request for PumpCustomerAccess was denied", "was already denied"),
    ],
)
def test_a_closed_request_reads_timed_out_never_was_timed_out(
    status: RequestStatus, subject_end: str, body_phrase: str
) -> None:
    message = messages.already_decided(a_request(status=status), "arn:aws:iam::222222222222:user/dave")

    assert message.subject.endswith(subject_end)
    assert body_phrase in message.text
    assert "was timed out" not in message.text + message.subject
    assert "was already timed out" not in message.text
    assert "was failed" not in message.text + message.subject


def test_deciding_a_timed_out_request_is_refused_in_plain_words() -> None:
    caller = caller_for_arn(BOB, CallerPolicy("aws", frozenset(), frozenset()))

    with pytest.raises(AlreadyDecidedError) as refused:
        rules.check_decidable(a_request(status=RequestStatus.TIMED_OUT), caller, NOW)

    assert refused.value.message == "request 01JREQUEST already timed out; nothing more is needed from you"


@pytest.mark.parametrize(
    ("changes", "tone", "label"),
    [
        ({"status": RequestStatus.DENIED}, "bad", "Denied"),
        ({"status": RequestStatus.FAILED}, "bad", "Failed"),
        ({"status": RequestStatus.ACTIVE, "decided_at": NOW}, "ok", "Access granted"),
        ({"decided_at": NOW}, "ok", "Approved"),
        ({}, "warn", "Waiting for approval"),
        ({"status": RequestStatus.TIMED_OUT}, "", "Timed out"),
        ({"status": RequestStatus.CANCELLED}, "", "Cancelled"),
    ],
)
def test_the_badge_of_a_problem_page_is_coloured_as_the_request_status(
    changes: dict[str, object], tone: str, label: str
) -> None:
    page = approval_page.problem_page(409, "already_decided", "the reason", a_request(**changes), NOW)

    assert f'<span class="badge {tone}">{label}</span>' in page.html


# Each code with the message its error really carries (errors raised in link_decisions, rules and decide).
REFUSALS = [
    (409, "link_used", "this approval link was already used; nothing was changed"),
    (409, "already_decided", "request 01JREQUEST was already denied; nothing more is needed from you"),
    (403, "csrf_failed", "the form was not sent from the approval page this link opens; nothing was changed"),
    (403, "cross_site", "this form was sent from another site; nothing was changed"),
    (409, "request_nonconforming", "request 01JREQUEST no longer conforms … Nothing was changed; deny it"),
    (403, "link_expired", "this approval link has expired with the request's approval window"),
    (429, "decision_busy", "your approve of request 01JREQUEST was not recorded …; nothing was changed. In a few"),
]


@pytest.mark.parametrize(("status", "code", "message"), REFUSALS)
def test_a_problem_page_says_nothing_was_changed_at_most_once(status: int, code: str, message: str) -> None:
    denied = a_request(status=RequestStatus.DENIED, approvals=[Approval(approver_arn=BOB, decision="deny", at=NOW)])
    for request in (None, a_request(), denied):
        page = approval_page.problem_page(status, code, message, request, NOW)

        assert page.html.lower().count("nothing was changed") <= 1, (code, request)
        if code in ("link_used", "already_decided", "csrf_failed", "cross_site", "request_nonconforming"):
            assert page.html.lower().count("nothing was changed") == 1, code


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        (
            {"status": RequestStatus.DENIED, "approvals": [Approval(approver_arn=BOB, decision="deny", at=NOW)]},
            "bob (IAM user, 222222222222) denied it at 2026-11-26 10:00 UTC.",
        ),
        (
            {
                "status": RequestStatus.ACTIVE,
                "decided_at": NOW + timedelta(minutes=5),
                "approvals": [Approval(approver_arn=BOB, decision="approve", at=NOW + timedelta(minutes=5))],
            },
            "bob (IAM user, 222222222222) approved it at 2026-11-26 10:05 UTC.",
        ),
        (
            {"status": RequestStatus.ACTIVE, "decided_at": NOW, "auto_approved": True},
            "An auto-approve rule of the role approved it at 2026-11-26 10:00 UTC.",
        ),
        ({"status": RequestStatus.TIMED_OUT}, "Nobody decided it in time: it timed out at 2026-11-26 12:00 UTC."),
        ({"status": RequestStatus.CANCELLED, "decided_at": NOW}, "The requester cancelled it at 2026-11-26 10:00 UTC."),
        ({}, None),
    ],
)
def test_how_a_request_ended_names_who_decided_it_and_when(changes: dict[str, object], said: str | None) -> None:
    assert approval_page.decided_by(a_request(**changes)) == said
