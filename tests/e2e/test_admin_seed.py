"""The seed scenario on the local stack, through the CLI: carol turns the vendor's open role into
just-in-time access with MFA and two approvers, and everything that follows from it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.drive import ROLE, cli, cli_json, wait_for
from trustgate_local.seed import vendor_trust_policy
from trustgate_local.server import LocalStack

pytestmark = pytest.mark.e2e

REASON = "rotate the CloudTrail bucket after the audit finding"


@pytest.fixture
def locked_down_role(local_stack: LocalStack, tmp_path: Path) -> Iterator[LocalStack]:
    """Leave the shared stack as the other e2e tests expect it: the vendor's default, no role policy."""
    yield local_stack
    organization = local_stack.organization
    for request in cli_json(local_stack, "admin", "list", "--role", ROLE, "--status", "active")["items"]:
        cli_json(local_stack, "admin", "revoke", request["id"])
    defaults = tmp_path / "defaults.json"  # null = back to the deploy default
    fields = ("mode", "adopt_statements", "require_mfa", "approvers", "required_approvals")
    defaults.write_text(json.dumps(dict.fromkeys(fields)))
    cli_json(local_stack, "admin", "policy", "set", ROLE, "--file", str(defaults))
    local_stack.session.client("iam").update_assume_role_policy(
        RoleName=ROLE, PolicyDocument=json.dumps(vendor_trust_policy(organization.organization_id))
    )


def test_carol_restricts_the_role_to_just_in_time_with_mfa_and_two_approvers(locked_down_role: LocalStack) -> None:
    local = locked_down_role
    users = {u.profile: u.arn for u in local.organization.users}
    flags = [
        "--mode", "none", "--adopt", "PumpOrganizationAccess", "--require-mfa",
        "--approvers", f"{users['approver']},{users['approver2']}", "--required-approvals", "2",
    ]  # fmt: skip

    # A looser-than-ceiling edit is refused and names the ceiling
    looser = cli(local, "--profile", "admin", "policy", "set", ROLE, "--max-duration", "24h")
    assert looser.returncode == 6, looser.stderr
    assert "exceeds_ceiling" in looser.stderr
    assert "PT12H" in looser.stderr

    # A dry run shows the diff and changes nothing
    before = cli_json(local, "admin", "role", ROLE)["trust_policy"]
    dry = cli(local, "--profile", "admin", "policy", "set", ROLE, "--dry-run", *flags)
    assert dry.returncode == 0, dry.stderr
    assert "PumpOrganizationAccess" in dry.stdout
    assert cli_json(local, "admin", "role", ROLE)["trust_policy"] == before

    # Applied: nobody has standing access any more
    applied = cli(local, "--profile", "admin", "policy", "set", ROLE, *flags)
    assert applied.returncode == 0, applied.stderr
    role = cli_json(local, "admin", "role", ROLE)
    assert role["mode"] == "none"
    assert [s["Effect"] for s in role["trust_policy"]["Statement"]] == ["Deny"]

    # alice's request needs bob AND dave
    request = cli_json(local, "requester", "request", ROLE, "--duration", "1h", "--reason", REASON)
    assert request["required_approvals"] == 2
    wait_for(lambda: cli_json(local, "approver", "approvals")["items"], "bob to see the request")
    after_bob = cli_json(local, "approver", "approve", request["id"])
    assert (after_bob["status"], len(after_bob["approvals"])) == ("pending", 1)
    cli_json(local, "approver2", "approve", request["id"])
    wait_for(lambda: cli_json(local, "requester", "status", request["id"])["status"] == "active", "the grant")

    # The trust policy names exactly alice, with her expiry and the MFA condition
    (statement,) = cli_json(local, "admin", "role", ROLE)["trust_policy"]["Statement"]
    assert statement["Principal"] == {"AWS": users["requester"]}
    assert statement["Condition"]["Bool"] == {"aws:MultiFactorAuthPresent": "true"}
    assert "DateLessThan" in statement["Condition"]

    # mallory, outside the organization, is refused
    outsider = cli(local, "--profile", "outsider", "request", ROLE, "--duration", "1h", "--reason", REASON)
    assert outsider.returncode == 3, outsider.stderr

    # carol's change is in the audit trail
    audit = cli_json(local, "admin", "audit", "--role", ROLE)
    assert any(event["action"] == "policy.changed" and event["actor"] == users["admin"] for event in audit["items"])
