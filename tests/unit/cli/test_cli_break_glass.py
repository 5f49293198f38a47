"""Break-glass in the CLI: `request --break-glass`, `review ID --ok|--misuse`, `list --review pending`, and how
`status` and `list` show a break-glass grant and its review.

Only the CLI and its fakes are imported (the one test built with the server's own models skips without them),
so this file also runs on the Python the CLI supports on its own (3.10 and later).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from cli_fakes import ROLE_ARN, Cli, FakeApi, a_request

from trustgate_cli.commands import requester
from trustgate_cli.render import request_details

pytestmark = pytest.mark.unit

# The API's clock, as its `Date` header says: 10:05 UTC.
DATE = {"Date": "Thu, 26 Nov 2026 10:05:00 GMT"}
SWITCH_URL = (
    "https://signin.aws.amazon.com/switchrole?roleName=PumpCustomerAccess&account=111122223333"
    "&displayName=PumpCustomerAccess"
)
ASSUME = f"aws sts assume-role --role-arn {ROLE_ARN} --role-session-name alice@example.com"
ACCESS = {
    "role_arn": ROLE_ARN,
    "session_name": "alice@example.com",
    "console_url": SWITCH_URL,
    "assume_role_command": ASSUME,
    "mfa_required": False,
}
BOB = "arn:aws:iam::111111111111:user/bob"
REVIEW_PATH = "/requests/req-1/review"
TOLD = "This is break-glass access: the role's approvers were told at once and will review it afterwards."


def a_break_glass(**fields: Any) -> dict[str, Any]:
    """A break-glass grant as POST /requests answers it: active at once, no approvals, the way in."""
    return a_request(
        **{
            "status": "active",
            "break_glass": True,
            "duration": "PT30M",
            "justification": "INC-4711: payments are down",
            "person": "alice (IAM user, 444455556666)",
            "decided_at": "2026-11-26T10:00:00Z",
            "starts_at": "2026-11-26T10:00:00Z",
            "expires_at": "2026-11-26T10:30:00Z",
            "access": ACCESS,
        }
        | fields
    )


def a_review(verdict: str = "ok", comment: str | None = "INC-4711 was real") -> dict[str, Any]:
    """The `review` a request carries once an approver gave their verdict."""
    return {
        "reviewer_arn": BOB,
        "verdict": verdict,
        "at": "2026-11-26T12:00:00Z",
        "comment": comment,
        "person": "bob (IAM user, 111111111111)",
    }


def rows(out: str) -> list[list[str]]:
    """A table's lines split at its two-space column gaps."""
    return [[cell.strip() for cell in line.split("  ") if cell.strip()] for line in out.splitlines()]


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(requester, "POLL_INTERVAL_SECONDS", 0.01)


# -- request --break-glass ----------------------------------------------------------------------------------------


def test_request_with_break_glass_sends_it_and_prints_the_way_in_and_that_approvers_review_it(
    cli: Cli, api: FakeApi
) -> None:
    api.reply("POST", "/requests", a_break_glass(), status=201, headers=DATE)

    result = cli("request", "PumpCustomerAccess", "--break-glass", "--reason", "INC-4711: payments are down")

    assert result.code == 0, result.err
    [sent] = api.received
    assert (sent.method, sent.path) == ("POST", "/requests")
    assert sent.json == {
        "role": "PumpCustomerAccess",
        "justification": "INC-4711: payments are down",
        "break_glass": True,
    }
    assert "status:        active; expires in 25 min (10:30 UTC)\n" in result.out
    assert "break-glass:   yes; review pending\n" in result.out
    assert "approvals:" not in result.out  # nobody approved it: not `0/1`
    assert f"Console (Switch Role): {SWITCH_URL}\n" in result.out
    assert f"CLI: {ASSUME}\n" in result.out
    assert result.out.endswith(f"{ASSUME}\n\n{TOLD}\n")  # the way in, then the one line saying it was break-glass
    assert result.err == ""


def test_request_with_break_glass_and_duration_sends_both(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests", a_break_glass(), status=201)

    result = cli("request", "PumpCustomerAccess", "--break-glass", "--duration", "30m", "--reason", "INC-4711")

    assert result.code == 0, result.err
    assert api.received[0].json == {
        "role": "PumpCustomerAccess",
        "justification": "INC-4711",
        "duration": "PT30M",
        "break_glass": True,
    }


def test_request_without_break_glass_sends_no_break_glass_field(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests", a_request(), status=201)

    result = cli("request", "PumpCustomerAccess", "--reason", "rotate the key")

    assert result.code == 0, result.err
    assert "break_glass" not in api.received[0].json
    assert "break-glass" not in result.out
    assert TOLD not in result.out


@pytest.mark.parametrize("order", [("--break-glass", "--start", "+3h"), ("--start", "+3h", "--break-glass")])
def test_request_with_break_glass_and_start_is_a_usage_error_and_sends_nothing(
    cli: Cli, api: FakeApi, order: tuple[str, ...]
) -> None:
    result = cli("request", "PumpCustomerAccess", *order, "--reason", "INC-4711")

    assert result.code == 2
    assert result.out == ""
    assert result.err == (
        "trustgate: bad_option: --break-glass and --start exclude each other: break-glass access begins at once; "
        "try: trustgate request --help\n"
    )
    assert api.received == []


def test_request_with_break_glass_and_start_with_output_json_is_a_json_usage_error(cli: Cli, api: FakeApi) -> None:
    result = cli(
        "--output", "json", "request", "PumpCustomerAccess", "--break-glass", "--start", "+1h", "--reason", "r"
    )

    assert result.code == 2
    assert json.loads(result.out)["error"] == {
        "code": "bad_option",
        "message": "--break-glass and --start exclude each other: break-glass access begins at once",
        "next": "trustgate request --help",
        "exit_code": 2,
    }
    assert api.received == []


def test_request_with_break_glass_and_output_json_prints_only_the_api_document(cli: Cli, api: FakeApi) -> None:
    answer = a_break_glass()
    api.reply("POST", "/requests", answer, status=201)

    result = cli("--output", "json", "request", "PumpCustomerAccess", "--break-glass", "--reason", "INC-4711")

    assert result.code == 0
    assert json.loads(result.out) == answer
    assert result.err == ""


def test_request_with_break_glass_still_pending_says_it_is_being_granted(cli: Cli, api: FakeApi) -> None:
    pending = a_request(break_glass=True, decided_at="2026-11-26T10:00:00Z")
    api.reply("POST", "/requests", pending, status=201)

    result = cli("request", "PumpCustomerAccess", "--break-glass", "--reason", "INC-4711")

    assert result.code == 0, result.err
    assert "status:        pending; break-glass, granting access\n" in result.out
    assert result.out.endswith(f"\n\n{TOLD}\n")
    assert result.err == "granting; check with: trustgate status req-1\n"
    assert api.calls("GET", "/requests/req-1") == []  # without --wait, as for any request


def test_request_with_break_glass_and_wait_polls_until_active(cli: Cli, api: FakeApi) -> None:
    pending = a_request(break_glass=True, decided_at="2026-11-26T10:00:00Z")
    api.reply("POST", "/requests", pending, status=201)
    api.reply("GET", "/requests/req-1", pending)
    api.reply("GET", "/requests/req-1", a_break_glass())

    result = cli("request", "PumpCustomerAccess", "--break-glass", "--reason", "INC-4711", "--wait")

    assert result.code == 0, result.err
    assert len(api.calls("GET", "/requests/req-1")) == 2
    assert f"CLI: {ASSUME}\n" in result.out
    assert result.out.endswith(f"\n\n{TOLD}\n")
    assert result.err.startswith("granting break-glass access req-1 (")


def test_request_with_break_glass_whose_grant_failed_exits_1_with_its_reason(cli: Cli, api: FakeApi) -> None:
    failed = a_request(break_glass=True, status="failed", reason="the trust policy is full")
    api.reply("POST", "/requests", failed, status=201)

    result = cli("request", "PumpCustomerAccess", "--break-glass", "--reason", "INC-4711", "--wait")

    assert result.code == 1
    assert TOLD not in result.out
    assert result.err == (
        "trustgate: failed: request req-1 failed: the trust policy is full; try: trustgate status req-1\n"
    )


def test_request_with_break_glass_refused_by_the_role_policy_exits_3_and_points_at_approval(
    cli: Cli, api: FakeApi
) -> None:
    message = (
        "arn:aws:iam::444455556666:user/alice may not break the glass on PumpCustomerAccess: the role policy's "
        "break_glass.requesters does not name you; ask for access with approval instead (leave break_glass out)"
    )
    api.reply("POST", "/requests", {"error": {"code": "break_glass_not_allowed", "message": message}}, 403)

    result = cli("request", "PumpCustomerAccess", "--break-glass", "--reason", "INC-4711")

    assert result.code == 3
    assert result.out == ""
    assert result.err == (
        f"trustgate: break_glass_not_allowed: {message}; try: ask with approval instead: trustgate request "
        "PumpCustomerAccess --reason TEXT (without --break-glass)\n"
    )


def test_request_with_break_glass_refused_with_output_json_is_a_json_error(cli: Cli, api: FakeApi) -> None:
    refusal = {"error": {"code": "break_glass_not_allowed", "message": "no break_glass rule"}}
    api.reply("POST", "/requests", refusal, 403)

    result = cli("--output", "json", "request", "PumpCustomerAccess", "--break-glass", "--reason", "INC-4711")

    assert result.code == 3
    assert json.loads(result.out) == {
        "error": {
            "code": "break_glass_not_allowed",
            "message": "no break_glass rule",
            "next": "ask with approval instead: trustgate request PumpCustomerAccess --reason TEXT "
            "(without --break-glass)",
            "status": 403,
            "exit_code": 3,
        }
    }


@pytest.mark.parametrize(
    ("status", "code", "exit_code", "next_step"),
    [
        (422, "duration_too_long", 6, "trustgate roles (it shows each role's longest duration)"),
        (
            409,
            "already_covered",
            5,
            "trustgate list --mine --status active (then trustgate extend ID, which goes through approval)",
        ),
        (400, "invalid_input", 1, "trustgate request --help"),
    ],
)
def test_request_with_break_glass_refused_says_what_next(
    cli: Cli, api: FakeApi, status: int, code: str, exit_code: int, next_step: str
) -> None:
    api.reply("POST", "/requests", {"error": {"code": code, "message": "what went wrong"}}, status)

    result = cli("request", "PumpCustomerAccess", "--break-glass", "--duration", "2h", "--reason", "INC-4711")

    assert result.code == exit_code
    assert result.err == f"trustgate: {code}: what went wrong; try: {next_step}\n"


def test_roles_shows_how_long_the_caller_may_break_the_glass(cli: Cli, api: FakeApi) -> None:
    role = {
        "role_arn": ROLE_ARN,
        "role_name": "PumpCustomerAccess",
        "account": "111122223333",
        "max_duration": "PT4H",
        "default_duration": "PT1H",
    }
    api.reply(
        "GET",
        "/requestable-roles",
        {
            "items": [
                role | {"needs_approval": True, "required_approvals": 2, "break_glass_max_duration": "PT1H"},
                role | {"role_name": "Other", "needs_approval": True, "break_glass_max_duration": None},
            ]
        },
    )

    result = cli("roles")

    assert result.code == 0, result.err
    assert [row[4] for row in rows(result.out)[1:]] == ["2 approvers; break-glass up to 1 hour", "1 approver"]


# -- review ID --ok|--misuse --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "body", "first_line"),
    [
        (
            ("--ok",),
            {"verdict": "ok"},
            "reviewed ok: the break-glass use of PumpCustomerAccess by alice (IAM user, 444455556666) was justified; "
            "they and the team are told",
        ),
        (
            ("--misuse", "--comment", "no incident that night"),
            {"verdict": "misuse", "comment": "no incident that night"},
            "reviewed misuse: the break-glass use of PumpCustomerAccess by alice (IAM user, 444455556666) was not "
            "justified; they and the team are told",
        ),
    ],
)
def test_review_posts_the_verdict_and_prints_it_then_the_request(
    cli: Cli, api: FakeApi, argv: tuple[str, ...], body: dict[str, str], first_line: str
) -> None:
    reviewed = a_break_glass(status="expired", review=a_review(body["verdict"], body.get("comment")))
    api.reply("POST", REVIEW_PATH, reviewed, headers=DATE)

    result = cli("review", "req-1", *argv)

    assert result.code == 0, result.err
    [sent] = api.received
    assert (sent.method, sent.path, sent.json) == ("POST", REVIEW_PATH, body)
    lines = result.out.splitlines()
    assert lines[0] == first_line
    assert lines[1] == "id:            req-1"
    state = f"yes; reviewed {body['verdict']} by bob (IAM user, 111111111111) at 2026-11-26 12:00 UTC"
    assert f"break-glass:   {state}" + (f": {body['comment']}" if "comment" in body else "") in lines
    assert "approvals:" not in result.out
    assert "switchrole" not in result.out  # the reviewer is not shown the way in
    assert result.err == ""


def test_review_encodes_the_id_in_the_path(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests/req%2F1/review", a_break_glass(id="req/1", review=a_review()))

    result = cli("review", "req/1", "--ok")

    assert result.code == 0, result.err
    assert api.received[0].target == "/requests/req%2F1/review"


def test_review_with_output_json_prints_only_the_api_document(cli: Cli, api: FakeApi) -> None:
    reviewed = a_break_glass(review=a_review("misuse"))
    api.reply("POST", REVIEW_PATH, reviewed)

    result = cli("--output", "json", "review", "req-1", "--misuse")

    assert result.code == 0
    assert json.loads(result.out) == reviewed
    assert result.err == ""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "one of the arguments --ok --misuse is required"),
        (("--ok", "--misuse"), "argument --misuse: not allowed with argument --ok"),
        (("--misuse", "--ok"), "argument --ok: not allowed with argument --misuse"),
    ],
)
def test_review_needs_exactly_one_verdict_and_sends_nothing_without(
    cli: Cli, api: FakeApi, argv: tuple[str, ...], message: str
) -> None:
    result = cli("review", "req-1", *argv, "--comment", "fine")

    assert result.code == 2
    assert result.out == ""
    assert result.err.endswith(f"trustgate review: error: {message}; try: trustgate review --help\n")
    assert api.received == []


@pytest.mark.parametrize(
    ("status", "code", "exit_code", "next_step"),
    [
        (403, "own_request", 3, "ask another approver; trustgate status req-1"),
        (403, "forbidden", 3, "trustgate list --review pending (the break-glass grants you may review)"),
        (403, "approver_removed", 3, "trustgate list --review pending (the break-glass grants you may review)"),
        (
            403,
            "not_a_person",
            3,
            "run it as an IAM user or an Identity Center user: trustgate --profile PROFILE review",
        ),
        (404, "not_found", 4, "trustgate list --review pending (the break-glass grants you may review)"),
        (409, "not_break_glass", 5, "trustgate status req-1"),
        (409, "already_reviewed", 5, "trustgate status req-1"),
    ],
)
def test_review_refused_says_what_next(
    cli: Cli, api: FakeApi, status: int, code: str, exit_code: int, next_step: str
) -> None:
    api.reply("POST", REVIEW_PATH, {"error": {"code": code, "message": "what went wrong"}}, status)

    result = cli("review", "req-1", "--ok")

    assert result.code == exit_code
    assert result.out == ""
    assert result.err == f"trustgate: {code}: what went wrong; try: {next_step}\n"


# -- list --review pending ----------------------------------------------------------------------------------------


def test_list_review_pending_sends_review_pending_and_marks_the_rows(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/requests", {"items": [a_break_glass(), a_break_glass(id="req-2", status="expired")]})

    result = cli("list", "--review", "pending")

    assert result.code == 0, result.err
    [sent] = api.received
    assert sent.query == {"review": "pending"}
    header, first, second = rows(result.out)
    status = header.index("STATUS")
    assert header == ["ID", "ROLE", "PRINCIPAL", "STATUS", "DURATION", "CREATED", "EXPIRES"]
    assert (first[0], first[status]) == ("req-1", "active (break-glass, unreviewed)")
    assert (second[0], second[status]) == ("req-2", "expired (break-glass, unreviewed)")
    assert result.err == "review with: trustgate review ID --ok (or --misuse) --comment TEXT; a review is given once\n"


def test_list_review_pending_combines_with_role_status_and_limit_and_follows_next(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/requests", {"items": [a_break_glass()], "next": "c2"})
    api.reply("GET", "/requests", {"items": [a_break_glass(id="req-2")]})

    result = cli(
        "--output", "json", "list", "--review", "pending", "--role", "PumpCustomerAccess", "--status", "active"
    )

    assert result.code == 0, result.err
    first, second = api.received
    wanted = {"review": "pending", "role": "PumpCustomerAccess", "status": "active"}
    assert first.query == wanted
    assert second.query == wanted | {"next": "c2"}
    assert [item["id"] for item in json.loads(result.out)["items"]] == ["req-1", "req-2"]
    assert result.err == ""


def test_list_review_pending_with_none_says_so(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/requests", {"items": []})

    result = cli("list", "--review", "pending")

    assert result.code == 0
    assert result.out == "no break-glass grants await your review\n"
    assert result.err == ""


def test_list_review_with_mine_is_a_usage_error_and_sends_nothing(cli: Cli, api: FakeApi) -> None:
    result = cli("list", "--review", "pending", "--mine")

    assert result.code == 2
    assert result.out == ""
    assert result.err == (
        "trustgate: bad_option: --review pending lists the grants you review, never your own: leave out --mine; "
        "try: trustgate list --help\n"
    )
    assert api.received == []


def test_list_review_with_another_state_is_a_usage_error(cli: Cli, api: FakeApi) -> None:
    result = cli("list", "--review", "done")

    assert result.code == 2
    assert "argument --review: invalid choice: 'done' (choose from" in result.err
    assert api.received == []


def test_list_without_review_sends_no_review_filter(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/requests", {"items": [a_request()]})

    result = cli("list", "--mine")

    assert result.code == 0, result.err
    assert api.received[0].query == {"mine": "true"}
    assert "break-glass" not in result.out
    assert result.err == ""


# -- status and list show break-glass ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("review", "line"),
    [
        (None, "break-glass:   yes; review pending"),
        (
            a_review("ok", "INC-4711 was real"),
            "break-glass:   yes; reviewed ok by bob (IAM user, 111111111111) at 2026-11-26 12:00 UTC: INC-4711 was real",
        ),
        (
            a_review("misuse", None),
            "break-glass:   yes; reviewed misuse by bob (IAM user, 111111111111) at 2026-11-26 12:00 UTC",
        ),
    ],
)
def test_status_of_a_break_glass_grant_shows_its_review(
    cli: Cli, api: FakeApi, review: dict[str, Any] | None, line: str
) -> None:
    fields = {"review": review} if review else {}
    api.reply("GET", "/requests/req-1", a_break_glass(**fields), headers=DATE)

    result = cli("status", "req-1")

    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[lines.index("status:        active; expires in 25 min (10:30 UTC)") + 1] == line
    assert "approvals:" not in result.out
    assert f"CLI: {ASSUME}" in lines  # the requester's own grant: the way in, as for any active grant
    assert TOLD not in result.out  # said once, when it was taken


def test_status_of_a_review_from_an_older_server_without_person_names_the_reviewers_arn(cli: Cli, api: FakeApi) -> None:
    review = {"reviewer_arn": BOB, "verdict": "ok", "at": "2026-11-26T12:00:00Z"}
    api.reply("GET", "/requests/req-1", a_break_glass(status="expired", review=review))

    result = cli("status", "req-1")

    assert "break-glass:   yes; reviewed ok by 111111111111:user/bob at 2026-11-26 12:00 UTC\n" in result.out


def test_status_of_a_request_that_went_through_approval_has_no_break_glass_line(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/requests/req-1", a_request(break_glass=False))

    result = cli("status", "req-1")

    assert result.code == 0, result.err
    assert "break-glass" not in result.out
    assert "approvals:     0/1\n" in result.out


def test_status_without_id_marks_break_glass_rows_with_their_review(cli: Cli, api: FakeApi) -> None:
    api.reply(
        "GET",
        "/requests",
        {
            "items": [
                a_request(),
                a_break_glass(id="req-2", status="expired", review=a_review("ok")),
                a_break_glass(id="req-3", status="revoked", review=a_review("misuse")),
            ]
        },
    )

    result = cli("status")

    assert result.code == 0, result.err
    assert [row[3] for row in rows(result.out)[1:]] == [
        "pending",
        "expired (break-glass, reviewed ok)",
        "revoked (break-glass, reviewed misuse)",
    ]


def test_status_of_a_break_glass_grant_as_the_server_builds_it() -> None:
    """The server's own `RequestView` of a reviewed break-glass grant, through the CLI's rendering."""
    models = pytest.importorskip("trustgate.core.models", reason="the server's models (Python 3.13) are not here")
    now = datetime.fromisoformat("2026-11-26T10:00:00+00:00")
    grant = models.AccessRequest(
        id="01GLASS",
        role_arn=ROLE_ARN,
        principal_arn="arn:aws:iam::444455556666:user/alice",
        status=models.RequestStatus.EXPIRED,
        duration=timedelta(minutes=30),
        justification="INC-4711: payments are down",
        created_at=now,
        decided_at=now,
        starts_at=now,
        expires_at=now + timedelta(minutes=30),
        break_glass=True,
        review=models.Review(reviewer_arn=BOB, verdict="misuse", at=now + timedelta(hours=2), comment="no incident"),
    )
    document = models.RequestView.of(grant).model_dump(mode="json")

    text = request_details(document, now + timedelta(hours=3))

    assert (
        "break-glass:   yes; reviewed misuse by bob (IAM user, 111111111111) at 2026-11-26 12:00 UTC: no incident\n"
        in text
    )
    assert "approvals:" not in text
