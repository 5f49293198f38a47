"""`policy show` and `policy set`: read-modify-write of a RolePolicy, dry run, trust-policy diff."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_fakes import Cli, FakeApi, a_request

pytestmark = pytest.mark.unit

POLICY_PATH = "/roles/PumpCustomerAccess/policy"
CURRENT = {
    "mode": "organization",
    "approvers": ["arn:aws:iam::111122223333:user/bob"],
    "required_approvals": 1,
    "require_mfa": False,
    "max_duration": "PT4H",
    "ticket_pattern": None,
    "source_ip_ranges": [],
    "effective": {"approvers": ["arn:aws:iam::111122223333:user/bob"], "max_duration": "PT4H"},
}
ORG_STATEMENT = {
    "Sid": "TrustGateBaseline",
    "Effect": "Allow",
    "Principal": {"AWS": "*"},
    "Action": "sts:AssumeRole",
    "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}},
}
BEFORE = {"Version": "2012-10-17", "Statement": [ORG_STATEMENT]}
AFTER = {"Version": "2012-10-17", "Statement": []}


def a_change(revoked: list[object]) -> dict[str, object]:
    return {"policy": CURRENT, "trust_policy_before": BEFORE, "trust_policy_after": AFTER, "revoked_requests": revoked}


def test_policy_set_with_flags_merges_them_into_the_current_policy(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", POLICY_PATH, CURRENT)
    api.reply("PUT", POLICY_PATH, a_change([]))

    result = cli(
        "policy",
        "set",
        "PumpCustomerAccess",
        "--mode",
        "none",
        "--require-mfa",
        "--max-duration",
        "2h",
        "--approvers",
        "arn:aws:iam::111122223333:user/bob, arn:aws:iam::111122223333:user/carol",
        "--required-approvals",
        "2",
        "--requester-accounts",
        "444455556666,777788889999",
        "--source-ip-ranges",
        "203.0.113.0/24",
        "--adopt",
        "VendorOrgAccess",
        "--admins",
        "",
    )

    assert result.code == 0, result.err
    get, put = api.received
    assert (get.method, put.method, put.target) == ("GET", "PUT", POLICY_PATH)
    assert put.json == {
        "mode": "none",
        "approvers": ["arn:aws:iam::111122223333:user/bob", "arn:aws:iam::111122223333:user/carol"],
        "required_approvals": 2,
        "require_mfa": True,
        "max_duration": "PT2H",
        "source_ip_ranges": ["203.0.113.0/24"],
        "requester_accounts": ["444455556666", "777788889999"],
        "adopt_statements": ["VendorOrgAccess"],
        "admins": [],
    }


def test_policy_set_with_dry_run_sends_the_query_param_and_prints_the_diff(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", POLICY_PATH, CURRENT)
    api.reply("PUT", POLICY_PATH, a_change([a_request(status="active"), "req-9"]))

    result = cli("policy", "set", "PumpCustomerAccess", "--mode", "none", "--dry-run")

    assert result.code == 0, result.err
    put = api.received[1]
    assert put.target == POLICY_PATH + "?dry_run=true"
    lines = result.out.splitlines()
    assert lines[0] == "dry run: nothing was changed; this is what would happen"
    assert lines[1:3] == ["--- trust policy before", "+++ trust policy after"]
    assert '-      "Sid": "TrustGateBaseline",' in lines
    assert '-  "Statement": [' in lines
    assert '+  "Statement": []' in lines
    assert "would revoke 2 grant(s) that no longer conform" in result.out
    assert any(line.startswith("req-1 ") for line in lines)
    assert any(line.startswith("req-9") for line in lines)


def test_policy_set_without_dry_run_has_no_query_and_reports_revoked(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", POLICY_PATH, CURRENT)
    api.reply("PUT", POLICY_PATH, a_change([]) | {"trust_policy_after": BEFORE})

    result = cli("policy", "set", "PumpCustomerAccess", "--no-require-mfa")

    assert api.received[1].target == POLICY_PATH
    assert api.received[1].json["require_mfa"] is False
    assert result.out.splitlines() == [
        "updated the rules of PumpCustomerAccess",
        "trust policy unchanged",
        "",
        "revoked 0 grant(s) that no longer conform",
    ]


def test_policy_set_with_file_lays_it_over_current_and_flags_win(cli: Cli, api: FakeApi, tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(
        json.dumps({"max_duration": "PT3H", "require_mfa": True, "approvers": None, "notify": ["x"]})
    )
    api.reply("GET", POLICY_PATH, CURRENT)
    api.reply("PUT", POLICY_PATH, a_change([]))

    result = cli("policy", "set", "PumpCustomerAccess", "--file", str(policy_file), "--max-duration", "90m")

    assert result.code == 0, result.err
    assert api.received[1].json == {
        "mode": "organization",
        "required_approvals": 1,
        "require_mfa": True,
        "max_duration": "PT1H30M",
        "source_ip_ranges": [],
        "notify": ["x"],
    }


def test_policy_set_with_output_json_prints_the_api_document(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", POLICY_PATH, CURRENT)
    api.reply("PUT", POLICY_PATH, a_change(["req-9"]))

    result = cli("--output", "json", "policy", "set", "PumpCustomerAccess", "--mode", "none")

    assert json.loads(result.out) == a_change(["req-9"])


def test_policy_set_with_nothing_to_change_is_a_usage_error(cli: Cli, api: FakeApi) -> None:
    result = cli("policy", "set", "PumpCustomerAccess")

    assert result.code == 2
    assert result.err.startswith("trustgate: nothing_to_change: ")
    assert api.received == []


@pytest.mark.parametrize(
    "argv",
    [
        ("--requester-accounts", "12345"),
        ("--source-ip-ranges", "203.0.113.0/33"),
        ("--mode", "everyone"),
        ("--required-approvals", "0"),
        ("--max-duration", "forever"),
    ],
)
def test_policy_set_with_bad_option_value_exits_2_and_sends_nothing(
    cli: Cli, api: FakeApi, argv: tuple[str, str]
) -> None:
    result = cli("policy", "set", "PumpCustomerAccess", *argv)

    assert result.code == 2
    assert api.received == []


def test_policy_set_with_file_that_is_not_an_object_exits_2(cli: Cli, api: FakeApi, tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.json"
    policy_file.write_text("[1, 2]")

    result = cli("policy", "set", "PumpCustomerAccess", "--file", str(policy_file))

    assert result.code == 2
    assert "must hold a JSON object" in result.err
    assert api.received == []


def test_policy_set_with_ceiling_violation_exits_6(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", POLICY_PATH, CURRENT)
    message = "max_duration may not be looser than the deploy ceiling (PT4H)"
    api.reply("PUT", POLICY_PATH, {"error": {"code": "exceeds_ceiling", "message": message}}, status=422)

    result = cli("policy", "set", "PumpCustomerAccess", "--max-duration", "8h")

    assert result.code == 6
    assert result.err == f"trustgate: exceeds_ceiling: {message}; try: trustgate policy show PumpCustomerAccess\n"


def test_policy_show_with_role_prints_fields_and_what_is_in_effect(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", POLICY_PATH, CURRENT)

    result = cli("policy", "show", "PumpCustomerAccess")

    assert result.code == 0
    stored, effective = result.out.split("\nin effect (unset fields take the deploy ceiling's defaults):\n")
    assert "approvers:          arn:aws:iam::111122223333:user/bob\n" in stored
    assert "require_mfa:        false\n" in stored
    assert "ticket_pattern:     -\n" in stored
    assert "effective" not in stored
    assert effective == "approvers:    arn:aws:iam::111122223333:user/bob\nmax_duration: PT4H\n"


def test_policy_set_sends_if_match_with_the_version_it_read_and_not_the_version_itself(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", POLICY_PATH, CURRENT | {"version": 7}, headers={"ETag": '"7"'})
    api.reply("PUT", POLICY_PATH, a_change([]))

    result = cli("policy", "set", "PumpCustomerAccess", "--require-mfa")

    assert result.code == 0, result.err
    put = api.received[1]
    assert put.headers["if-match"] == '"7"'
    assert "version" not in put.json


def test_policy_set_when_the_rules_changed_since_read_exits_5_and_says_to_read_again(cli: Cli, api: FakeApi) -> None:
    api.reply("GET", POLICY_PATH, CURRENT | {"version": 7})
    message = "the policy changed since you read it (version 8 now); read it again"
    api.reply("PUT", POLICY_PATH, {"error": {"code": "precondition_failed", "message": message}}, status=412)

    result = cli("policy", "set", "PumpCustomerAccess", "--require-mfa")

    assert result.code == 5
    assert result.err == (
        f"trustgate: precondition_failed: {message}; try: run the same command again: it reads the current rules first\n"
    )
