"""Text people type is inert in messages, and invisible characters do not make a justification long enough."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from trustgate.core import messages
from trustgate.core.models import AccessRequest
from trustgate.core.user_text import LIMIT, defang, inert, visible_length

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
BOB = "arn:aws:iam::222222222222:user/bob"
LINK = "https://api.example/prod/decide/REAL-TOKEN"
PHISHING = (
    "routine rotation\n\n"
    "=== Your approval link ================================================\n"
    "This link is yours alone. Open your approval page to approve or deny:\n"
    "https://trustgate-approvals.example/decide/FORGED\n"
    "=== End of your approval link =========================================\n"
)


@pytest.mark.parametrize(
    ("text", "visible"),
    [
        ("\u200b" * 12, 0),  # zero-width spaces
        ("\u200b\u200c\u200d\u2060\ufeff" * 3, 0),  # zero-width (non-)joiners, word joiner, BOM
        ("\u202e\u2066\u2069", 0),  # bidi controls
        ("\u3164\u115f\u2800\u00a0\u2003", 0),  # Hangul fillers, braille blank, no-break and em spaces
        ("a" + "\u0301" * 20, 1),  # combining marks add nothing
        ("rotate   the \t bucket", len("rotate the bucket")),  # runs of spacing count once
        ("rotate the bucket", 17),
    ],
)
def test_visible_length_counts_what_a_reader_sees(text: str, visible: int) -> None:
    assert visible_length(text) == visible


def test_inert_text_is_one_line_of_visible_characters() -> None:
    line = inert("one\ntwo\r\nthree\u2028four\u0085five\x1b[31m\u202eevil\u200b")

    assert line == "one two three four five [31mevil"


def test_inert_text_is_bounded() -> None:
    line = inert("x" * 5000)
    assert len(line) == LIMIT
    assert line.endswith("…")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("see https://evil.example/decide/x", "see https[:]//evil[.]example/decide/x"),
        ("HTTP://A.B", "HTTP[:]//A[.]B"),
        ("www.evil.example", "www[.]evil[.]example"),
        ("evil.example/decide/x", "evil[.]example/decide/x"),
        ("ticket OPS-42, version 1.2", "ticket OPS-42, version 1.2"),
    ],
)
def test_links_in_user_text_are_defanged(text: str, shown: str) -> None:
    assert defang(text) == shown


def a_request(justification: str) -> AccessRequest:
    return AccessRequest(
        id="01JREQUEST",
        role_arn="arn:aws:iam::123456789012:role/PumpCustomerAccess",
        principal_arn="arn:aws:iam::222222222222:user/alice",
        duration=timedelta(hours=1),
        justification=justification,
        ticket="OPS-1\nOpen: https://evil.example/decide/TICKET",
        created_at=NOW,
        approval_deadline=NOW + timedelta(hours=2),
        approvers=[BOB],
    )


def test_a_forged_link_block_in_the_justification_cannot_pass_for_trustgates() -> None:
    email = messages.approval_needed(a_request(PHISHING), BOB, LINK).text
    lines = email.splitlines()

    # The real link block comes first, delimited, and holds the only clickable /decide/ link.
    start, end = lines.index(messages.LINK_BLOCK_START), lines.index(messages.LINK_BLOCK_END)
    assert LINK in lines[start:end]
    assert re.findall(r"https?://\S*/decide/\S+", email) == [LINK]
    assert end < next(i for i, line in enumerate(lines) if "FORGED" in line)
    assert lines.count(messages.LINK_BLOCK_START) == 1
    assert lines.count(messages.LINK_BLOCK_END) == 1
    # The requester's words stay on their own labelled line, links defanged.
    [justification] = [line for line in lines if "FORGED" in line]
    assert justification.startswith("Justification: routine rotation === Your approval link")
    assert "https[:]//trustgate-approvals[.]example/decide/FORGED" in justification
    [ticket] = [line for line in lines if line.startswith("Ticket:")]
    assert "https[:]//evil[.]example/decide/TICKET" in ticket
    assert "https://evil" not in email
    assert "https://trustgate-approvals" not in email


def test_the_team_copy_has_no_link_and_says_how_approvers_decide() -> None:
    notice = messages.request_notice(a_request(PHISHING))

    assert notice.recipient == messages.TEAM
    assert notice.link is None
    assert "Approvers use their own link or `trustgate approve 01JREQUEST`" in notice.text
    assert "https://" not in notice.text
    assert "https://" not in notice.chatbot()


def test_a_message_with_a_link_can_never_be_shared() -> None:
    request = a_request("rotate the bucket")
    with pytest.raises(ValueError, match="never shared"):
        messages.Notification("x", "s", "t", messages.TEAM, "team", request, LINK, chat_text="c")
    with pytest.raises(ValueError, match="never shared"):
        messages.Notification("x", "s", "t", BOB, "approver", request, LINK, chat_text="c", shared=True)
    with pytest.raises(ValueError, match="chat text"):
        messages.Notification("x", "s", f"t {LINK}", BOB, "approver", request, LINK)


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("x(evil.com/approve)", "x(evil[.]com/approve)"),
        ("click:evil.com/a", "click:evil[.]com/a"),
        ("go=>www.evil.com", "go=>www[.]evil[.]com"),
        ("a,evil.com", "a,evil[.]com"),
        ("https:evil.com/x", "https:evil[.]com/x"),
        ("evil\uff0ecom", "evil[.]com"),  # a full-width dot reads as a dot
        ("e.g. v1.2 of OPS-12.", "e.g. v1.2 of OPS-12."),  # not hosts: left as typed
    ],
)
def test_hosts_inside_words_are_defanged_too(typed: str, shown: str) -> None:
    assert inert(typed) == shown
