"""Exit codes scripts rely on, and the one-line error message on stderr."""

from __future__ import annotations

import socket

import pytest
from cli_fakes import Cli, FakeApi

from trustgate_cli import main as main_module
from trustgate_cli.errors import exit_codes_help
from trustgate_cli.main import main

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("status", "code", "exit_code", "next_step"),
    [
        (400, "invalid_input", 1, "trustgate approve --help"),
        (401, "unauthenticated", 3, "trustgate approve --help"),
        (403, "forbidden", 3, "trustgate approvals (the requests you may decide)"),
        (404, "not_found", 4, "trustgate approvals (the requests you may decide)"),
        (409, "already_decided", 5, "trustgate status req-1"),
        (422, "rule_violation", 6, "trustgate approve --help"),
        (429, "role_busy", 1, "run the same command again in a few seconds"),
        (500, "internal", 7, "run the same command again in a few seconds"),
        (503, "unavailable", 7, "run the same command again in a few seconds"),
    ],
)
def test_exit_code_with_api_error_status(
    cli: Cli, api: FakeApi, status: int, code: str, exit_code: int, next_step: str
) -> None:
    api.reply(
        "POST",
        "/requests/req-1/approve",
        {"error": {"code": code, "message": "what went wrong\nand how to fix"}},
        status,
    )

    result = cli("approve", "req-1")

    assert result.code == exit_code
    assert result.err == f"trustgate: {code}: what went wrong and how to fix; try: {next_step}\n"
    assert result.out == ""


def test_error_line_with_api_gateway_body_uses_its_error_type(cli: Cli, api: FakeApi) -> None:
    api.reply(
        "GET",
        "/roles",
        {"message": "The security token included in the request is invalid."},
        403,
        headers={"x-amzn-ErrorType": "UnrecognizedClientException:http://internal.amazon.com/coral/"},
    )

    result = cli("roles", "--managed")

    assert result.code == 3
    assert result.err == (
        "trustgate: UnrecognizedClientException: The security token included in the request is invalid.; "
        "try: aws sts get-caller-identity (which credentials sign)\n"
    )


def test_error_line_with_unknown_path_hints_at_the_stage(cli: Cli, api: FakeApi) -> None:
    api.reply(
        "GET",
        "/roles",
        {"message": "Missing Authentication Token"},
        403,
        headers={"x-amzn-ErrorType": "MissingAuthenticationTokenException"},
    )

    result = cli("roles", "--managed")

    assert result.code == 3
    assert "does --endpoint include the stage" in result.err
    assert result.err.count("\n") == 1


def test_error_line_with_non_json_error_body_keeps_status(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/roles", b"<html>Bad Gateway</html>", 502, headers={"Content-Type": "text/html"})

    result = cli("roles", "--managed")

    assert result.code == 7
    assert result.err == (
        "trustgate: http_502: <html>Bad Gateway</html>; try: run the same command again in a few seconds\n"
    )


def test_exit_code_with_success_that_is_not_json_is_7(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/roles", b"<html>hello</html>", 200, headers={"Content-Type": "text/html"})

    result = cli("roles", "--managed")

    assert result.code == 7
    assert result.err.startswith("trustgate: invalid_response: ")
    assert result.err.endswith("; try: check TRUSTGATE_ENDPOINT (or --endpoint)\n")


def test_exit_code_with_redirect_is_7_and_not_followed(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/roles", b"", 302, headers={"Location": "https://elsewhere.example.com/roles"})

    result = cli("roles", "--managed")

    assert result.code == 7
    assert "redirected to https://elsewhere.example.com/roles" in result.err
    assert len(api.received) == 1


def test_exit_code_with_connection_refused_is_7(cli: Cli) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    result = cli("roles", endpoint=f"http://127.0.0.1:{port}")

    assert result.code == 7
    assert result.err == (
        f"trustgate: connection_failed: cannot reach http://127.0.0.1:{port}: connection refused; is the local "
        "stack running? Start it with 'make local' in the TrustGate checkout, or point TRUSTGATE_ENDPOINT "
        "(or --endpoint) at a deployed API\n"
    )


def test_exit_code_with_unknown_command_is_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


def test_exit_code_with_bad_duration_is_2_and_nothing_sent(cli: Cli, api: FakeApi) -> None:
    result = cli("request", "PumpCustomerAccess", "--duration", "1x", "--reason", "rotate the key")

    assert result.code == 2
    assert "duration '1x' is not like 2 hours, 1h30m, 45m" in result.err
    assert api.received == []


def test_exit_code_with_no_endpoint_is_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["approvals"]) == 2
    assert capsys.readouterr().err == (
        "trustgate: no_endpoint: pass --endpoint or set TRUSTGATE_ENDPOINT (e.g. http://127.0.0.1:3000); "
        "try: trustgate approvals --help\n"
    )


def test_endpoint_with_env_variable_is_used(api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTGATE_ENDPOINT", api.url + "/")
    api.reply("GET", "/approvals", {"items": []})

    assert main(["approvals"]) == 0
    assert [r.path for r in api.received] == ["/approvals"]


def test_exit_codes_with_help_are_listed_in_epilog_and_docstring(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    help_text = capsys.readouterr().out

    for line in exit_codes_help().splitlines()[1:]:
        assert line in help_text
        assert line in (main_module.__doc__ or "")
