"""Requester commands: request (with --wait), status, list, cancel, revoke, extend, switch-url."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_fakes import PRINCIPAL_ARN, ROLE_ARN, Cli, FakeApi, a_request

from trustgate.core.identity import switch_role_url
from trustgate_cli.commands import requester

pytestmark = pytest.mark.unit

SWITCH_URL = (
    "https://signin.aws.amazon.com/switchrole?roleName=PumpCustomerAccess&account=111122223333"
    "&displayName=PumpCustomerAccess"
)
ASSUME = f"aws sts assume-role --role-arn {ROLE_ARN} --role-session-name alice@example.com"
# An active grant as the server answers it: with the way in (`access`) and the Switch Role link it built.
ACCESS = {
    "role_arn": ROLE_ARN,
    "session_name": "alice@example.com",
    "console_url": SWITCH_URL,
    "assume_role_command": ASSUME,
    "mfa_required": False,
}
ACTIVE = {
    "status": "active",
    "starts_at": "2026-11-26T10:01:00Z",
    "expires_at": "2026-11-26T11:01:00Z",
    "access": ACCESS,
    "switch_url": SWITCH_URL,
}
NOT_AN_ADMIN = {"error": {"code": "forbidden", "message": "not an admin"}}


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(requester, "POLL_INTERVAL_SECONDS", 0.01)


def test_request_with_duration_shorthand_posts_iso_duration(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests", a_request(), status=201)

    result = cli("request", "PumpCustomerAccess", "--duration", "90", "--reason", "rotate the key", "--ticket", "CHG-7")

    assert result.code == 0, result.err
    [sent] = api.received
    assert sent.method == "POST"
    assert sent.path == "/requests"
    assert sent.headers["content-type"] == "application/json"
    assert sent.json == {
        "role": "PumpCustomerAccess",
        "duration": "PT1H30M",
        "justification": "rotate the key",
        "ticket": "CHG-7",
    }
    assert "status:        pending" in result.out
    assert "trustgate status req-1" in result.err


def test_request_without_duration_leaves_it_to_the_role_default(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests", a_request(), status=201)

    result = cli("request", "PumpCustomerAccess", "--reason", "rotate the key")

    assert result.code == 0, result.err
    assert api.received[0].json == {"role": "PumpCustomerAccess", "justification": "rotate the key"}


def test_request_with_output_json_prints_the_api_document(cli: Cli, api: FakeApi) -> None:
    answer = a_request(ticket=None, extra_field={"kept": [1, 2]})
    api.reply("POST", "/requests", answer, status=201)

    result = cli("--output", "json", "request", ROLE_ARN, "--duration", "PT1H", "--reason", "rotate the key")

    assert result.code == 0
    assert json.loads(result.out) == answer
    assert list(json.loads(result.out)) == list(answer)  # the API's key order
    assert "ticket" not in api.received[0].json


def test_request_with_auto_approval_prints_how_to_use_the_grant(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests", a_request(**ACTIVE, auto_approved=True), status=201)

    result = cli("request", "PumpCustomerAccess", "--duration", "1h", "--reason", "rotate the key")

    assert result.code == 0
    assert SWITCH_URL in result.out
    assert ASSUME in result.out


def test_request_wait_with_approval_polls_until_active(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests", a_request(), status=201)
    api.reply("GET", "/requests/req-1", a_request())
    api.reply("GET", "/requests/req-1", a_request())
    approved = [
        {"approver_arn": "arn:aws:iam::111122223333:user/bob", "decision": "approve", "at": "2026-11-26T10:01:00Z"}
    ]
    api.reply("GET", "/requests/req-1", a_request(**ACTIVE, approvals=approved))

    result = cli("request", "PumpCustomerAccess", "--duration", "1h", "--reason", "rotate", "--wait")

    assert result.code == 0, result.err
    assert len(api.calls("GET", "/requests/req-1")) == 3
    assert "status:        active" in result.out
    assert f"Console (Switch Role): {SWITCH_URL}\n" in result.out
    assert f"CLI: {ASSUME}\n" in result.out
    # Not a terminal: plain progress lines, once per change, no spinner control codes.
    assert result.err.startswith("waiting for approval of req-1: 0/1 approvals (")
    assert "\r" not in result.err


def test_request_wait_with_denial_exits_1_with_the_reason(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests", a_request(), status=201)
    denied = [
        {
            "approver_arn": "arn:aws:iam::111122223333:user/bob",
            "decision": "deny",
            "at": "2026-11-26T10:01:00Z",
            "comment": "change freeze until Monday",
        }
    ]
    api.reply("GET", "/requests/req-1", a_request(status="denied", approvals=denied))

    result = cli("request", "PumpCustomerAccess", "--duration", "1h", "--reason", "rotate", "--wait")

    assert result.code == 1
    assert result.err.splitlines()[-1] == (
        "trustgate: denied: request req-1 was denied: change freeze until Monday; try: trustgate status req-1"
    )
    assert "switchrole" not in result.out


def test_request_wait_with_failed_grant_exits_1_with_its_reason(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests", a_request(status="failed", reason="trust policy full (2048)"), status=201)

    result = cli("--output", "json", "request", "PumpCustomerAccess", "--duration", "1h", "--reason", "r", "--wait")

    assert result.code == 1
    assert json.loads(result.out)["status"] == "failed"
    assert (
        result.err == "trustgate: failed: request req-1 failed: trust policy full (2048); try: trustgate status req-1\n"
    )
    assert api.calls("GET", "/requests/req-1") == []


def test_request_wait_with_timeout_exits_8(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests", a_request(), status=201)
    api.reply("GET", "/requests/req-1", a_request())

    result = cli("request", "PumpCustomerAccess", "--duration", "1h", "--reason", "r", "--wait", "--timeout", "0.1")

    assert result.code == 8
    assert result.err.splitlines()[-1] == (
        "trustgate: wait_timed_out: request req-1 is still pending after 0.1 s; "
        "check later with: trustgate status req-1"
    )
    assert len(api.calls("GET", "/requests/req-1")) >= 1


def test_request_wait_with_one_failed_poll_keeps_waiting(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests", a_request(), status=201)
    api.reply("GET", "/requests/req-1", {"error": {"code": "internal", "message": "blip"}}, status=503)
    api.reply("GET", "/requests/req-1", a_request(**ACTIVE))

    result = cli("request", "PumpCustomerAccess", "--duration", "1h", "--reason", "r", "--wait")

    assert result.code == 0, result.err
    assert len(api.calls("GET", "/requests/req-1")) == 2


def test_request_wait_with_lasting_outage_gives_up_with_7(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests", a_request(), status=201)
    api.reply("GET", "/requests/req-1", {"error": {"code": "internal", "message": "down"}}, status=500)

    result = cli("request", "PumpCustomerAccess", "--duration", "1h", "--reason", "r", "--wait")

    assert result.code == 7
    assert result.err.splitlines()[-1] == "trustgate: internal: down; try: run the same command again in a few seconds"
    assert len(api.calls("GET", "/requests/req-1")) == requester.MAX_POLL_FAILURES + 1


def test_request_with_timeout_but_no_wait_is_a_usage_error(cli: Cli, api: FakeApi) -> None:
    result = cli("request", "PumpCustomerAccess", "--duration", "1h", "--reason", "r", "--timeout", "5")

    assert result.code == 2
    assert api.received == []


def test_status_with_id_gets_the_request(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/requests/req%2F1", a_request(id="req/1"))

    result = cli("status", "req/1")

    assert result.code == 0
    assert api.received[0].target == "/requests/req%2F1"
    assert "id:            req/1" in result.out


def test_status_without_id_lists_my_requests_as_a_table(cli: Cli, api: FakeApi) -> None:
    api.reply(
        "GET",
        "/requests",
        {"items": [a_request(), a_request(id="req-22", **ACTIVE)]},
    )

    result = cli("status")

    assert result.code == 0
    assert api.received[0].query == {"mine": "true"}
    header, first, second = result.out.splitlines()
    assert header.split() == ["ID", "ROLE", "PRINCIPAL", "STATUS", "DURATION", "CREATED", "EXPIRES"]
    # Aligned: each value starts where its column title does.
    for title, value_1, value_2 in [
        ("ROLE", "PumpCustomerAccess", "PumpCustomerAccess"),
        ("PRINCIPAL", "444455556666:assumed-role/AWSReservedSSO_Dev_0123/alice@example.com", "444455556666:"),
        ("STATUS", "pending", "active"),
        ("EXPIRES", None, "2026-11-26 11:01 UTC"),
    ]:
        column = header.index(title)
        if value_1:
            assert first[column:].startswith(value_1)
        assert second[column:].startswith(value_2)
    assert first == first.rstrip()


def test_list_with_filters_sends_them_and_follows_next(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/requests", {"items": [a_request()], "next": "c2"})
    api.reply("GET", "/requests", {"items": [a_request(id="req-2")]})

    result = cli("--output", "json", "list", "--status", "pending", "--role", ROLE_ARN, "--mine")

    assert result.code == 0
    first, second = api.received
    assert first.query == {"status": "pending", "role": ROLE_ARN, "mine": "true"}
    assert second.query == {"status": "pending", "role": ROLE_ARN, "mine": "true", "next": "c2"}
    assert [item["id"] for item in json.loads(result.out)["items"]] == ["req-1", "req-2"]


@pytest.mark.parametrize(
    ("argv", "path", "body"),
    [
        (("cancel", "req-1"), "/requests/req-1/cancel", b""),
        (("revoke", "req-1"), "/requests/req-1/revoke", b"{}"),
        (("revoke", "req-1", "--reason", "done early"), "/requests/req-1/revoke", b'{"reason": "done early"}'),
        (
            ("extend", "req-1", "--duration", "30m", "--reason", "still rotating"),
            "/requests/req-1/extend",
            b'{"duration": "PT30M", "justification": "still rotating"}',
        ),
    ],
)
def test_requester_command_with_arguments_posts_route_and_body(
    cli: Cli, api: FakeApi, argv: tuple[str, ...], path: str, body: bytes
) -> None:
    api.reply("POST", path, a_request())

    result = cli(*argv)

    assert result.code == 0, result.err
    [sent] = api.received
    assert (sent.method, sent.path, sent.body) == ("POST", path, body)


def test_extend_with_wait_polls_the_new_request(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests/req-1/extend", a_request(id="req-2", extends="req-1"), status=201)
    api.reply("GET", "/requests/req-2", a_request(id="req-2", extends="req-1", **ACTIVE))

    result = cli("extend", "req-1", "--duration", "1h", "--reason", "more", "--wait")

    assert result.code == 0, result.err
    assert "extends:       req-1" in result.out


def requestable(*role_arns: str) -> dict[str, object]:
    """`GET /requestable-roles` naming these roles, each with the link the server builds for it."""
    return {"items": [{"role_arn": arn, "switch_url": switch_role_url(arn)} for arn in role_arns]}


def test_switch_url_with_role_arn_prints_the_link_the_server_gives(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/requestable-roles", {"items": [{"role_arn": ROLE_ARN, "switch_url": SWITCH_URL}]})
    api.reply("GET", "/roles", NOT_AN_ADMIN, 403)

    result = cli("switch-url", ROLE_ARN)

    assert result.code == 0, result.err
    assert result.out == SWITCH_URL + "\n"
    assert api.calls("GET", "/requestable-roles")


def test_switch_url_with_path_and_display_name_relabels_the_servers_link(cli: Cli, api: FakeApi) -> None:
    role = "arn:aws:iam::111122223333:role/vendor/PumpCustomerAccess"
    api.reply("GET", "/requestable-roles", requestable(role))
    api.reply("GET", "/roles", NOT_AN_ADMIN, 403)

    result = cli("switch-url", role, "--display-name", "Pump prod")

    assert result.out == (
        "https://signin.aws.amazon.com/switchrole?roleName=vendor/PumpCustomerAccess&account=111122223333"
        "&displayName=Pump%20prod\n"
    )


def test_switch_url_of_a_govcloud_role_is_the_servers_govcloud_link(cli: Cli, api: FakeApi) -> None:
    role = "arn:aws-us-gov:iam::111122223333:role/PumpCustomerAccess"
    api.reply("GET", "/requestable-roles", requestable(role))
    api.reply("GET", "/roles", NOT_AN_ADMIN, 403)

    result = cli("switch-url", "PumpCustomerAccess")

    assert result.out.startswith("https://signin.amazonaws-us-gov.com/switchrole?roleName=PumpCustomerAccess&")


def test_switch_url_with_name_and_account_picks_that_accounts_role(cli: Cli, api: FakeApi) -> None:
    twin = "arn:aws:iam::999988887777:role/PumpCustomerAccess"
    api.reply("GET", "/requestable-roles", requestable(twin, ROLE_ARN))
    api.reply("GET", "/roles", NOT_AN_ADMIN, 403)

    result = cli("switch-url", "PumpCustomerAccess", "--account", "111122223333")

    assert result.code == 0, result.err
    assert result.out == SWITCH_URL + "\n"


def test_switch_url_from_a_server_without_links_says_so(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/requestable-roles", {"items": [{"role_arn": ROLE_ARN}]})
    api.reply("GET", "/roles", NOT_AN_ADMIN, 403)

    result = cli("switch-url", "PumpCustomerAccess")

    assert result.code != 0
    assert result.out == ""
    assert f"the API gave no Switch Role link for {ROLE_ARN}" in result.err


def test_switch_url_with_bare_name_looks_it_up_among_the_roles_the_requester_may_request(
    cli: Cli, api: FakeApi
) -> None:
    other = "arn:aws:iam::999988887777:role/Other"
    api.reply("GET", "/requestable-roles", requestable(other, ROLE_ARN))
    api.reply("GET", "/roles", {"error": {"code": "forbidden", "message": "alice is not a TrustGate admin"}}, 403)

    result = cli("switch-url", "PumpCustomerAccess")

    assert result.code == 0, result.err
    assert result.out == SWITCH_URL + "\n"


def test_switch_url_with_a_name_in_another_case_finds_the_role(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/requestable-roles", {"items": [{"role_arn": ROLE_ARN, "switch_url": SWITCH_URL}]})
    api.reply("GET", "/roles", {"error": {"code": "forbidden", "message": "not an admin"}}, 403)

    result = cli("switch-url", "pumpcustomeraccess")

    assert result.code == 0, result.err
    assert result.out == SWITCH_URL + "\n"  # the real name, from the server's own link


def test_switch_url_with_a_role_only_administered_finds_it_through_the_admin_list(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/requestable-roles", {"items": []})
    api.reply("GET", "/roles", {"items": [{"role_arn": ROLE_ARN, "switch_url": SWITCH_URL}]})

    result = cli("switch-url", "PumpCustomerAccess")

    assert result.out == SWITCH_URL + "\n"


def test_switch_url_with_unknown_name_exits_4_and_says_which_was_meant(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/requestable-roles", {"items": [{"role_arn": ROLE_ARN}]})
    api.reply("GET", "/roles", {"error": {"code": "forbidden", "message": "not an admin"}}, 403)

    result = cli("switch-url", "PumpCustomerAcess")

    assert result.code == 4
    assert result.err == (
        "trustgate: not_found: no role you may request or administer is named 'PumpCustomerAcess'; did you mean "
        "PumpCustomerAccess? roles: PumpCustomerAccess; try: trustgate roles (the roles you may request)\n"
    )


def test_switch_url_with_same_name_in_two_accounts_asks_for_the_account(cli: Cli, api: FakeApi) -> None:
    twin = "arn:aws:iam::999988887777:role/PumpCustomerAccess"
    api.reply("GET", "/requestable-roles", {"items": [{"role_arn": ROLE_ARN}, {"role_arn": twin}]})
    api.reply("GET", "/roles", {"error": {"code": "forbidden", "message": "not an admin"}}, 403)

    result = cli("switch-url", "PumpCustomerAccess")

    assert result.code == 2
    assert "exist in accounts 111122223333, 999988887777; pass --account" in result.err


def test_switch_url_with_bad_account_exits_2(cli: Cli) -> None:
    result = cli("switch-url", "PumpCustomerAccess", "--account", "1234")

    assert result.code == 2
    assert "is not 12 digits" in result.err


def test_assume_role_hint_with_profile_assumes_from_that_profile(cli: Cli, api: FakeApi, aws_env: Path) -> None:
    (aws_env / "aws-credentials").write_text("[dev]\naws_access_key_id = AKIADEV\naws_secret_access_key = s\n")
    bob = "arn:aws:iam::444455556666:user/ops/bob"
    command = f"aws sts assume-role --role-arn {ROLE_ARN} --role-session-name bob"
    access = ACCESS | {"session_name": "bob", "assume_role_command": command}
    api.reply("GET", "/requests/req-1", a_request(**(ACTIVE | {"access": access}), principal_arn=bob))

    result = cli("--profile", "dev", "status", "req-1")

    assert f"CLI: {command}\nAdd --profile dev to the CLI command to assume from this same profile.\n" in result.out
    assert PRINCIPAL_ARN not in result.out


def test_status_of_a_grant_the_server_gave_no_way_in_for_builds_none(cli: Cli, api: FakeApi) -> None:
    bare = {key: value for key, value in ACTIVE.items() if key not in ("access", "switch_url")}
    api.reply("GET", "/requests/req-1", a_request(**bare))

    result = cli("status", "req-1")

    assert result.code == 0, result.err
    assert "status:        active" in result.out
    assert "switchrole" not in result.out
    assert "assume-role" not in result.out


def test_request_wait_with_ctrl_c_exits_130_and_names_the_request(
    cli: Cli, api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.reply("POST", "/requests", a_request(), status=201)

    def interrupt(self: object, seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("trustgate_cli.progress.Progress.pause", interrupt)

    result = cli("request", "PumpCustomerAccess", "--duration", "1h", "--reason", "r", "--wait")

    assert result.code == 130
    assert "request req-1 is still pending; check with: trustgate status req-1" in result.err


# -- scheduled access (--start) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "sent"),
    [
        ("+3h", "PT3H"),  # counted on TrustGate's clock, not this machine's
        ("+1 day", "P1D"),
        ("2026-12-01T21:00Z", "2026-12-01T21:00:00Z"),
        ("2026-12-01T22:30:00+01:00", "2026-12-01T21:30:00Z"),
    ],
)
def test_request_with_start_sends_start_at(cli: Cli, api: FakeApi, typed: str, sent: str) -> None:
    api.reply("POST", "/requests", a_request(start_at="2026-12-01T21:00:00Z"), status=201)

    result = cli("request", "PumpCustomerAccess", "--start", typed, "--duration", "2h", "--reason", "maintenance")

    assert result.code == 0, result.err
    [posted] = api.calls("POST", "/requests")
    assert posted.json["start_at"] == sent
    assert posted.json["duration"] == "PT2H"
    assert "scheduled for: 2026-12-01 21:00 UTC" in result.out.replace("  ", "").replace(":  ", ": ")


@pytest.mark.parametrize("typed", ["2026-12-01T21:00", "tonight", "+soon", "+0m"])
def test_request_with_an_unreadable_start_is_a_usage_error_and_sends_nothing(
    cli: Cli, api: FakeApi, typed: str
) -> None:
    result = cli("request", "PumpCustomerAccess", "--start", typed, "--reason", "maintenance")

    assert result.code == 2
    assert "--start" in result.err
    assert api.received == []


def test_request_wait_with_start_returns_once_approved_and_scheduled(cli: Cli, api: FakeApi) -> None:
    later = {"start_at": "2026-11-26T21:00:00Z"}
    clock = {"Date": "Thu, 26 Nov 2026 10:05:00 GMT"}  # TrustGate's clock, as its answers tell it
    api.reply("POST", "/requests", a_request(**later), status=201, headers=clock)
    api.reply("GET", "/requests/req-1", a_request(**later), headers=clock)
    scheduled = a_request(**later, status="scheduled", decided_at="2026-11-26T10:05:00Z")
    api.reply("GET", "/requests/req-1", scheduled, headers=clock)

    result = cli("request", "PumpCustomerAccess", "--start", "+11h", "--reason", "maintenance", "--wait")

    assert result.code == 0, result.err
    assert "status:        scheduled; begins in 10 hours 55 min (21:00 UTC)\n" in result.out
    assert "it begins by itself (cancel: trustgate cancel req-1)" in result.err
