"""Multi-role requests in the CLI: `request ROLE [ROLE ...]` (one request, one approval, one grant per role), the
`roles_refused` error with each refusing role's reason, and how `status`, `list`, `approvals`, `approve`, `revoke`
and `extend` show a request of several roles and each of its roles' requests (its `parts`).

Only the CLI and its fakes are imported, so this file also runs on the Python the CLI supports on its own (3.10 and
later).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cli_fakes import ROLE_ARN, Cli, FakeApi, a_request

from trustgate_cli.commands import approver, requester

pytestmark = pytest.mark.unit

# The API's clock, as its `Date` header says: 10:05 UTC.
DATE = {"Date": "Thu, 26 Nov 2026 10:05:00 GMT"}
BILLING_ARN = "arn:aws:iam::111122223333:role/PumpBilling"
AUDIT_ARN = "arn:aws:iam::111122223333:role/ops/PumpAudit"
BOB = "arn:aws:iam::111111111111:user/bob"


def access(role_arn: str) -> dict[str, Any]:
    """The way into a granted role, as an active request carries it (`access`)."""
    name = role_arn.rsplit("/", 1)[-1]
    return {
        "role_arn": role_arn,
        "session_name": "alice@example.com",
        "console_url": f"https://signin.aws.amazon.com/switchrole?roleName={name}&account=111122223333",
        "assume_role_command": f"aws sts assume-role --role-arn {role_arn} --role-session-name alice@example.com",
        "mfa_required": False,
    }


def active(role_arn: str) -> dict[str, Any]:
    """What an active grant of `role_arn` carries beyond a pending request."""
    return {
        "status": "active",
        "decided_at": "2026-11-26T10:01:00Z",
        "starts_at": "2026-11-26T10:01:00Z",
        "expires_at": "2026-11-26T11:01:00Z",
        "approvals": [{"approver_arn": BOB, "decision": "approve", "at": "2026-11-26T10:01:00Z"}],
        "access": access(role_arn),
    }


def a_multi_role(**fields: Any) -> dict[str, Any]:
    """The first role's request of a request for PumpCustomerAccess and PumpBilling, as POST /requests answers."""
    return a_request(**{"roles": [ROLE_ARN, BILLING_ARN], "parts": ["req-2"]} | fields)


def a_part(**fields: Any) -> dict[str, Any]:
    """The PumpBilling request of that multi-role request."""
    return a_request(**{"id": "req-2", "role_arn": BILLING_ARN, "part_of": "req-1"} | fields)


def rows(out: str) -> list[list[str]]:
    """A table's lines split at its two-space column gaps."""
    return [[cell.strip() for cell in line.split("  ") if cell.strip()] for line in out.splitlines()]


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(requester, "POLL_INTERVAL_SECONDS", 0.01)
    monkeypatch.setattr(approver, "POLL_INTERVAL_SECONDS", 0.01)


# -- request ROLE [ROLE ...] -------------------------------------------------------------------------------------


def test_request_for_one_role_sends_role_as_before(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests", a_request(), status=201)

    result = cli("request", "PumpCustomerAccess", "--duration", "1h", "--reason", "rotate the key")

    assert result.code == 0, result.err
    [sent] = api.received
    assert sent.json == {"role": "PumpCustomerAccess", "justification": "rotate the key", "duration": "PT1H"}
    assert "roles:" not in result.out
    assert "one approval" not in result.out


def test_request_for_two_roles_sends_roles_and_says_one_approval_covers_them(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests", a_multi_role(), status=201, headers=DATE)

    result = cli(
        "request", "PumpCustomerAccess", "pumpbilling", "--duration", "2h", "--reason", "CHG-91", "--ticket", "CHG-91"
    )

    assert result.code == 0, result.err
    [sent] = api.received
    assert (sent.method, sent.path) == ("POST", "/requests")
    assert sent.json == {
        "roles": ["PumpCustomerAccess", "pumpbilling"],  # as typed: the server matches names in any case
        "justification": "CHG-91",
        "duration": "PT2H",
        "ticket": "CHG-91",
    }
    lines = result.out.splitlines()
    assert lines[:3] == [
        "id:            req-1",
        f"role:          {ROLE_ARN}",
        "roles:         PumpCustomerAccess, PumpBilling (req-2)",
    ]
    assert "approvals:     0/1" in lines
    assert result.out.endswith(
        "\n\nOne request for 2 roles (PumpCustomerAccess, PumpBilling): one approval covers them all; each role gets "
        "its own grant.\n"
    )
    assert result.err == "waiting for approval; check with: trustgate status req-1 (cancel: trustgate cancel req-1)\n"


def test_request_for_ten_roles_sends_them_all(cli: Cli, api: FakeApi) -> None:
    roles = [f"Role{number}" for number in range(10)]
    api.reply("POST", "/requests", a_multi_role(), status=201)

    result = cli("request", *roles, "--reason", "migration")

    assert result.code == 0, result.err
    assert api.received[0].json == {"roles": roles, "justification": "migration"}


def test_request_for_eleven_roles_is_a_usage_error_and_sends_nothing(cli: Cli, api: FakeApi) -> None:
    result = cli("request", *[f"Role{number}" for number in range(11)], "--reason", "migration")

    assert result.code == 2
    assert result.out == ""
    assert result.err == (
        "trustgate: too_many_roles: at most 10 roles in one request; you named 11: ask for the others in another; "
        "try: trustgate request --help\n"
    )
    assert api.received == []


@pytest.mark.parametrize(
    ("roles", "named"),
    [
        (("PumpBilling", "PumpBilling"), "'PumpBilling' twice"),
        (("PumpCustomerAccess", "PumpBilling", "pumpBILLING"), "'PumpBilling' and 'pumpBILLING', the same role"),
        (("PumpBilling", BILLING_ARN), f"'PumpBilling' and '{BILLING_ARN}', the same role"),
        (
            ("PumpAudit", "arn:aws:iam::111122223333:role/ops/pumpaudit"),
            "'PumpAudit' and 'arn:aws:iam::111122223333:role/ops/pumpaudit', the same role",
        ),
    ],
)
def test_request_naming_a_role_twice_is_a_usage_error_and_sends_nothing(
    cli: Cli, api: FakeApi, roles: tuple[str, ...], named: str
) -> None:
    result = cli("request", *roles, "--reason", "migration")

    assert result.code == 2
    assert result.out == ""
    assert result.err == (
        f"trustgate: repeated_role: you named {named}: name each role once; try: trustgate request --help\n"
    )
    assert api.received == []


def test_request_for_roles_of_one_name_in_two_accounts_sends_both(cli: Cli, api: FakeApi) -> None:
    twin = "arn:aws:iam::999988887777:role/PumpBilling"
    api.reply("POST", "/requests", a_multi_role(), status=201)

    result = cli("request", BILLING_ARN, twin, "--reason", "migration")

    assert result.code == 0, result.err
    assert api.received[0].json["roles"] == [BILLING_ARN, twin]


@pytest.mark.parametrize(
    ("options", "option"),
    [(("--start", "+3h"), "--start"), (("--break-glass",), "--break-glass")],
)
def test_request_for_several_roles_with_start_or_break_glass_is_a_usage_error(
    cli: Cli, api: FakeApi, options: tuple[str, ...], option: str
) -> None:
    result = cli("request", "PumpCustomerAccess", "PumpBilling", *options, "--reason", "INC-4711")

    assert result.code == 2
    assert result.out == ""
    assert result.err == (
        f"trustgate: bad_option: {option} applies to one role at a time: ask for each role in a request of its own; "
        "try: trustgate request --help\n"
    )
    assert api.received == []


def test_request_for_several_roles_with_output_json_prints_only_the_api_document(cli: Cli, api: FakeApi) -> None:
    answer = a_multi_role()
    api.reply("POST", "/requests", answer, status=201)

    result = cli("--output", "json", "request", "PumpCustomerAccess", "PumpBilling", "--reason", "CHG-91")

    assert result.code == 0, result.err
    assert json.loads(result.out) == answer
    assert result.err == ""


def test_request_for_several_roles_auto_approved_prints_the_way_in_for_each(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests", a_multi_role(**active(ROLE_ARN), auto_approved=True), status=201, headers=DATE)
    api.reply("GET", "/requests/req-2", a_part(**active(BILLING_ARN), auto_approved=True), headers=DATE)

    result = cli("request", "PumpCustomerAccess", "PumpBilling", "--reason", "CHG-91")

    assert result.code == 0, result.err
    assert "roles:         PumpCustomerAccess, PumpBilling (req-2, active)\n" in result.out
    assert "\n\nPumpCustomerAccess (req-1):\nSession name:  alice@example.com" in result.out
    assert "\n\nPumpBilling (req-2):\nSession name:  alice@example.com" in result.out
    assert f"CLI: {access(BILLING_ARN)['assume_role_command']}\n" in result.out
    assert result.err == ""


# -- request --wait ----------------------------------------------------------------------------------------------


def test_request_wait_for_several_roles_prints_the_way_in_for_every_role(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests", a_multi_role(), status=201, headers=DATE)
    api.reply("GET", "/requests/req-1", a_multi_role(), headers=DATE)
    api.reply("GET", "/requests/req-1", a_multi_role(**active(ROLE_ARN)), headers=DATE)
    # The first role is granted a moment before the others: the part is still being granted at first.
    decided = active(BILLING_ARN) | {"status": "pending", "starts_at": None, "expires_at": None, "access": None}
    api.reply("GET", "/requests/req-2", a_part(**decided), headers=DATE)
    api.reply("GET", "/requests/req-2", a_part(**active(BILLING_ARN)), headers=DATE)

    result = cli("request", "PumpCustomerAccess", "PumpBilling", "--duration", "1h", "--reason", "CHG-91", "--wait")

    assert result.code == 0, result.err
    assert len(api.calls("GET", "/requests/req-1")) == 2  # waits on the first request, as for one role
    assert len(api.calls("GET", "/requests/req-2")) == 2
    first, billing = access(ROLE_ARN), access(BILLING_ARN)
    assert "status:        active; expires in 56 min (11:01 UTC)\n" in result.out
    assert "roles:         PumpCustomerAccess, PumpBilling (req-2, active)\n" in result.out
    assert result.out.endswith(
        "\n\nOne request for 2 roles (PumpCustomerAccess, PumpBilling): one approval covers them all; each role gets "
        "its own grant.\n"
        "\nPumpCustomerAccess (req-1):\n"
        "Session name:  alice@example.com (the role only accepts this name for you)\n"
        f"Console (Switch Role): {first['console_url']}\n"
        f"CLI: {first['assume_role_command']}\n"
        "\nPumpBilling (req-2):\n"
        "Session name:  alice@example.com (the role only accepts this name for you)\n"
        f"Console (Switch Role): {billing['console_url']}\n"
        f"CLI: {billing['assume_role_command']}\n"
    )
    assert result.err.startswith("waiting for approval of req-1: 0/1 approvals (")
    assert "granting PumpBilling (req-2, of req-1)" in result.err


def test_request_wait_for_several_roles_with_a_role_that_failed_exits_1_naming_it(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests", a_multi_role(**active(ROLE_ARN)), status=201)
    failed = a_part(status="failed", reason="not granted: PumpBilling: the trust policy is full")
    api.reply("GET", "/requests/req-2", failed)

    result = cli("request", "PumpCustomerAccess", "PumpBilling", "--reason", "CHG-91", "--wait")

    assert result.code == 1
    assert "roles:         PumpCustomerAccess, PumpBilling (req-2, failed)\n" in result.out
    assert "PumpCustomerAccess (req-1):\n" in result.out
    assert "PumpBilling (req-2):" not in result.out  # no way in to a role not granted
    assert result.err.splitlines()[-1] == (
        "trustgate: failed: request req-2 (PumpBilling, of req-1) failed: not granted: PumpBilling: the trust policy "
        "is full; try: trustgate status req-1"
    )


def test_request_wait_for_several_roles_denied_exits_1_without_asking_for_the_parts(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests", a_multi_role(), status=201)
    api.reply("GET", "/requests/req-1", a_multi_role(status="denied", reason="not this week"))

    result = cli("request", "PumpCustomerAccess", "PumpBilling", "--reason", "CHG-91", "--wait")

    assert result.code == 1
    assert api.calls("GET", "/requests/req-2") == []
    assert result.err.splitlines()[-1] == (
        "trustgate: denied: request req-1 was denied: not this week; try: trustgate status req-1"
    )


# -- refusals ----------------------------------------------------------------------------------------------------

REFUSALS = [
    {
        "role": "PumpCustomerAccess",
        "status": 422,
        "code": "duration_too_long",
        "message": "at most 1 hour\nfor this role",
    },
    {"role": BILLING_ARN, "status": 403, "code": "forbidden", "message": "you may not request PumpBilling"},
]
REFUSED = {
    "error": {
        "code": "roles_refused",
        "message": "2 of the roles asked for refuse the request, so nothing was asked for any of them.",
        "roles": REFUSALS,
    }
}


def test_request_refused_by_roles_names_each_refusing_role_and_why(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests", REFUSED, status=422)

    result = cli("request", "PumpCustomerAccess", "PumpBilling", "--duration", "2h", "--reason", "CHG-91")

    assert result.code == 6  # the first refusal's status: 422
    assert result.out == ""
    assert result.err == (
        "trustgate: roles_refused: 2 of the roles asked for refuse the request, so nothing was asked for any of them.; "
        "try: ask again without the roles that refuse, or once what each one says is dealt with\n"
        "  PumpCustomerAccess: duration_too_long: at most 1 hour for this role\n"
        "  PumpBilling: forbidden: you may not request PumpBilling\n"
    )


def test_request_refused_by_roles_exits_as_for_the_status_of_the_answer(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests", REFUSED | {"error": REFUSED["error"] | {"roles": REFUSALS[1:]}}, status=403)

    result = cli("request", "PumpCustomerAccess", "PumpBilling", "--reason", "CHG-91")

    assert result.code == 3
    assert result.err.splitlines()[1:] == ["  PumpBilling: forbidden: you may not request PumpBilling"]


def test_request_refused_by_roles_with_output_json_carries_the_roles(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests", REFUSED, status=422)

    result = cli("--output", "json", "request", "PumpCustomerAccess", "PumpBilling", "--reason", "CHG-91")

    assert result.code == 6
    error = json.loads(result.out)["error"]
    assert (error["code"], error["roles"], error["status"], error["exit_code"]) == ("roles_refused", REFUSALS, 422, 6)
    assert result.err.splitlines()[1] == "  PumpCustomerAccess: duration_too_long: at most 1 hour for this role"


def test_request_without_a_common_approver_points_at_separate_requests(cli: Cli, api: FakeApi) -> None:
    message = "roles: no approver is an approver of every one of these roles"
    api.reply("POST", "/requests", {"error": {"code": "no_common_approver", "message": message}}, status=422)

    result = cli("request", "PumpCustomerAccess", "PumpBilling", "--reason", "CHG-91")

    assert result.code == 6
    assert result.err == (
        f"trustgate: no_common_approver: {message}; try: ask for each role in a request of its own: "
        "trustgate request ROLE --reason TEXT\n"
    )


def test_an_error_without_roles_has_no_lines_under_it(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests", {"error": {"code": "forbidden", "message": "no", "roles": []}}, status=403)

    result = cli("request", "PumpCustomerAccess", "--reason", "rotate")

    assert result.code == 3
    assert result.err.count("\n") == 1


# -- status and list ---------------------------------------------------------------------------------------------


def test_status_of_a_multi_role_request_lists_every_role_with_each_parts_id_and_status(cli: Cli, api: FakeApi) -> None:
    api.reply(
        "GET", "/requests/req-1", a_multi_role(roles=[ROLE_ARN, BILLING_ARN, AUDIT_ARN], parts=["req-2", "req-3"])
    )
    api.reply("GET", "/requests/req-2", a_part())
    api.reply("GET", "/requests/req-3", a_part(id="req-3", role_arn=AUDIT_ARN, status="cancelled"))

    result = cli("status", "req-1")

    assert result.code == 0, result.err
    assert [(call.method, call.path) for call in api.received] == [
        ("GET", "/requests/req-1"),
        ("GET", "/requests/req-2"),
        ("GET", "/requests/req-3"),
    ]
    lines = result.out.splitlines()
    assert lines[2] == "roles:         PumpCustomerAccess, PumpBilling (req-2, pending), PumpAudit (req-3, cancelled)"
    assert "part of:" not in result.out
    assert "One request for" not in result.out  # said once, when it was asked for
    assert result.err == ""


def test_status_of_an_active_multi_role_request_prints_the_way_in_for_every_role(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/requests/req-1", a_multi_role(**active(ROLE_ARN)))
    api.reply("GET", "/requests/req-2", a_part(**active(BILLING_ARN)))

    result = cli("status", "req-1")

    assert result.code == 0, result.err
    assert "\n\nPumpCustomerAccess (req-1):\nSession name:" in result.out
    assert "\n\nPumpBilling (req-2):\nSession name:" in result.out
    assert result.out.endswith(f"CLI: {access(BILLING_ARN)['assume_role_command']}\n")


def test_status_of_a_multi_role_request_with_output_json_prints_only_its_document(cli: Cli, api: FakeApi) -> None:
    answer = a_multi_role()
    api.reply("GET", "/requests/req-1", answer)

    result = cli("--output", "json", "status", "req-1")

    assert result.code == 0, result.err
    assert json.loads(result.out) == answer
    assert api.calls("GET", "/requests/req-2") == []


def test_status_of_a_part_names_the_request_it_is_part_of(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/requests/req-2", a_part(**active(BILLING_ARN)))

    result = cli("status", "req-2")

    assert result.code == 0, result.err
    [call] = api.received
    assert call.path == "/requests/req-2"
    lines = result.out.splitlines()
    assert lines[:3] == ["id:            req-2", f"role:          {BILLING_ARN}", "part of:       req-1"]
    assert "roles:" not in result.out
    # Its own way in, as for any active grant: no heading.
    assert "\n\nSession name:  alice@example.com" in result.out
    assert result.out.endswith(f"CLI: {access(BILLING_ARN)['assume_role_command']}\n")


def test_list_shows_a_multi_role_request_by_its_first_role_and_how_many_more(cli: Cli, api: FakeApi) -> None:
    three = a_multi_role(id="req-3", roles=[ROLE_ARN, BILLING_ARN, AUDIT_ARN], parts=["req-4", "req-5"])
    api.reply("GET", "/requests", {"items": [a_multi_role(), a_part(), a_request(id="req-9"), three]})

    result = cli("list", "--mine")

    assert result.code == 0, result.err
    header, *table = rows(result.out)
    assert header == ["ID", "ROLE", "PRINCIPAL", "STATUS", "DURATION", "CREATED", "EXPIRES"]
    assert [(row[0], row[1]) for row in table] == [
        ("req-1", "PumpCustomerAccess +1"),
        ("req-2", "PumpBilling"),
        ("req-9", "PumpCustomerAccess"),
        ("req-3", "PumpCustomerAccess +2"),
    ]


# -- approvals and approve ---------------------------------------------------------------------------------------


def test_approvals_lists_a_multi_role_request_once_with_every_role(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/approvals", {"items": [a_multi_role(), a_request(id="req-9")]})

    result = cli("approvals")

    assert result.code == 0, result.err
    lines = result.out.splitlines()
    header = lines[0]
    role = header.index("ROLE")
    assert lines[1][role:].startswith("PumpCustomerAccess, PumpBilling  ")
    assert lines[2][role:].startswith("PumpCustomerAccess  ")


def test_approve_of_a_multi_role_request_says_every_role_is_granted(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests/req-1/approve", a_multi_role(**active(ROLE_ARN), person="alice"), headers=DATE)

    result = cli("approve", "req-1")

    assert result.code == 0, result.err
    assert result.out.splitlines()[0] == (
        "granted: alice has access to PumpCustomerAccess, PumpBilling, expiring in 56 min (11:01 UTC)"
    )
    assert "roles:         PumpCustomerAccess, PumpBilling (req-2)\n" in result.out


def test_approve_of_a_part_passes_on_which_request_to_decide(cli: Cli, api: FakeApi) -> None:
    message = (
        "request req-2 is one role of the multi-role request req-1; decide that one (trustgate approve req-1), "
        "which decides every role of it"
    )
    api.reply("POST", "/requests/req-2/approve", {"error": {"code": "part_of_request", "message": message}}, 409)

    result = cli("approve", "req-2")

    assert result.code == 5
    assert result.err == f"trustgate: part_of_request: {message}\n"  # the message names the command already


# -- revoke, cancel, extend --------------------------------------------------------------------------------------


def test_revoke_of_a_part_says_every_role_of_its_request_went(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests/req-2/revoke", a_part(status="revoked"))

    result = cli("revoke", "req-2", "--reason", "done")

    assert result.code == 0, result.err
    assert "part of:       req-1\n" in result.out
    assert result.err == "revoked with every role of request req-1; see: trustgate status req-1\n"


def test_cancel_of_a_multi_role_request_says_every_role_is_cancelled(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests/req-1/cancel", a_multi_role(status="cancelled"))

    result = cli("cancel", "req-1")

    assert result.code == 0, result.err
    assert "roles:         PumpCustomerAccess, PumpBilling (req-2)\n" in result.out
    assert result.err == "cancelled for every role of request req-1: PumpCustomerAccess, PumpBilling\n"


def test_extend_of_a_multi_role_request_shows_the_new_request_for_every_role(cli: Cli, api: FakeApi) -> None:
    extension = a_multi_role(id="req-7", parts=["req-8"], extends="req-1", covered_until="2026-11-26T11:01:00Z")
    api.reply("POST", "/requests/req-2/extend", extension, status=201)

    result = cli("extend", "req-2", "--duration", "30m", "--reason", "still migrating")

    assert result.code == 0, result.err
    assert "roles:         PumpCustomerAccess, PumpBilling (req-8)\n" in result.out
    assert "extends:       req-1\n" in result.out
    assert "One request for 2 roles (PumpCustomerAccess, PumpBilling): one approval covers them all;" in result.out
    assert "trustgate status req-7" in result.err
