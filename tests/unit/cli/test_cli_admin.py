"""Approver and admin commands: approvals, approve, deny, roles, role, audit, sync."""

from __future__ import annotations

import json

import pytest
from cli_fakes import ROLE_ARN, Cli, FakeApi, a_request

pytestmark = pytest.mark.unit

ENCODED_ROLE = "arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2FPumpCustomerAccess"
TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "TrustGateGrant20261126T1100",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::444455556666:user/alice"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def an_event(number: int) -> dict[str, object]:
    return {
        "id": f"ev-{number}",
        "at": f"2026-11-26T10:{number:02d}:00Z",
        "actor": "arn:aws:iam::111122223333:user/admin",
        "action": "request.approved",
        "role_arn": ROLE_ARN,
        "request_id": f"req-{number}",
    }


def test_approvals_with_pending_requests_shows_approval_progress(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/approvals", {"items": [a_request(required_approvals=2, justification="x" * 80)]})

    result = cli("approvals")

    assert result.code == 0
    header, row = result.out.splitlines()
    assert header.split() == ["ID", "ROLE", "PERSON", "DURATION", "APPROVALS", "DEADLINE", "JUSTIFICATION"]
    # A server that does not name the person yet: the short ARN stands in.
    assert row[header.index("PERSON") :].startswith(
        "444455556666:assumed-role/AWSReservedSSO_Dev_0123/alice@example.com"
    )
    assert row[header.index("APPROVALS") :].startswith("0/2")
    assert row.endswith("x" * 47 + "...")


@pytest.mark.parametrize("decision", ["approve", "deny"])
def test_decision_with_comment_posts_it(cli: Cli, api: FakeApi, decision: str) -> None:
    api.reply("POST", f"/requests/req-1/{decision}", a_request(status="active" if decision == "approve" else "denied"))

    result = cli(decision, "req-1", "--comment", "ok for the rotation")

    assert result.code == 0, result.err
    [sent] = api.received
    assert sent.json == {"comment": "ok for the rotation"}
    # An approver gets the request, not the requester's instructions for using it.
    assert "switchrole" not in result.out


def test_roles_with_items_shows_capacity(cli: Cli, api: FakeApi) -> None:
    api.reply(
        "GET",
        "/roles",
        {
            "items": [
                {
                    "role_arn": ROLE_ARN,
                    "mode": "organization",
                    "active_grants": 3,
                    "trust_policy_chars": 1234,
                    "trust_policy_quota": 2048,
                }
            ]
        },
    )

    result = cli("roles", "--managed")

    header, row = result.out.splitlines()
    assert header.split() == ["ROLE", "ACCOUNT", "MODE", "ACTIVE", "TRUST", "POLICY"]
    assert row.split(maxsplit=4) == [
        "PumpCustomerAccess",
        "111122223333",
        "organization",
        "3",
        "1234 / 2048 characters (60%)",
    ]


def test_role_with_arn_prints_mode_policy_capacity_and_grants(cli: Cli, api: FakeApi) -> None:
    api.reply(
        "GET",
        f"/roles/{ENCODED_ROLE}",
        {
            "role_arn": ROLE_ARN,
            "mode": "none",
            "policy": {},
            "trust_policy": TRUST_POLICY,
            "trust_policy_chars": 1234,
            "trust_policy_quota": 2048,
            "active_grants": [a_request(status="active", expires_at="2026-11-26T11:00:00Z")],
        },
    )

    result = cli("role", ROLE_ARN)

    assert result.code == 0, result.err
    assert "mode:     none\n" in result.out
    assert "capacity: 1234 / 2048 characters (60%)\n" in result.out
    assert "trust policy:\n" + json.dumps(TRUST_POLICY, indent=2) + "\n" in result.out
    grants = result.out.split("active grants:\n")[1].splitlines()
    assert grants[1].startswith("req-1 ")
    assert grants[1].endswith("2026-11-26 11:00 UTC")


def test_audit_with_pagination_follows_next_until_the_end(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/audit", {"items": [an_event(1), an_event(2)], "next": "page-2"})
    api.reply("GET", "/audit", {"items": [an_event(3)], "next": "page-3"})
    api.reply("GET", "/audit", {"items": [an_event(4)]})

    result = cli("--output", "json", "audit", "--role", "PumpCustomerAccess")

    assert result.code == 0
    assert [r.query.get("next") for r in api.received] == [None, "page-2", "page-3"]
    assert all(r.query["role"] == "PumpCustomerAccess" for r in api.received)
    assert json.loads(result.out) == {"items": [an_event(n) for n in (1, 2, 3, 4)]}


def test_audit_with_limit_stops_early_and_says_so(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/audit", {"items": [an_event(1), an_event(2)], "next": "page-2"})
    api.reply("GET", "/audit", {"items": [an_event(3), an_event(4)], "next": "page-3"})

    result = cli("audit", "--limit", "3", "--actor", "arn:aws:iam::111122223333:user/admin")

    assert result.code == 0
    assert len(api.received) == 2
    # Not sent: the API caps its page size (a --limit above the cap would be refused).
    assert "limit" not in api.received[0].query
    header, *rows = result.out.splitlines()
    assert header.split() == ["AT", "ACTOR", "ACTION", "ROLE", "REQUEST"]
    assert [row.split()[-1] for row in rows] == ["req-1", "req-2", "req-3"]
    assert "showing the first 3 events" in result.err


def test_audit_with_repeating_cursor_stops_with_7(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/audit", {"items": [an_event(1)], "next": "same"})

    result = cli("audit")

    assert result.code == 7
    assert "same 'next' cursor twice" in result.err


CSV_HEADER = "id,at,actor,action,role_arn,request_id,before,after,detail\r\n"


def csv_page(*numbers: int) -> bytes:
    rows = "".join(
        f"ev-{n},2026-11-26T10:{n:02d}:00Z,admin,request.approved,{ROLE_ARN},req-{n},,,\r\n" for n in numbers
    )
    return (CSV_HEADER + rows).encode()


def reply_csv(api: FakeApi, body: bytes, following: str | None = None) -> None:
    link = {"Link": f'<audit?format=csv&limit=200&next={following}>; rel="next"'} if following else {}
    api.reply("GET", "/audit", body, headers={"Content-Type": "text/csv; charset=utf-8", **link})


def test_audit_output_csv_asks_for_csv_and_joins_every_page_under_one_header(cli: Cli, api: FakeApi) -> None:
    reply_csv(api, csv_page(1, 2), following="page-2")
    reply_csv(api, csv_page(), following="page-3")  # an empty page in between: still one header
    reply_csv(api, csv_page(3))

    result = cli("--output", "csv", "audit", "--role", "PumpCustomerAccess")

    assert result.code == 0, result.err
    assert result.out == CSV_HEADER + "".join(csv_page(1, 2, 3).decode().split("\r\n", 1)[1:])
    first, second, third = api.received
    assert first.headers["accept"] == "text/csv"
    assert first.query == {"role": "PumpCustomerAccess", "format": "csv", "limit": "200"}
    assert (second.query["next"], third.query["next"]) == ("page-2", "page-3")
    assert second.query["format"] == "csv"


def test_audit_output_csv_with_limit_stops_at_that_many_rows_and_says_so(cli: Cli, api: FakeApi) -> None:
    reply_csv(api, csv_page(1, 2), following="page-2")
    reply_csv(api, csv_page(3, 4), following="page-3")

    result = cli("audit", "--output", "csv", "--limit", "3")

    assert result.code == 0, result.err
    assert [line.split(",")[0] for line in result.out.splitlines()] == ["id", "ev-1", "ev-2", "ev-3"]
    assert len(api.received) == 2
    assert "showing the first 3 events" in result.err


def test_audit_output_csv_refuses_an_answer_that_is_not_csv(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/audit", {"items": []})

    result = cli("audit", "--output", "csv")

    assert result.code == 7
    assert "not text/csv" in result.err


def test_output_csv_on_another_command_is_a_usage_error_and_sends_nothing(cli: Cli, api: FakeApi) -> None:
    result = cli("--output", "csv", "role", "PumpCustomerAccess")

    assert result.code == 2
    assert "--output csv is for 'trustgate audit' only" in result.err
    assert api.received == []


@pytest.mark.parametrize(("typed", "sent"), [("24h", "P1D"), ("1 hour", "PT1H"), ("7d", "P7D"), ("90", "PT1H30M")])
def test_audit_with_an_age_sends_it_for_trustgates_clock_to_count_back(
    cli: Cli, api: FakeApi, typed: str, sent: str
) -> None:
    """An age is counted back from TrustGate's clock, not this machine's (the local stack's clock moves)."""
    api.reply("GET", "/audit", {"items": []})

    cli("audit", "--since", typed, "--until", "2026-11-26T10:00:00Z")

    assert api.received[0].query == {"since": sent, "until": "2026-11-26T10:00:00Z"}


def test_audit_with_unreadable_since_is_a_usage_error(cli: Cli, api: FakeApi) -> None:
    result = cli("audit", "--since", "yesterday")

    assert result.code == 2
    assert api.received == []


@pytest.mark.parametrize(
    ("changed", "expected"),
    [(True, "trust policy rewritten to match the grants:"), (False, "trust policy already matches the grants")],
)
def test_sync_with_role_name_posts_and_reports_change(cli: Cli, api: FakeApi, changed: bool, expected: str) -> None:
    api.reply(
        "POST",
        "/roles/PumpCustomerAccess/sync",
        {"changed": changed, "trust_policy": TRUST_POLICY, "trust_policy_chars": 512, "trust_policy_quota": 2048},
    )

    result = cli("sync", "PumpCustomerAccess")

    assert result.code == 0
    assert api.received[0].body == b""
    assert result.out.startswith(expected)
    assert result.out.endswith("capacity: 512 / 2048 characters (25%)\n")
