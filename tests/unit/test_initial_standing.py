"""InitialStandingAccess, pure parts: the parameter's way into Settings and the policy it saves (issue 12, §2)."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from trustgate.app.standing import initial_policy, open_statements
from trustgate.core.errors import RuleViolationError
from trustgate.core.settings import ENV, Settings
from trustgate_local.seed import vendor_trust_policy
from trustgate_local.template import load_template

pytestmark = pytest.mark.unit

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
VENDOR = vendor_trust_policy("o-exampleorg12")["Statement"][0]
VENDOR_SUPPORT = {
    "Sid": "PumpSupport",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
    "Action": "sts:AssumeRole",
}
NO_MFA_DENY = {"Sid": "PumpNeedsMfa", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}


def test_the_template_parameter_reaches_every_function_as_a_setting() -> None:
    template = load_template(TEMPLATE)
    parameter = template["Parameters"]["InitialStandingAccess"]

    assert (parameter["Default"], parameter["AllowedValues"]) == ("unmanaged", ["unmanaged", "none"])
    variable = ENV["initial_standing_access"]
    assert template["Globals"]["Function"]["Environment"]["Variables"][variable] == {"Ref": "InitialStandingAccess"}
    assert Settings.from_env({}).initial_standing_access == "unmanaged"
    assert Settings.from_env({variable: "none"}).initial_standing_access == "none"
    with pytest.raises(pydantic.ValidationError):
        Settings.from_env({variable: "organization"})


def test_the_initial_policy_adopts_exactly_the_open_statements_by_sid() -> None:
    statements = [VENDOR, VENDOR_SUPPORT, NO_MFA_DENY]

    policy = initial_policy(statements)

    # The vendor's own support account and a Deny keep applying: only the open Allow is replaced.
    assert (policy.mode, policy.adopt_statements) == ("none", ["PumpOrganizationAccess"])
    assert open_statements(statements, policy.adopt_statements) == []


def test_a_role_without_open_statements_still_starts_just_in_time() -> None:
    assert initial_policy([VENDOR_SUPPORT]).model_dump(exclude_defaults=True) == {"mode": "none"}


def test_an_open_statement_without_a_sid_cannot_be_adopted_and_says_how_to_fix_it() -> None:
    unnamed = {key: value for key, value in VENDOR.items() if key != "Sid"}

    with pytest.raises(RuleViolationError) as refused:
        initial_policy([VENDOR_SUPPORT, unnamed])

    assert refused.value.code == "unadopted_open_statement"
    assert "#1" in refused.value.message
    assert "Give each a Sid" in refused.value.message
    assert "trustgate policy set" in refused.value.message


def test_the_readme_quickstart_takes_the_role_to_just_in_time_first_and_documents_the_parameter() -> None:
    readme = (TEMPLATE.parent / "README.md").read_text()
    first_command = next(line for line in readme.splitlines() if line.startswith("$ trustgate"))

    assert first_command == (
        "$ trustgate --profile admin policy set PumpCustomerAccess --mode none --adopt PumpOrganizationAccess"
    )
    assert "| `InitialStandingAccess` |" in readme
