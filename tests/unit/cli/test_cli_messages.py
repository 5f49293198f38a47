"""Issue 12, section 5: the requester's CLI says things people read at a glance, and every error says what next.

Each message the CLI writes for these is pinned here: `roles`, human times and durations, `approve` that reads as
a success, errors with their next command, JSON errors, and an example in every `--help`.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path
from typing import Any

import pytest
from cli_fakes import ROLE_ARN, Cli, FakeApi, a_request

from trustgate_cli.client import _unreachable
from trustgate_cli.commands import approver
from trustgate_cli.durations import in_words, parse_duration
from trustgate_cli.main import build_parser, main

pytestmark = pytest.mark.unit

# The API's clock, as its `Date` header says: 11:43 UTC (the local stack's clock may be far from this machine's).
DATE = {"Date": "Thu, 26 Nov 2026 11:43:00 GMT"}
SWITCH_URL = (
    "https://signin.aws.amazon.com/switchrole?roleName=PumpCustomerAccess&account=111122223333"
    "&displayName=PumpCustomerAccess"
)


def a_role(**fields: Any) -> dict[str, Any]:
    """A role as GET /requestable-roles lists it."""
    return {
        "role_arn": ROLE_ARN,
        "role_name": "PumpCustomerAccess",
        "account": "111122223333",
        "default_duration": "PT1H",
        "max_duration": "PT4H",
        "min_duration": "PT15M",
        "needs_approval": True,
        "required_approvals": 1,
        "auto_approve": [],
        "justification_min_length": 10,
        "ticket_pattern": None,
        "require_mfa": False,
        "switch_url": SWITCH_URL,
    } | fields


def rows(out: str) -> list[list[str]]:
    """A table's lines split at its two-space column gaps."""
    return [[cell.strip() for cell in line.split("  ") if cell.strip()] for line in out.splitlines()]


# -- trustgate roles ------------------------------------------------------------------------------------------


def test_roles_lists_what_the_caller_may_request_with_longest_duration_and_approval(cli: Cli, api: FakeApi) -> None:
    api.reply(
        "GET",
        "/requestable-roles",
        {
            "person": "alice (IAM user, 222222222222)",
            "items": [
                a_role(),
                a_role(
                    role_arn="arn:aws:iam::111122223333:role/VendorReadOnly",
                    role_name="VendorReadOnly",
                    max_duration="PT12H",
                    default_duration="PT30M",
                    required_approvals=2,
                    ticket_pattern="CHG-[0-9]+",
                    require_mfa=True,
                ),
            ],
        },
    )

    result = cli("roles")

    assert result.code == 0, result.err
    assert [r.path for r in api.received] == ["/requestable-roles"]
    assert rows(result.out) == [
        ["ROLE", "ACCOUNT", "LONGEST", "DEFAULT", "APPROVAL", "REQUIRES"],
        ["PumpCustomerAccess", "111122223333", "4 hours", "1 hour", "1 approver", "-"],
        [
            "VendorReadOnly",
            "111122223333",
            "12 hours",
            "30 min",
            "2 approvers",
            "--ticket matching CHG-[0-9]+, MFA to use it",
        ],
    ]
    assert result.err == (
        "you may request these as alice (IAM user, 222222222222); "
        'e.g. trustgate request PumpCustomerAccess --duration "1 hour" --reason TEXT\n'
    )


@pytest.mark.parametrize(
    ("role", "approval"),
    [
        (a_role(needs_approval=False, auto_approve=[{"max_duration": None}]), "no (approved automatically)"),
        (
            a_role(auto_approve=[{"max_duration": "PT1H", "weekdays": [0, 1, 2, 3, 4], "hours_utc": [9, 17]}]),
            "1 approver; none up to 1 hour on Mon, Tue, Wed, Thu, Fri 09:00-17:00 UTC",
        ),
        (a_role(auto_approve=[{"weekdays": [5, 6]}]), "1 approver; none on Sat, Sun"),
    ],
)
def test_roles_says_when_no_approval_is_needed(cli: Cli, api: FakeApi, role: dict[str, Any], approval: str) -> None:
    api.reply("GET", "/requestable-roles", {"person": "alice", "items": [role]})

    result = cli("roles")

    assert rows(result.out)[1][4] == approval


def test_roles_when_none_may_be_requested_says_whom_to_ask(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/requestable-roles", {"person": "erin (IAM user, 222222222222)", "items": []})

    result = cli("roles")

    assert result.code == 0
    assert result.out == (
        "you may not request any role TrustGate manages; ask an admin of the role to add you to its "
        "requester_accounts or requester_patterns\n"
    )


def test_roles_with_output_json_prints_the_api_document(cli: Cli, api: FakeApi) -> None:
    document = {"person": "alice", "items": [a_role()]}
    api.reply("GET", "/requestable-roles", document)

    result = cli("--output", "json", "roles")

    assert json.loads(result.out) == document
    assert result.err == ""


# -- role names ---------------------------------------------------------------------------------------------


def test_request_for_a_misspelt_role_passes_on_the_servers_guess_and_points_at_roles(cli: Cli, api: FakeApi) -> None:
    message = (
        "'PumpCustomerAcess' is not a role TrustGate manages; did you mean PumpCustomerAccess? "
        "(managed roles: PumpCustomerAccess)"
    )
    api.reply("POST", "/requests", {"error": {"code": "not_found", "message": message}}, 404)

    result = cli("request", "PumpCustomerAcess", "--reason", "rotate the key")

    assert result.code == 4
    assert result.err == f"trustgate: not_found: {message}; try: trustgate roles (the roles you may request)\n"


def test_request_sends_the_role_name_as_typed_for_the_server_to_match_in_any_case(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests", a_request(), status=201)

    cli("request", "pumpcustomeraccess", "--duration", "2 hours", "--reason", "rotate the key")

    assert api.received[0].json == {"role": "pumpcustomeraccess", "duration": "PT2H", "justification": "rotate the key"}


# -- human times and durations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "line"),
    [
        ({"status": "active", "expires_at": "2026-11-26T12:35:00Z"}, "active; expires in 52 min (12:35 UTC)"),
        ({"status": "active", "expires_at": "2026-11-26T14:05:30Z"}, "active; expires in 2 hours 22 min (14:05 UTC)"),
        (
            {"status": "active", "expires_at": "2026-11-27T00:10:00Z"},
            "active; expires in 12 hours 27 min (2026-11-27 00:10 UTC)",
        ),
        (
            {"status": "active", "expires_at": "2026-11-26T11:43:30Z"},
            "active; expires in less than a minute (11:43 UTC)",
        ),
        ({"status": "active", "expires_at": "2026-11-26T11:40:00Z"}, "active; ends now (11:40 UTC)"),
        ({"status": "expired", "expires_at": "2026-11-26T11:38:00Z"}, "expired 5 min ago (11:38 UTC)"),
        (
            {"status": "pending", "approval_deadline": "2026-11-26T13:41:00Z"},
            "pending; times out in 1 hour 58 min (13:41 UTC) unless approved",
        ),
        ({"status": "pending", "decided_at": "2026-11-26T11:42:00Z"}, "pending; approved, granting access"),
        ({"status": "denied"}, "denied"),
    ],
)
def test_status_says_what_the_status_means_on_trustgates_clock(
    cli: Cli, api: FakeApi, fields: dict[str, Any], line: str
) -> None:
    api.reply("GET", "/requests/req-1", a_request(**fields), headers=DATE)

    result = cli("status", "req-1")

    assert result.code == 0, result.err
    assert f"status:        {line}\n" in result.out


def test_status_prints_durations_in_words_and_times_for_people(cli: Cli, api: FakeApi) -> None:
    approvals = [
        {"approver_arn": "arn:aws:iam::111122223333:user/bob", "decision": "approve", "at": "2026-11-26T10:01:00Z"}
    ]
    active = a_request(
        status="active",
        duration="PT1H30M",
        starts_at="2026-11-26T10:01:00Z",
        expires_at="2026-11-26T11:31:00Z",
        approvals=approvals,
    )
    api.reply("GET", "/requests/req-1", active, headers=DATE)

    result = cli("status", "req-1")

    assert "duration:      1 hour 30 min\n" in result.out
    assert "created:       2026-11-26 10:00 UTC\n" in result.out
    assert "expires:       2026-11-26 11:31 UTC\n" in result.out
    assert "at 2026-11-26 10:01 UTC" in result.out
    assert "PT1H" not in result.out


def test_list_prints_durations_in_words(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/requests", {"items": [a_request(duration="PT1H"), a_request(id="req-2", duration="P1DT2H")]})

    result = cli("list", "--mine")

    assert [row[4] for row in rows(result.out)[1:]] == ["1 hour", "1 day 2 hours"]


@pytest.mark.parametrize(
    ("typed", "sent"),
    [("2 hours", "PT2H"), ("1 hour 30 minutes", "PT1H30M"), ("45 min", "PT45M"), ("1 day, 2 hours", "P1DT2H")],
)
def test_request_accepts_durations_in_words(cli: Cli, api: FakeApi, typed: str, sent: str) -> None:
    api.reply("POST", "/requests", a_request(), status=201)

    result = cli("request", "PumpCustomerAccess", "--duration", typed, "--reason", "rotate the key")

    assert result.code == 0, result.err
    assert api.received[0].json["duration"] == sent


@pytest.mark.parametrize(
    ("iso", "words"),
    [("PT1H", "1 hour"), ("PT2H", "2 hours"), ("PT30M", "30 min"), ("PT1H1M", "1 hour 1 min"), ("P1D", "1 day")],
)
def test_durations_read_as_words(iso: str, words: str) -> None:
    assert in_words(parse_duration(iso)) == words


def test_approvals_show_each_requests_deadline(cli: Cli, api: FakeApi) -> None:
    api.reply(
        "GET",
        "/approvals",
        {"items": [a_request(approval_deadline="2026-11-26T13:41:00Z"), a_request(id="req-2")]},
        headers=DATE,
    )

    result = cli("approvals")

    header, first, second = rows(result.out)
    assert header[5] == "DEADLINE"
    assert first[5] == "in 1 hour 58 min (13:41 UTC)"
    assert second[5] == "-"
    assert first[3] == "1 hour"
    assert result.err == "decide with: trustgate approve ID (or deny ID) --comment TEXT; undecided requests time out\n"


# -- approve reads as a success -------------------------------------------------------------------------------

BOB_APPROVES = [
    {"approver_arn": "arn:aws:iam::111122223333:user/bob", "decision": "approve", "at": "2026-11-26T11:42:00Z"}
]


@pytest.fixture
def fast_grants(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(approver, "POLL_INTERVAL_SECONDS", 0.01)


def test_approve_with_the_last_approval_says_granting_and_waits_for_active(
    cli: Cli, api: FakeApi, fast_grants: None
) -> None:
    decided = a_request(approvals=BOB_APPROVES, decided_at="2026-11-26T11:42:00Z", person="alice (IAM user, 1)")
    api.reply("POST", "/requests/req-1/approve", decided, headers=DATE)
    api.reply("GET", "/requests/req-1", decided, headers=DATE)
    api.reply(
        "GET", "/requests/req-1", decided | {"status": "active", "expires_at": "2026-11-26T12:42:00Z"}, headers=DATE
    )

    result = cli("approve", "req-1")

    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "approved; granting…"
    assert lines[1] == "granted: alice (IAM user, 1) has access to PumpCustomerAccess, expiring in 59 min (12:42 UTC)"
    assert "status:        active; expires in 59 min (12:42 UTC)" in result.out
    assert "status: pending" not in result.out.replace("  ", "")
    assert len(api.calls("GET", "/requests/req-1")) == 2


def test_approve_when_the_grant_takes_longer_says_how_to_check(
    cli: Cli, api: FakeApi, fast_grants: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(approver, "GRANT_WAIT_SECONDS", 0.05)
    decided = a_request(approvals=BOB_APPROVES, decided_at="2026-11-26T11:42:00Z")
    api.reply("POST", "/requests/req-1/approve", decided)
    api.reply("GET", "/requests/req-1", decided)

    result = cli("approve", "req-1")

    assert result.code == 0
    assert result.out.splitlines()[:2] == ["approved; granting…", "still granting; check with: trustgate status req-1"]


def test_approve_when_more_approvals_are_needed_says_how_many(cli: Cli, api: FakeApi) -> None:
    waiting = a_request(approvals=BOB_APPROVES, required_approvals=2, approval_deadline="2026-11-26T13:41:00Z")
    api.reply("POST", "/requests/req-1/approve", waiting, headers=DATE)

    result = cli("approve", "req-1")

    assert result.out.splitlines()[0] == (
        "approved (1/2 approvals); waiting for 1 more approval; it times out in 1 hour 58 min (13:41 UTC)"
    )
    assert api.calls("GET", "/requests/req-1") == []


def test_approve_of_an_auto_granted_request_says_granted_at_once(cli: Cli, api: FakeApi) -> None:
    active = a_request(status="active", approvals=BOB_APPROVES, expires_at="2026-11-26T12:43:00Z", person="alice")
    api.reply("POST", "/requests/req-1/approve", active, headers=DATE)

    result = cli("approve", "req-1")

    assert (
        result.out.splitlines()[0] == "granted: alice has access to PumpCustomerAccess, expiring in 1 hour (12:43 UTC)"
    )


def test_approve_whose_grant_failed_says_why(cli: Cli, api: FakeApi, fast_grants: None) -> None:
    decided = a_request(approvals=BOB_APPROVES, decided_at="2026-11-26T11:42:00Z")
    api.reply("POST", "/requests/req-1/approve", decided)
    api.reply("GET", "/requests/req-1", decided | {"status": "failed", "reason": "the trust policy is full"})

    result = cli("approve", "req-1")

    assert result.out.splitlines()[1] == "not granted: request req-1 is failed: the trust policy is full"


def test_approve_with_output_json_prints_only_the_request_it_ended_with(
    cli: Cli, api: FakeApi, fast_grants: None
) -> None:
    decided = a_request(approvals=BOB_APPROVES, decided_at="2026-11-26T11:42:00Z")
    api.reply("POST", "/requests/req-1/approve", decided)
    api.reply("GET", "/requests/req-1", decided | {"status": "active"})

    result = cli("--output", "json", "approve", "req-1")

    assert json.loads(result.out)["status"] == "active"


def test_deny_says_the_requester_is_told(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests/req-1/deny", a_request(status="denied", person="alice"))

    result = cli("deny", "req-1", "--comment", "not now")

    assert result.out.splitlines()[0] == "denied; alice is told, and nothing was granted"


# -- errors point the way ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "route", "status", "code", "next_step"),
    [
        (
            ("status", "req-9"),
            ("GET", "/requests/req-9"),
            404,
            "not_found",
            "trustgate list --mine (your requests and their IDs)",
        ),
        (("cancel", "req-1"), ("POST", "/requests/req-1/cancel"), 409, "conflict", "trustgate status req-1"),
        (("cancel", "req-1"), ("POST", "/requests/req-1/cancel"), 403, "forbidden", "trustgate status req-1"),
        (
            ("request", "PumpCustomerAccess", "--reason", "r"),
            ("POST", "/requests"),
            409,
            "request_pending",
            "trustgate list --mine --status pending (then trustgate cancel ID)",
        ),
        (
            ("request", "PumpCustomerAccess", "--reason", "r"),
            ("POST", "/requests"),
            403,
            "forbidden",
            "trustgate roles (the roles you may request)",
        ),
        (
            ("request", "PumpCustomerAccess", "--reason", "r", "--duration", "9h"),
            ("POST", "/requests"),
            422,
            "duration_too_long",
            "trustgate roles (it shows each role's longest duration)",
        ),
        (
            ("request", "PumpCustomerAccess", "--reason", "r"),
            ("POST", "/requests"),
            422,
            "ticket_required",
            "add --ticket (trustgate roles shows the pattern each role's ticket must match)",
        ),
        (
            ("request", "PumpCustomerAccess", "--reason", "r"),
            ("POST", "/requests"),
            422,
            "justification_too_short",
            "say what you will do with the role, and why, in --reason",
        ),
        (
            ("request", "PumpCustomerAccess", "--reason", "r"),
            ("POST", "/requests"),
            409,
            "trust_policy_full",
            "wait for a grant to end, or ask an admin of the role to run: trustgate role PumpCustomerAccess",
        ),
        (
            ("request", "PumpCustomerAccess", "--reason", "r", "--idempotency-key", "k"),
            ("POST", "/requests"),
            422,
            "idempotency_key_reused",
            "use a new --idempotency-key for a different request",
        ),
        (
            ("approve", "req-1"),
            ("POST", "/requests/req-1/approve"),
            403,
            "own_request",
            "ask another approver; trustgate status req-1",
        ),
        (
            ("approve", "req-1"),
            ("POST", "/requests/req-1/approve"),
            403,
            "approver_removed",
            "trustgate approvals (the requests you may decide)",
        ),
        (
            ("revoke", "req-1"),
            ("POST", "/requests/req-1/revoke"),
            503,
            "revoke_incomplete",
            "run the same revoke again (or let the reconciler finish it within 5 minutes)",
        ),
        (
            ("role", "PumpCustomerAccess"),
            ("GET", "/roles/PumpCustomerAccess"),
            403,
            "forbidden",
            "ask an admin of the role; trustgate roles shows what you may request",
        ),
        (
            ("roles", "--managed"),
            ("GET", "/roles"),
            403,
            "forbidden",
            "ask an admin of the role; trustgate roles shows what you may request",
        ),
        (
            ("list", "--mine"),
            ("GET", "/requests"),
            403,
            "not_a_person",
            "run it as an IAM user or an Identity Center user: trustgate --profile PROFILE list",
        ),
        (
            ("roles",),
            ("GET", "/requestable-roles"),
            403,
            "not_a_person",
            "run it as an IAM user or an Identity Center user: trustgate --profile PROFILE roles",
        ),
        (("list", "--mine"), ("GET", "/requests"), 400, "invalid_cursor", "trustgate list --help"),
        (
            ("status", "req-1"),
            ("GET", "/requests/req-1"),
            429,
            "throttled",
            "run the same command again in a few seconds",
        ),
    ],
)
def test_every_api_error_suggests_the_next_command(
    cli: Cli, api: FakeApi, argv: tuple[str, ...], route: tuple[str, str], status: int, code: str, next_step: str
) -> None:
    api.reply(*route, {"error": {"code": code, "message": "what went wrong"}}, status)

    result = cli(*argv)

    assert result.err == f"trustgate: {code}: what went wrong; try: {next_step}\n"


def test_an_error_whose_message_names_the_command_gets_no_second_one(cli: Cli, api: FakeApi) -> None:
    message = "you already have request req-0 open for PumpCustomerAccess; cancel it (trustgate cancel req-0)"
    api.reply("POST", "/requests", {"error": {"code": "request_pending", "message": message}}, 409)

    result = cli("request", "PumpCustomerAccess", "--reason", "r")

    assert result.err == f"trustgate: request_pending: {message}\n"


def test_an_unknown_profile_lists_the_known_ones(cli: Cli, aws_env: Path) -> None:
    keys = "aws_access_key_id = AKIADEV\naws_secret_access_key = s\n"
    (aws_env / "aws-credentials").write_text(f"[dev]\n{keys}[approver]\n{keys}")

    result = cli("--profile", "devv", "status")

    assert result.code == 3
    assert result.err == (
        "trustgate: unknown_profile: there is no AWS profile 'devv'; did you mean 'dev'? known profiles: approver, "
        "dev (from ~/.aws/config and ~/.aws/credentials, or AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE); "
        "try: aws configure list-profiles\n"
    )


def test_an_unknown_profile_with_none_configured_says_how_to_make_it(cli: Cli) -> None:
    result = cli("--profile", "dev", "status")

    assert result.err == (
        "trustgate: unknown_profile: there is no AWS profile 'dev', nor any other: create it with "
        "'aws configure --profile dev'\n"
    )


def test_connection_refused_elsewhere_points_at_the_endpoint_setting() -> None:
    error = _unreachable("https://abc123.execute-api.us-east-1.amazonaws.com/prod", ConnectionRefusedError())

    assert error.message == (
        "cannot reach https://abc123.execute-api.us-east-1.amazonaws.com/prod: connection refused; check "
        "TRUSTGATE_ENDPOINT (or --endpoint): it is the deployed stack's ApiUrl output"
    )


@pytest.mark.parametrize(("body", "shown"), [(b"", "no body"), (b"<h1>Not Found</h1>", "'<h1>Not Found</h1>'")])
def test_a_404_that_is_not_trustgates_says_this_is_not_a_trustgate_endpoint(
    cli: Cli, api: FakeApi, body: bytes, shown: str
) -> None:
    api.reply("GET", "/requests/req-1", body, 404, headers={"Content-Type": "text/html"})

    result = cli("status", "req-1")

    assert result.code == 7
    assert result.err == (
        f"trustgate: not_trustgate: {api.url}/requests/req-1 answered 404 with {shown}: this is not a TrustGate "
        "endpoint; check TRUSTGATE_ENDPOINT (or --endpoint): it is the deployed stack's ApiUrl output, stage "
        "included (https://abc123.execute-api.us-east-1.amazonaws.com/prod), or http://127.0.0.1:3000 for the "
        "local stack\n"
    )


def test_with_output_json_an_api_error_is_a_json_object_on_stdout(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/requests/req-9", {"error": {"code": "not_found", "message": "no request req-9"}}, 404)

    result = cli("--output", "json", "status", "req-9")

    assert result.code == 4
    assert json.loads(result.out) == {
        "error": {
            "code": "not_found",
            "message": "no request req-9",
            "next": "trustgate list --mine (your requests and their IDs)",
            "status": 404,
            "exit_code": 4,
        }
    }
    assert result.err.startswith("trustgate: not_found: no request req-9")


def test_with_output_json_a_usage_error_is_a_json_object_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--output", "json", "request", "PumpCustomerAccess"]) == 2

    error = json.loads(capsys.readouterr().out)["error"]
    assert error == {
        "code": "usage",
        "message": "the following arguments are required: --reason/--justification",
        "next": "trustgate request --help",
        "exit_code": 2,
    }


def test_a_usage_error_says_which_help_explains_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["request", "PumpCustomerAccess", "--duration", "soon", "--reason", "r"]) == 2

    assert capsys.readouterr().err.endswith(
        "trustgate request: error: argument --duration: duration 'soon' is not like 2 hours, 1h30m, 45m, "
        "90 (minutes) or PT1H (ISO 8601); try: trustgate request --help\n"
    )


def test_with_output_json_a_cli_error_is_a_json_object_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--output=json", "approvals"]) == 2

    assert json.loads(capsys.readouterr().out)["error"]["code"] == "no_endpoint"


def test_with_output_json_a_request_that_ended_prints_only_the_request(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests", a_request(status="denied"), status=201)

    result = cli("--output", "json", "request", "PumpCustomerAccess", "--reason", "r", "--wait")

    assert result.code == 1
    assert json.loads(result.out)["status"] == "denied"  # one document: the request says how it ended


# -- --help ------------------------------------------------------------------------------------------------------


def subcommands(parser: argparse.ArgumentParser, prefix: str = "") -> list[tuple[str, argparse.ArgumentParser]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((f"{prefix}{name}", sub))
                found += subcommands(sub, f"{prefix}{name} ")
    return found


def test_every_subcommands_help_shows_an_example_that_parses(capsys: pytest.CaptureFixture[str]) -> None:
    commands = subcommands(build_parser())
    assert {"roles", "request", "status", "approve", "approvals", "switch-url", "policy", "policy set"} <= {
        name for name, _ in commands
    }
    for name, _ in commands:
        assert main([*name.split(), "--help"]) == 0
        text = capsys.readouterr().out
        assert "\nexample:\n" in text or "\nexamples:\n" in text, name
        examples = text.split("example:\n" if "\nexample:\n" in text else "examples:\n", 1)[1].splitlines()
        for example in examples:
            words = shlex.split(example, comments=True)
            assert words[0] == "trustgate", example
            build_parser().parse_args(words[1:])  # every example is a command line the CLI takes


def test_top_level_help_shows_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0

    assert "examples:\n  trustgate roles " in capsys.readouterr().out
