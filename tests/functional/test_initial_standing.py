"""A deployment can start just-in-time: the deploy parameter InitialStandingAccess (issue 12, section 2).

Each test provisions template.yaml with the parameter (`running_world`), so the value goes the way a deployment
takes it: template parameter -> function environment -> Settings -> the reconciler's first run or a manual
sync. What IAM then holds is judged by the independent IAM evaluator (tests/support/iam_eval.py), not by
TrustGate's idea of it: an organization member without a grant is refused, the granted person gets in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.functional.test_least_privilege import CallRecorder, judge
from tests.support.assume import decisions
from tests.support.aws import (
    ALICE,
    CAROL,
    ERIN,
    MALLORY,
    ROLE_ARN,
    ROLE_NAME,
    VENDOR_TRUST,
    World,
    running_world,
)
from tests.support.flows import granted
from tests.support.iam_eval import ALLOWED
from trustgate.core.trust_policy import NOBODY, statements_of

pytestmark = pytest.mark.functional

JUST_IN_TIME = {"InitialStandingAccess": "none"}


@pytest.fixture
def jit_world() -> Iterator[World]:
    with running_world(JUST_IN_TIME) as world:
        yield world


def reconcile(world: World) -> dict[str, Any]:
    report = world.invoke("ReconcileFunction", {})
    assert isinstance(report, dict)
    return report


def stored_policy(world: World) -> dict[str, object]:
    status, body = world.api("GET", f"/roles/{ROLE_NAME}/policy", CAROL)
    assert status == 200, body
    return dict(body)


def test_by_default_the_role_keeps_its_own_statements_and_the_organization_stays_in(world: World) -> None:
    report = reconcile(world)

    assert report["failures"] == []
    assert "started_just_in_time" not in report["roles"][0]
    assert world.trust_policy() == VENDOR_TRUST
    assert stored_policy(world)["version"] == 0
    assert decisions(world, ("erin", ERIN, "anything"))["erin"] == ALLOWED  # unmanaged: the vendor's access


def test_with_none_the_first_reconcile_takes_the_role_to_just_in_time_and_iam_agrees() -> None:
    with running_world(JUST_IN_TIME) as world:
        # GIVEN a fresh deployment with InitialStandingAccess=none: the vendor's open statement lets erin in
        assert world.trust_policy() == VENDOR_TRUST
        assert decisions(world, ("erin", ERIN, "erin"))["erin"] == ALLOWED

        # WHEN the reconciler first runs (within five minutes of the deployment)
        report = reconcile(world)

        # THEN the role policy is mode none, adopting the vendor's statement, saved and audited as TrustGate's
        assert report["failures"] == []
        assert report["roles"] == [{"role_arn": ROLE_ARN, "changed": True, "expired": [], "started_just_in_time": True}]
        policy = stored_policy(world)
        assert (policy["mode"], policy["adopt_statements"], policy["version"]) == (
            "none",
            ["PumpOrganizationAccess"],
            1,
        )
        assert world.trust_policy() == {"Version": "2012-10-17", "Statement": [NOBODY]}
        status, audit = world.api("GET", "/audit", CAROL, query={"role": ROLE_NAME})
        assert status == 200, audit
        (change,) = [e for e in audit["items"] if e["action"] == "policy.changed"]
        assert change["actor"] == "trustgate"
        assert change["after"] == {"mode": "none", "adopt_statements": ["PumpOrganizationAccess"]}

        # AND a grant means something: alice gets in under her pinned name, an organization member without a
        # grant does not, nor does alice under another name, nor mallory outside the organization
        granted(world, ALICE)
        decided = decisions(
            world,
            ("alice", ALICE, "alice"),
            ("alice-other-name", ALICE, "admin"),
            ("erin", ERIN, "erin"),
            ("mallory", MALLORY, "mallory"),
        )
        assert decided["alice"] == ALLOWED
        assert {decided[case] for case in ("alice-other-name", "erin", "mallory")} == {"ImplicitlyDenied"}

        # AND it happens once: later runs leave the saved policy alone
        again = reconcile(world)
        assert "started_just_in_time" not in again["roles"][0]
        assert stored_policy(world)["version"] == 1


def test_a_manual_sync_takes_the_role_to_just_in_time_at_once(jit_world: World) -> None:
    status, body = jit_world.api("POST", f"/roles/{ROLE_NAME}/sync", CAROL)

    assert status == 200, body
    assert jit_world.trust_policy() == {"Version": "2012-10-17", "Statement": [NOBODY]}
    assert stored_policy(jit_world)["mode"] == "none"
    assert decisions(jit_world, ("erin", ERIN, "erin"))["erin"] != ALLOWED


def test_an_admin_policy_saved_first_wins(jit_world: World) -> None:
    # GIVEN carol saved a policy of her own before the reconciler's first run, leaving standing access alone
    status, body = jit_world.api("PUT", f"/roles/{ROLE_NAME}/policy", CAROL, {"ticket_pattern": "OPS-[0-9]+"})
    assert status == 200, body

    report = reconcile(jit_world)

    assert report["failures"] == []
    assert jit_world.trust_policy() == VENDOR_TRUST
    assert stored_policy(jit_world)["mode"] is None


def test_unsetting_the_mode_restores_the_vendor_statement_and_it_stays(jit_world: World) -> None:
    reconcile(jit_world)
    assert jit_world.trust_policy() != VENDOR_TRUST

    status, body = jit_world.api("PUT", f"/roles/{ROLE_NAME}/policy", CAROL, {})

    assert status == 200, body
    assert jit_world.trust_policy() == VENDOR_TRUST  # exactly as the vendor wrote it
    reconcile(jit_world)
    assert jit_world.trust_policy() == VENDOR_TRUST  # the admin's choice stands
    assert stored_policy(jit_world)["version"] == 2


def test_an_open_statement_without_a_sid_is_reported_each_run_and_nothing_changes(jit_world: World) -> None:
    unnamed = {
        "Version": "2012-10-17",
        "Statement": [{k: v for k, v in VENDOR_TRUST["Statement"][0].items() if k != "Sid"}],
    }
    iam = jit_world.session.client("iam")
    iam.update_assume_role_policy(RoleName=ROLE_NAME, PolicyDocument=json.dumps(unnamed))

    for _ in range(2):
        report = reconcile(jit_world)
        (failure,) = report["failures"]
        assert failure["part"] == f"initial standing access of {ROLE_ARN}"
        assert failure["error"].startswith("unadopted_open_statement: InitialStandingAccess=none cannot adopt")
        assert "statement(s) #0 of the trust policy" in failure["error"]
    assert statements_of(jit_world.trust_policy()) == unnamed["Statement"]
    assert stored_policy(jit_world)["version"] == 0


def test_taking_the_role_to_just_in_time_needs_only_what_the_template_grants_the_reconciler(jit_world: World) -> None:
    recorder = CallRecorder(jit_world)

    report = reconcile(jit_world)

    assert report["roles"][0]["started_just_in_time"] is True
    assert any(call.action == "dynamodb:PutItem" for _, call in recorder.calls)  # the policy, in a transaction
    assert judge(jit_world, recorder.calls) == []
