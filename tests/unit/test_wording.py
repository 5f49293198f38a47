"""One vocabulary for how a request ended (`trustgate.core.wording`): an approver reads the same outcome in the refusal
the API gives them, in the "no action needed" message and on the approval page. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trustgate.core import approval_page, messages, rules, wording
from trustgate.core.errors import AlreadyDecidedError
from trustgate.core.identity import CallerPolicy, caller_for_arn
from trustgate.core.models import AccessRequest, Approval, RequestStatus

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
ALICE = "arn:aws:iam::222222222222:user/alice"
BOB = "arn:aws:iam::222222222222:user/bob"
DAVE = "arn:aws:iam::222222222222:user/dave"


def a_request(status: RequestStatus, **changes: object) -> AccessRequest:
    return AccessRequest(
        id="01JREQUEST",
        role_arn="arn:aws:iam::123456789012:role/PumpCustomerAccess",
        principal_arn=ALICE,
        status=status,
        duration=timedelta(hours=1),
        justification="rotate the CloudTrail bucket key",
        created_at=NOW - timedelta(minutes=10),
        approval_deadline=NOW + timedelta(hours=1),
        approvers=[BOB, DAVE],
    ).model_copy(update=changes)


APPROVED = [Approval(approver_arn=BOB, decision="approve", at=NOW - timedelta(minutes=5))]
DENIED = [Approval(approver_arn=BOB, decision="deny", at=NOW - timedelta(minutes=5))]
CLOSED = [
    (a_request(RequestStatus.PENDING, decided_at=NOW, approvals=APPROVED), "approved"),
    (a_request(RequestStatus.ACTIVE, decided_at=NOW, approvals=APPROVED), "approved"),
    (a_request(RequestStatus.EXPIRED, decided_at=NOW, approvals=APPROVED), "approved"),
    (a_request(RequestStatus.REVOKED, decided_at=NOW, approvals=APPROVED), "approved"),
    (a_request(RequestStatus.DENIED, decided_at=NOW, approvals=DENIED), "denied"),
    (a_request(RequestStatus.CANCELLED, decided_at=NOW), "cancelled"),
    (a_request(RequestStatus.TIMED_OUT), "timed out"),
    (a_request(RequestStatus.FAILED, decided_at=NOW, approvals=APPROVED), "failed"),
]


@pytest.mark.parametrize(("request_", "outcome"), CLOSED, ids=[f"{r.status}" for r, _ in CLOSED])
def test_the_refusal_and_the_no_action_message_name_the_same_outcome(request_: AccessRequest, outcome: str) -> None:
    """They used to differ for a revoked grant: the API said "was already revoked", the message "approved"."""
    dave = caller_for_arn(DAVE, CallerPolicy("aws", frozenset(), frozenset()))

    with pytest.raises(AlreadyDecidedError) as refused:
        rules.check_decidable(request_, dave, NOW)
    told = messages.already_decided(request_, DAVE)

    assert wording.outcome_of(request_) == outcome
    phrase = wording.ended_phrase(outcome, already=True)
    assert refused.value.message == f"request 01JREQUEST {phrase}; nothing more is needed from you"
    assert f"Request 01JREQUEST for PumpCustomerAccess {phrase}" in told.text
    assert told.subject.endswith(f"request for PumpCustomerAccess {wording.ended_phrase(outcome)}")


def test_a_waiting_request_is_pending() -> None:
    assert wording.outcome_of(a_request(RequestStatus.PENDING)) == "pending"


@pytest.mark.parametrize(
    ("outcome", "phrase", "already"),
    [
        ("approved", "was approved", "was already approved"),
        ("denied", "was denied", "was already denied"),
        ("cancelled", "was cancelled", "was already cancelled"),
        ("timed out", "timed out", "already timed out"),
        ("failed", "failed", "already failed"),
    ],
)
def test_what_happened_to_a_request_is_no_one_s_deed(outcome: str, phrase: str, already: str) -> None:
    assert wording.ended_phrase(outcome) == phrase
    assert wording.ended_phrase(outcome, already=True) == already


@pytest.mark.parametrize(
    ("request_", "label"),
    [
        (a_request(RequestStatus.PENDING), "Waiting for approval"),
        (a_request(RequestStatus.PENDING, decided_at=NOW), "Approved"),
        (a_request(RequestStatus.ACTIVE), "Access granted"),
        (a_request(RequestStatus.EXPIRED), "Expired"),
        (a_request(RequestStatus.REVOKED), "Revoked"),
        (a_request(RequestStatus.DENIED), "Denied"),
        (a_request(RequestStatus.CANCELLED), "Cancelled"),
        (a_request(RequestStatus.TIMED_OUT), "Timed out"),
        (a_request(RequestStatus.FAILED), "Failed"),
    ],
)
def test_every_status_has_a_label_and_the_approval_page_shows_it(request_: AccessRequest, label: str) -> None:
    assert wording.status_label(request_) == label

    page = approval_page.problem_page(409, "already_decided", "the reason", request_, NOW)

    assert f">{label}</span>" in page.html


def test_each_decision_reads_the_same_on_the_page_and_in_the_message() -> None:
    denied = a_request(RequestStatus.DENIED, decided_at=NOW, approvals=DENIED)
    page = approval_page.problem_page(409, "already_decided", "the reason", denied, NOW)

    assert "<li>denied by bob (IAM user, 222222222222)" in page.html
    assert "denied by bob (222222222222)" in messages.already_decided(denied, DAVE).text
    assert wording.DECISION_WORDS == {"approve": "approved", "deny": "denied"}
