"""Issue 12, section 5 through the API: what a requester may request (`GET /requestable-roles`), role names
without regard to case (and "did you mean"), and audit ages counted on TrustGate's own clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.support.aws import ALICE, CAROL, ERIN, MALLORY, MEMBER, ROLE_ARN, World, running_world
from tests.support.flows import JUSTIFICATION, request_access

pytestmark = pytest.mark.functional

SWITCH_URL = (
    "https://signin.aws.amazon.com/switchrole?roleName=PumpCustomerAccess&account=123456789012"
    "&displayName=PumpCustomerAccess"
)
SHARED_SESSION = f"arn:aws:sts::{MEMBER}:assumed-role/SharedDeployRole/alice"  # a session name anyone may pick


def requestable(world: World, caller: str) -> tuple[int, Any]:
    return world.api("GET", "/requestable-roles", caller)


def set_policy(world: World, **fields: Any) -> None:
    status, answer = world.api("PUT", "/roles/PumpCustomerAccess/policy", CAROL, fields)
    assert status == 200, answer


def test_a_requester_sees_the_role_its_longest_duration_and_that_it_needs_approval(world: World) -> None:
    status, answer = requestable(world, ALICE)

    assert status == 200, answer
    assert answer["person"] == "alice (IAM user, 222222222222)"
    assert answer["items"] == [
        {
            "role_arn": ROLE_ARN,
            "role_name": "PumpCustomerAccess",
            "account": "123456789012",
            "default_duration": "PT1H",
            "max_duration": "PT12H",
            "min_duration": "PT1M",
            "needs_approval": True,
            "required_approvals": 1,
            "auto_approve": [],
            "break_glass_max_duration": None,
            "justification_min_length": 10,
            "ticket_pattern": None,
            "require_mfa": False,
            "switch_url": SWITCH_URL,
        }
    ]


def test_the_list_follows_the_role_policy_that_post_requests_applies(world: World) -> None:
    set_policy(world, requester_patterns=[ERIN], max_duration="PT2H", ticket_pattern="CHG-[0-9]+")

    assert requestable(world, ALICE)[1]["items"] == []
    status, refused = world.api(
        "POST", "/requests", ALICE, {"role": "PumpCustomerAccess", "justification": JUSTIFICATION}
    )
    assert (status, refused["error"]["code"]) == (403, "forbidden")
    [erins] = requestable(world, ERIN)[1]["items"]
    assert (erins["max_duration"], erins["ticket_pattern"]) == ("PT2H", "CHG-[0-9]+")


def test_a_caller_no_role_accepts_as_a_person_is_told_why(world: World) -> None:
    status, answer = requestable(world, SHARED_SESSION)

    assert (status, answer["error"]["code"]) == (403, "not_a_person")
    assert "identity_roles" in answer["error"]["message"]


def test_a_caller_outside_the_allowed_accounts_is_refused(world: World) -> None:
    status, answer = requestable(world, MALLORY)

    assert status == 403, answer
    assert "items" not in answer


def test_auto_approval_is_shown_only_for_the_rules_that_name_the_caller() -> None:
    with running_world({"AllowAutoApprove": "true"}) as world:
        set_policy(
            world,
            auto_approve=[
                {"principals": [ALICE]},
                {"principals": [ERIN], "max_duration": "PT1H", "weekdays": [4, 0], "hours_utc": [9, 17]},
            ],
        )

        [alices] = requestable(world, ALICE)[1]["items"]
        [erins] = requestable(world, ERIN)[1]["items"]

    assert alices["needs_approval"] is False
    assert alices["auto_approve"] == [{"max_duration": None, "weekdays": [], "hours_utc": None}]
    assert erins["needs_approval"] is True
    assert erins["auto_approve"] == [{"max_duration": "PT1H", "weekdays": [0, 4], "hours_utc": [9, 17]}]


# -- role names without regard to case ---------------------------------------------------------------


@pytest.mark.parametrize("given", ["pumpcustomeraccess", "PUMPCUSTOMERACCESS", ROLE_ARN.lower()])
def test_a_role_name_in_any_case_is_the_managed_role(world: World, given: str) -> None:
    status, created = world.api("POST", "/requests", ALICE, {"role": given, "justification": JUSTIFICATION})

    assert status == 201, created
    assert created["role_arn"] == ROLE_ARN  # the real role: its trust policy is what a grant changes
    status, listed = world.api("GET", "/requests", ALICE, query={"role": given})
    assert status == 200, listed
    assert [item["id"] for item in listed["items"]] == [created["id"]]


def test_an_unknown_role_name_says_which_one_was_meant(world: World) -> None:
    status, answer = world.api(
        "POST", "/requests", ALICE, {"role": "PumpCustomerAcess", "justification": JUSTIFICATION}
    )

    assert (status, answer["error"]["code"]) == (404, "not_found")
    assert answer["error"]["message"] == (
        "'PumpCustomerAcess' is not a role TrustGate manages; did you mean PumpCustomerAccess? "
        "(managed roles: PumpCustomerAccess)"
    )
    assert world.deps.store.requests_by_person("iam:222222222222:alice", None, 10).items == []


def test_a_name_nothing_like_a_managed_role_gets_no_guess(world: World) -> None:
    status, answer = world.api("POST", "/requests", ALICE, {"role": "Billing", "justification": JUSTIFICATION})

    assert status == 404
    assert "did you mean" not in answer["error"]["message"]


# -- audit ages on TrustGate's clock -------------------------------------------------------------------


def test_an_audit_age_counts_back_from_trustgates_clock(world: World) -> None:
    request_id = request_access(world)["id"]
    world.advance(timedelta(hours=2))  # TrustGate's clock moved on (the local stack's /_local/advance)

    def created_since(age: str) -> list[str]:
        status, answer = world.api("GET", "/audit", CAROL, query={"since": age})
        assert status == 200, answer
        return [e["request_id"] for e in answer["items"] if e["action"] == "request.created"]

    assert created_since("PT1H") == []
    assert created_since("PT3H") == [request_id]
    status, answer = world.api("GET", "/audit", CAROL, query={"since": "P"})
    assert (status, answer["error"]["code"]) == (400, "invalid_input")
    assert "since:" in answer["error"]["message"]


# -- the OpenAPI document ------------------------------------------------------------------------------


def test_the_route_is_documented_with_the_statuses_it_gives(world: World) -> None:
    status, document = world.api("GET", "/openapi.json", ALICE)
    assert status == 200
    operation = document["paths"]["/requestable-roles"]["get"]
    assert {"200", "403"} <= set(operation["responses"])
    schema = document["components"]["schemas"]["RequestableRole"]
    assert {"max_duration", "needs_approval", "switch_url"} <= set(schema["properties"])
    audit = document["paths"]["/audit"]["get"]
    since = next(p for p in audit["parameters"] if p["name"] == "since")
    assert "PT1H" in since["description"]
