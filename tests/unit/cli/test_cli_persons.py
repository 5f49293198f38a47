"""Persons in the CLI: revoke a person, the way into a grant, extensions and approvers as persons.

The answers are built with the server's own models (`RequestView`, `RevocationResult`), so these tests also
hold the CLI to the server's wording: the way in is the "granted" email's, an extension's change is
`messages.extension_change`'s.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cli_fakes import ROLE_ARN, Cli, FakeApi
from hypothesis import given
from hypothesis import strategies as st

from trustgate.api.roles import RevocationResult
from trustgate.core import messages
from trustgate.core.models import AccessRequest, Approval, RequestStatus, RequestView, way_in
from trustgate_cli.render import extension_change

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
ALICE = "arn:aws:iam::444455556666:user/alice"
JANE = "arn:aws:sts::444455556666:assumed-role/AWSReservedSSO_Dev_0123456789abcdef/jane@example.com"
BOB = "arn:aws:iam::444455556666:user/bob"
REVOKE_PATH = "/roles/PumpCustomerAccess/revoke"


def a_grant(**changes: Any) -> AccessRequest:
    """A request as the server stores it; active for an hour from NOW unless `changes` say otherwise."""
    base = AccessRequest(
        id="01GRANT",
        role_arn=ROLE_ARN,
        principal_arn=ALICE,
        status=RequestStatus.ACTIVE,
        duration=timedelta(hours=1),
        justification="rotate the CloudTrail bucket key",
        created_at=NOW - timedelta(minutes=5),
        decided_at=NOW - timedelta(minutes=1),
        starts_at=NOW,
        expires_at=NOW + timedelta(hours=1),
        approvals=[Approval(approver_arn=BOB, decision="approve", at=NOW - timedelta(minutes=1), comment="ok")],
    )
    return base.model_copy(update=changes)


def an_extension(**changes: Any) -> AccessRequest:
    """A pending request alice made while covered until the grant's end."""
    grant = a_grant()
    return a_grant(
        id="01EXT",
        status=RequestStatus.PENDING,
        duration=timedelta(minutes=30),
        decided_at=None,
        starts_at=None,
        expires_at=None,
        approval_deadline=NOW + timedelta(hours=2),
        approvals=[],
        extends=grant.id,
        covered_until=grant.expires_at,
    ).model_copy(update=changes)


def as_api(request: AccessRequest) -> dict[str, Any]:
    """The `Request` document the API answers for `request`."""
    return RequestView.of(request).model_dump(mode="json")


# -- trustgate revoke --role --principal ----------------------------------------------------------


def revocation(ended: list[AccessRequest], cancelled: list[AccessRequest], was_until: datetime | None) -> Any:
    return RevocationResult(
        role_arn=ROLE_ARN,
        person="iam:444455556666:alice",
        ended=[RequestView.of(r) for r in ended],
        cancelled=[RequestView.of(r) for r in cancelled],
        was_until=was_until,
    ).model_dump(mode="json")


def test_revoke_by_person_posts_to_the_role_and_prints_exactly_what_changed(cli: Cli, api: FakeApi) -> None:
    ended_at = NOW + timedelta(minutes=20)
    ended = a_grant(status=RequestStatus.REVOKED, expires_at=ended_at, reason="left the on-call rotation")
    cancelled = an_extension(status=RequestStatus.CANCELLED, reason="cancelled by a revoke: left the on-call rotation")
    api.reply("POST", REVOKE_PATH, revocation([ended], [cancelled], NOW + timedelta(hours=1)))

    result = cli(
        "revoke", "--role", "PumpCustomerAccess", "--principal", ALICE, "--reason", "left the on-call rotation"
    )

    assert result.code == 0, result.err
    [sent] = api.received
    assert (sent.method, sent.path) == ("POST", REVOKE_PATH)
    assert sent.json == {"principal": ALICE, "reason": "left the on-call rotation"}
    assert result.out == (
        "revoked:          alice (IAM user, 444455556666) on PumpCustomerAccess\n"
        "person key:       iam:444455556666:alice\n"
        "grants ended:     01GRANT\n"
        "had access until: 2026-11-26 11:00 UTC\n"
        "access ended at:  2026-11-26 10:20 UTC\n"
        "cancelled:        01EXT (pending extension of 01GRANT, 30 min)\n"
        "reason:           left the on-call rotation\n"
    )


def test_revoke_by_person_key_with_only_a_pending_request_says_no_grant_ended(cli: Cli, api: FakeApi) -> None:
    pending = an_extension(status=RequestStatus.CANCELLED, extends=None, covered_until=None)
    api.reply("POST", REVOKE_PATH, revocation([], [pending], None))

    result = cli("revoke", "--role", "PumpCustomerAccess", "--principal", "iam:444455556666:alice")

    assert result.code == 0, result.err
    assert api.received[0].json == {"principal": "iam:444455556666:alice"}
    assert re.search(r"^grants ended: +none$", result.out, re.M)
    assert "had access until" not in result.out
    assert re.search(r"^cancelled: +01EXT \(pending request, 30 min\)$", result.out, re.M)


def test_revoke_by_person_with_role_arn_encodes_it_in_the_path(cli: Cli, api: FakeApi) -> None:
    path = "/roles/arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2FPumpCustomerAccess/revoke"
    document = revocation([a_grant(status=RequestStatus.REVOKED)], [], NOW + timedelta(hours=1))
    api.reply("POST", path, document)

    result = cli("--output", "json", "revoke", "--role", ROLE_ARN, "--principal", JANE)

    assert result.code == 0, result.err
    assert api.received[0].target == path
    assert json.loads(result.out) == document


def test_revoke_by_person_who_holds_nothing_exits_4_with_the_servers_message(cli: Cli, api: FakeApi) -> None:
    message = f"{ALICE} holds nothing on PumpCustomerAccess: no active grant, no pending request"
    api.reply("POST", REVOKE_PATH, {"error": {"code": "not_found", "message": message}}, status=404)

    result = cli("revoke", "--role", "PumpCustomerAccess", "--principal", ALICE)

    assert result.code == 4
    assert (
        result.err
        == f"trustgate: not_found: {message}; try: trustgate list --role PumpCustomerAccess --status active\n"
    )
    assert result.out == ""


def test_revoke_by_person_as_a_non_admin_exits_3(cli: Cli, api: FakeApi) -> None:
    message = f"{BOB} is not a TrustGate admin for {ROLE_ARN}"
    api.reply("POST", REVOKE_PATH, {"error": {"code": "forbidden", "message": message}}, status=403)

    result = cli("revoke", "--role", "PumpCustomerAccess", "--principal", ALICE)

    assert result.code == 3
    assert result.err == (
        f"trustgate: forbidden: {message}; try: ask an admin of the role; trustgate roles shows what you may request\n"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ("revoke",),
        ("revoke", "--role", "PumpCustomerAccess"),
        ("revoke", "--principal", ALICE),
        ("revoke", "01GRANT", "--role", "PumpCustomerAccess", "--principal", ALICE),
        ("revoke", "01GRANT", "--principal", ALICE),
    ],
    ids=["nothing", "role-only", "principal-only", "id-and-person", "id-and-principal"],
)
def test_revoke_needs_an_id_or_a_role_and_a_principal(cli: Cli, api: FakeApi, argv: tuple[str, ...]) -> None:
    result = cli(*argv)

    assert result.code == 2
    assert result.err.startswith("trustgate: bad_option: ")
    assert api.received == []


def test_revoke_by_id_still_ends_that_grant(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests/01GRANT/revoke", as_api(a_grant(status=RequestStatus.REVOKED)))

    result = cli("revoke", "01GRANT", "--reason", "done early")

    assert result.code == 0, result.err
    assert api.received[0].json == {"reason": "done early"}
    assert "status:        revoked" in result.out
    assert "Session name:" not in result.out


# -- the way in ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "grant",
    [a_grant(), a_grant(require_mfa=True), a_grant(principal_arn=JANE)],
    ids=["iam-user", "mfa", "identity-center"],
)
def test_status_of_an_active_grant_prints_the_way_in_of_the_granted_email(
    cli: Cli, api: FakeApi, grant: AccessRequest
) -> None:
    api.reply("GET", "/requests/01GRANT", as_api(grant))

    result = cli("status", "01GRANT")

    assert result.code == 0, result.err
    way_in_text = "\n".join(messages.way_in_lines(grant))
    assert result.out.endswith("\n\n" + way_in_text + "\n")
    assert way_in_text in messages.outcome_for_requester(grant).text  # the email says exactly this too
    access = way_in(grant)
    assert f"--role-session-name {access.session_name}" in result.out
    assert ("--serial-number" in result.out) == grant.require_mfa


def test_status_of_an_active_grant_with_a_profile_says_to_assume_from_it(cli: Cli, api: FakeApi, aws_env: Path) -> None:
    (aws_env / "aws-credentials").write_text("[dev]\naws_access_key_id = AKIADEV\naws_secret_access_key = s\n")
    api.reply("GET", "/requests/01GRANT", as_api(a_grant()))

    result = cli("--profile", "dev", "status", "01GRANT")

    assert "\n".join(messages.way_in_lines(a_grant())) + "\n" in result.out
    assert result.out.endswith("Add --profile dev to the CLI command to assume from this same profile.\n")


def test_request_answered_active_prints_the_way_in(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests", as_api(a_grant(auto_approved=True)), status=201)

    result = cli("request", "PumpCustomerAccess", "--duration", "1h", "--reason", "rotate the key")

    assert result.code == 0, result.err
    assert "\n".join(messages.way_in_lines(a_grant())) in result.out


def test_status_of_a_pending_request_prints_no_way_in(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/requests/01EXT", as_api(an_extension()))

    result = cli("status", "01EXT")

    assert "Session name:" not in result.out
    assert "switchrole" not in result.out


def test_switch_url_is_the_link_the_server_gives_for_the_grant(cli: Cli, api: FakeApi) -> None:
    grant = as_api(a_grant())
    api.reply("GET", "/requestable-roles", {"items": [{"role_arn": ROLE_ARN, "switch_url": grant["switch_url"]}]})
    api.reply("GET", "/roles", {"error": {"code": "forbidden", "message": "not an admin"}}, 403)

    result = cli("switch-url", ROLE_ARN)

    assert result.out == grant["switch_url"] + "\n"
    assert grant["switch_url"] == grant["access"]["console_url"] == way_in(a_grant()).console_url


# -- persons and extensions -------------------------------------------------------------------------


def test_status_shows_the_person_and_each_approval_as_a_person_with_the_arn_used(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/requests/01GRANT", as_api(a_grant(principal_arn=JANE)))

    result = cli("status", "01GRANT")

    assert "person:        jane@example.com (Identity Center)\n" in result.out
    assert f"principal:     {JANE}\n" in result.out
    assert (
        f"approvals:     1/1: approve by bob (IAM user, 444455556666) via {BOB} at 2026-11-26 09:59 UTC (ok)\n"
        in result.out
    )


def test_status_of_a_pending_extension_says_what_approving_changes(cli: Cli, api: FakeApi) -> None:
    extension = an_extension()
    api.reply("GET", "/requests/01EXT", as_api(extension))

    result = cli("status", "01EXT")

    change = messages.extension_change(extension)
    assert change == "has access until 2026-11-26 11:00 UTC; approving moves the end to 2026-11-26 11:30 UTC"
    assert f"extension:     alice (IAM user, 444455556666) {change}\n" in result.out
    assert "extends:       01GRANT\n" in result.out


def test_approvals_show_the_person_and_what_approving_an_extension_changes(cli: Cli, api: FakeApi) -> None:
    fresh = a_grant(id="01FRESH", status=RequestStatus.PENDING, principal_arn=JANE, approvals=[], expires_at=None)
    extension = an_extension()
    api.reply("GET", "/approvals", {"items": [as_api(fresh), as_api(extension)]})

    result = cli("approvals")

    assert result.code == 0, result.err
    lines = result.out.splitlines()
    header = lines[0]
    assert header.split()[:3] == ["ID", "ROLE", "PERSON"]
    assert lines[1][header.index("PERSON") :].startswith("jane@example.com (Identity Center)")
    assert lines[2][header.index("PERSON") :].startswith("alice (IAM user, 444455556666)")
    assert lines[3:] == [
        "",
        "extensions (the person already has access):",
        f"  01EXT  alice (IAM user, 444455556666) {messages.extension_change(extension)}",
    ]
    assert "01FRESH" not in "\n".join(lines[3:])


def test_approvals_as_json_print_the_api_document_only(cli: Cli, api: FakeApi) -> None:
    document = {"items": [as_api(an_extension())]}
    api.reply("GET", "/approvals", document)

    result = cli("--output", "json", "approvals")

    assert json.loads(result.out) == document


@given(
    # Stored times and durations are whole seconds (RFC 3339 and ISO 8601 as the API writes them).
    covered_until=st.integers(min_value=0, max_value=4 * 365 * 86400),
    duration=st.integers(min_value=1, max_value=3 * 86400),
)
def test_the_cli_words_an_extension_exactly_as_the_server_does(covered_until: int, duration: int) -> None:
    extension = an_extension(covered_until=NOW + timedelta(seconds=covered_until), duration=timedelta(seconds=duration))

    assert extension_change(as_api(extension)) == messages.extension_change(extension)
