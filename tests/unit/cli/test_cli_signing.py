"""Every request the CLI sends is SigV4-signed for execute-api, and the signature verifies on the server side."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from cli_fakes import ROLE_ARN, Cli, FakeApi, a_request, signature_problems

from trustgate_cli.client import resolve_region

pytestmark = pytest.mark.unit


def test_signature_with_static_credentials_verifies(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests", a_request(), status=201)

    result = cli("request", "PumpCustomerAccess", "--duration", "1h", "--reason", "rotate the CloudTrail key")

    assert result.code == 0, result.err
    [sent] = api.received
    assert signature_problems(sent) == []
    signed = sent.headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"host", "x-amz-date", "x-amz-security-token", "content-type"} <= set(signed)
    assert sent.headers["x-amz-security-token"] == "FQoGZXIvYXdzEXAMPLETOKEN"


def test_signature_check_with_tampered_request_fails(cli: Cli, api: FakeApi) -> None:
    # Proves the checker used everywhere here can fail: change what was signed, and it must object.
    api.reply("GET", "/requests/req-1", a_request())
    assert cli("status", "req-1").code == 0
    [sent] = api.received

    assert signature_problems(replace(sent, target="/requests/req-2")) == ["signature does not verify"]
    assert signature_problems(replace(sent, body=b"{}")) == ["signature does not verify"]
    assert signature_problems(sent, region="eu-west-1") != []


def test_signature_with_path_prefix_endpoint_covers_the_stage(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/prod/requests/req-1", a_request())

    result = cli("status", "req-1", endpoint=api.url + "/prod/")

    assert result.code == 0, result.err
    [sent] = api.received
    assert sent.target == "/prod/requests/req-1"
    assert signature_problems(sent) == []


def test_signature_with_role_arn_in_path_verifies_over_encoded_path(cli: Cli, api: FakeApi) -> None:
    encoded = "/roles/arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2FPumpCustomerAccess"
    api.reply("POST", encoded + "/sync", {"changed": False, "trust_policy": {}})

    result = cli("sync", ROLE_ARN)

    assert result.code == 0, result.err
    [sent] = api.received
    assert sent.target == encoded + "/sync"
    assert signature_problems(sent) == []


def test_signature_with_query_string_verifies(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/audit", {"items": []})

    result = cli("audit", "--actor", "arn:aws:iam::444455556666:user/bob smith", "--since", "2026-11-26T10:00:00Z")

    assert result.code == 0, result.err
    [sent] = api.received
    # SigV4 canonicalises the query with RFC 3986 encoding: a space is %20, never '+'.
    assert "%20" in sent.target
    assert "+" not in sent.target
    assert sent.query == {"actor": "arn:aws:iam::444455556666:user/bob smith", "since": "2026-11-26T10:00:00Z"}
    assert signature_problems(sent) == []


def test_idempotency_key_with_flag_is_sent_and_signed(cli: Cli, api: FakeApi) -> None:
    api.reply("POST", "/requests", a_request(), status=201)

    cli("request", "PumpCustomerAccess", "--duration", "1h", "--reason", "rotate the key", "--idempotency-key", "k-42")

    [sent] = api.received
    assert sent.headers["idempotency-key"] == "k-42"
    assert "idempotency-key" in sent.headers["authorization"]
    assert signature_problems(sent) == []


def test_profile_with_own_keys_and_region_signs_with_them(cli: Cli, api: FakeApi, aws_env: Path) -> None:
    (aws_env / "aws-config").write_text("[profile dev]\nregion = eu-central-1\n")
    (aws_env / "aws-credentials").write_text(
        "[dev]\naws_access_key_id = AKIADEVPROFILEEXAMPL\naws_secret_access_key = dev-secret\n"
    )
    api.reply("GET", "/approvals", {"items": []})

    result = cli("--profile", "dev", "approvals")

    assert result.code == 0, result.err
    [sent] = api.received
    assert "x-amz-security-token" not in sent.headers
    assert (
        signature_problems(
            sent, region="eu-central-1", access_key="AKIADEVPROFILEEXAMPL", secret_key="dev-secret", token=None
        )
        == []
    )


def test_region_with_flag_after_the_command_is_the_signing_region(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", "/requestable-roles", {"person": "alice", "items": []})

    assert cli("roles", "--region", "ap-southeast-2").code == 0

    assert signature_problems(api.received[0], region="ap-southeast-2") == []


def test_missing_credentials_with_empty_chain_exits_3_and_sends_nothing(
    cli: Cli, api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)

    result = cli("approvals")

    assert result.code == 3
    assert result.err.startswith("trustgate: no_credentials: no AWS credentials found")
    assert api.received == []


def test_unknown_profile_with_no_such_section_exits_3_and_sends_nothing(cli: Cli, api: FakeApi) -> None:
    result = cli("--profile", "nope", "approvals")

    assert result.code == 3
    assert "nope" in result.err
    assert api.received == []


@pytest.mark.parametrize(
    ("explicit", "endpoint", "profile_region", "expected"),
    [
        ("eu-west-1", "https://abc123.execute-api.us-west-2.amazonaws.com/prod", "us-east-2", "eu-west-1"),
        (None, "https://abc123.execute-api.us-west-2.amazonaws.com/prod", "us-east-2", "us-west-2"),
        (None, "https://access.example.com", "us-east-2", "us-east-2"),
        (None, "http://127.0.0.1:3000", None, "us-east-1"),
    ],
)
def test_resolve_region_with_each_source(
    explicit: str | None, endpoint: str, profile_region: str | None, expected: str
) -> None:
    assert resolve_region(explicit, endpoint, profile_region) == expected


def test_endpoint_with_plain_http_to_another_host_is_refused(cli: Cli, api: FakeApi) -> None:
    result = cli("approvals", endpoint="http://api.example.com")

    assert result.code == 2
    assert result.err.startswith("trustgate: bad_endpoint: refusing plain http to api.example.com")
    assert api.received == []
