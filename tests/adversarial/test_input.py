"""Adversarial cases on malformed input (issue 10, section 9): each one found a 5xx, an ignored parameter or a
listing too wide; each is now a 4xx that changes nothing."""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.adversarial import refused_unchanged
from tests.support.aws import (
    ALICE,
    CAROL,
    ERIN,
    MANAGEMENT,
    MEMBER,
    ROLE_ARN,
    VENDOR_TRUST,
    World,
    api_event,
    running_world,
)
from tests.support.flows import JUSTIFICATION, granted, request_access
from tests.support.links import approval_links, call_page, csrf_of, page_event

pytestmark = pytest.mark.functional

ROLE = "PumpCustomerAccess"
POLICY = f"/roles/{ROLE}/policy"
TIGHTER = {"justification_min_length": 20}  # a real change, if it were ever applied
OTHER_ROLE = "VendorReadOnly"


def ask(duration: Any = "PT1H") -> dict[str, Any]:
    return {"role": ROLE, "duration": duration, "justification": JUSTIFICATION}


def cursor(key: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def pending(world: World, caller: str = ALICE) -> str:
    """A pending request whose flow has settled (approvers notified), so a snapshot holds still."""
    request_id = str(request_access(world, caller)["id"])
    approval_links(world, request_id)
    return request_id


def raw_api(
    world: World, method: str, path: str, caller: str, body: bytes, content_type: str = "application/json"
) -> tuple[int, Any]:
    """Send `body` as bytes (base64, as API Gateway passes a body that is not UTF-8)."""
    event = api_event(method, path, caller, headers={"Content-Type": content_type})
    event |= {"body": base64.b64encode(body).decode(), "isBase64Encoded": True}
    response = world.invoke("ApiFunction", event)
    return response["statusCode"], json.loads(response["body"])


# -- durations no calendar holds ------------------------------------------------------------------


def test_a_request_for_ten_to_the_thirty_minutes_is_refused(world: World) -> None:
    body = refused_unchanged(world, lambda: world.api("POST", "/requests", ALICE, ask(10**30)), 400, "invalid_input")
    assert "duration" in body["error"]["message"]


def test_an_extension_of_99999999999_hours_is_refused(world: World) -> None:
    grant = granted(world)
    extension = {"duration": "PT99999999999H", "justification": JUSTIFICATION}
    refused_unchanged(
        world, lambda: world.api("POST", f"/requests/{grant['id']}/extend", ALICE, extension), 400, "invalid_input"
    )


def test_a_policy_max_duration_of_99999999999_hours_is_refused(world: World) -> None:
    policy = {"max_duration": "PT99999999999H"}
    refused_unchanged(world, lambda: world.api("PUT", POLICY, CAROL, policy), 400, "invalid_input")


# -- bodies: nesting, size, encoding, media type ---------------------------------------------------


def test_a_request_body_nested_5000_lists_deep_is_refused(world: World) -> None:
    deep = "[" * 5000 + "]" * 5000
    body = refused_unchanged(world, lambda: world.api("POST", "/requests", ALICE, deep), 400, "invalid_input")
    assert "nests deeper" in body["error"]["message"]


def test_a_policy_of_30000_nested_lists_is_refused(world: World) -> None:
    deep = "[" * 30000 + "]" * 30000  # under the 64 KB cap: too deep even for json's own recursion limit
    refused_unchanged(world, lambda: world.api("PUT", POLICY, CAROL, deep), 400, "invalid_input")


def test_a_policy_of_100000_nested_lists_is_refused_by_size(world: World) -> None:
    deep = "[" * 100000 + "]" * 100000
    refused_unchanged(world, lambda: world.api("PUT", POLICY, CAROL, deep), 413, "body_too_large")


def test_a_seven_megabyte_policy_is_refused(world: World) -> None:
    huge = {"approvers": [f"arn:aws:iam::{MEMBER}:user/x"] * 200_000}
    body = refused_unchanged(world, lambda: world.api("PUT", POLICY, CAROL, huge), 413, "body_too_large")
    assert "65536" in body["error"]["message"]


def test_a_request_body_over_16_kb_is_refused(world: World) -> None:
    padded = {**ask(), "justification": "x" * 20_000}
    refused_unchanged(world, lambda: world.api("POST", "/requests", ALICE, padded), 413, "body_too_large")


def test_a_request_body_that_is_not_utf8_is_refused(world: World) -> None:
    body = b'{"role": "PumpCustomerAccess\xff\xfe", "duration": "PT1H", "justification": "rotate the bucket"}'
    refused_unchanged(world, lambda: raw_api(world, "POST", "/requests", ALICE, body), 400, "invalid_input")


def test_an_approval_form_that_is_not_utf8_is_refused_before_its_valid_token_is_used(world: World) -> None:
    request_id = request_access(world)["id"]
    token = next(iter(approval_links(world, request_id).values()))
    csrf = csrf_of(call_page(world, "GET", token).body)
    form = f"decision=approve&csrf={urllib.parse.quote(csrf)}&comment=".encode() + b"\xff\xfe"
    event = page_event("POST", token, headers={"Accept": "application/json"})
    event["headers"] |= {"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://127.0.0.1:3000"}
    event |= {"body": base64.b64encode(form).decode(), "isBase64Encoded": True}

    def attack() -> tuple[int, Any]:
        response = world.invoke("DecideFunction", event)
        return response["statusCode"], json.loads(response["body"])

    refused_unchanged(world, attack, 400, "invalid_input")
    assert world.status(request_id) == "pending"


def test_a_request_sent_as_text_plain_is_refused(world: World) -> None:
    text = json.dumps(ask())
    refused_unchanged(
        world,
        lambda: world.api("POST", "/requests", ALICE, text, headers={"Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
    )


def test_a_policy_sent_as_xml_is_refused(world: World) -> None:
    xml = "<policy><justification_min_length>20</justification_min_length></policy>"
    refused_unchanged(
        world,
        lambda: world.api("PUT", POLICY, CAROL, xml, headers={"Content-Type": "application/xml"}),
        415,
        "unsupported_media_type",
    )


def test_a_request_sent_as_a_form_is_refused(world: World) -> None:
    form = urllib.parse.urlencode(ask())
    refused_unchanged(
        world,
        lambda: world.api(
            "POST", "/requests", ALICE, form, headers={"Content-Type": "application/x-www-form-urlencoded"}
        ),
        415,
        "unsupported_media_type",
    )


def test_multipart_form_data_without_a_boundary_is_refused(world: World) -> None:
    part = '--x\r\nContent-Disposition: form-data; name="role"\r\n\r\nPumpCustomerAccess\r\n--x--\r\n'
    refused_unchanged(
        world,
        lambda: world.api("POST", "/requests", ALICE, part, headers={"Content-Type": "multipart/form-data"}),
        415,
        "unsupported_media_type",
    )


def test_a_body_that_names_a_field_twice_is_refused(world: World) -> None:
    twice = '{"role": "PumpCustomerAccess", "duration": "PT1H", "duration": "PT12H", "justification": "rotate it"}'
    body = refused_unchanged(world, lambda: world.api("POST", "/requests", ALICE, twice), 400, "invalid_input")
    assert "'duration' appears twice" in body["error"]["message"]


# -- cursors --------------------------------------------------------------------------------------


def test_a_garbage_cursor_is_refused(world: World) -> None:
    pending(world)
    refused_unchanged(
        world, lambda: world.api("GET", "/requests", ALICE, query={"next": "garbage"}), 400, "invalid_cursor"
    )


def test_a_cursor_of_base64_junk_is_refused(world: World) -> None:
    junk = base64.urlsafe_b64encode(b"\xff\xfe\x00 not json").decode()
    refused_unchanged(world, lambda: world.api("GET", "/audit", CAROL, query={"next": junk}), 400, "invalid_cursor")


def test_a_cursor_into_another_persons_requests_is_refused(world: World) -> None:
    pending(world, ERIN)
    forged = cursor(
        {"pk": "REQUEST#x", "sk": "REQUEST", "gsi2pk": f"PERSON#iam:{MEMBER}:erin", "gsi2sk": "9999-12-31T00:00:00Z"}
    )
    refused_unchanged(
        world, lambda: world.api("GET", "/requests", ALICE, query={"next": forged}), 400, "invalid_cursor"
    )


def test_a_cursor_of_another_index_is_refused(world: World) -> None:
    pending(world)
    of_requests = cursor({"pk": "REQUEST#x", "sk": "REQUEST", "gsi4pk": "REQUEST", "gsi4sk": "2026-01-01T00:00:00Z"})
    refused_unchanged(
        world, lambda: world.api("GET", "/audit", CAROL, query={"next": of_requests}), 400, "invalid_cursor"
    )


def test_a_cursor_outside_the_asked_time_range_is_refused(world: World) -> None:
    later = cursor({"pk": "AUDIT#x", "sk": "AUDIT", "gsi4pk": "AUDIT", "gsi4sk": "2999-01-01T00:00:00Z#x"})
    query = {"until": "2030-01-01T00:00:00Z", "next": later}
    refused_unchanged(world, lambda: world.api("GET", "/audit", CAROL, query=query), 400, "invalid_cursor")


# -- audit times ----------------------------------------------------------------------------------


def test_an_audit_since_in_the_year_10000_is_refused(world: World) -> None:
    body = refused_unchanged(
        world,
        lambda: world.api("GET", "/audit", CAROL, query={"since": "10000-01-01T00:00:00Z"}),
        400,
        "invalid_input",
    )
    assert "since" in body["error"]["message"]


def test_an_audit_since_past_the_last_utc_second_is_refused(world: World) -> None:
    refused_unchanged(
        world,
        lambda: world.api("GET", "/audit", CAROL, query={"since": "9999-12-31T23:59:59-01:00"}),
        400,
        "invalid_input",
    )


# -- query parameters -----------------------------------------------------------------------------


@pytest.mark.parametrize("misspelled", ["dryrun", "dry-run", "DRY_RUN"])
def test_a_misspelled_dry_run_is_refused_not_applied(world: World, misspelled: str) -> None:
    body = refused_unchanged(
        world,
        lambda: world.api("PUT", POLICY, CAROL, TIGHTER, query={misspelled: "true"}),
        400,
        "unknown_parameter",
    )
    assert misspelled in body["error"]["message"]
    assert "dry_run" in body["error"]["message"]


def test_a_dry_run_given_twice_is_refused(world: World) -> None:
    def attack() -> tuple[int, Any]:
        event = api_event("PUT", POLICY, CAROL, TIGHTER, {"dry_run": "true"})
        event["multiValueQueryStringParameters"] = {"dry_run": ["true", "false"]}
        response = world.invoke("ApiFunction", event)
        return response["statusCode"], json.loads(response["body"])

    refused_unchanged(world, attack, 400, "repeated_parameter")


def test_an_unknown_parameter_on_a_request_is_refused(world: World) -> None:
    refused_unchanged(
        world, lambda: world.api("POST", "/requests", ALICE, ask(), query={"force": "1"}), 400, "unknown_parameter"
    )


# -- who sees which requests ----------------------------------------------------------------------


@pytest.fixture
def two_roles() -> Iterator[World]:
    """Two managed roles; ERIN administers only the second."""
    other_arn = f"arn:aws:iam::{MANAGEMENT}:role/{OTHER_ROLE}"
    with running_world({"ManagedRoleArns": f"{ROLE_ARN},{other_arn}"}) as world:
        world.session.client("iam").create_role(RoleName=OTHER_ROLE, AssumeRolePolicyDocument=json.dumps(VENDOR_TRUST))
        status, answer = world.api("PUT", f"/roles/{OTHER_ROLE}/policy", CAROL, {"admins": [ERIN]})
        assert status == 200, answer
        yield world


def test_an_admin_of_another_role_cannot_read_a_request(two_roles: World) -> None:
    world = two_roles
    request_id = pending(world)
    refused_unchanged(world, lambda: world.api("GET", f"/requests/{request_id}", ERIN), 404, "not_found")


def test_an_admin_of_another_role_cannot_read_the_roles_audit(two_roles: World) -> None:
    world = two_roles
    pending(world)
    refused_unchanged(world, lambda: world.api("GET", "/audit", ERIN, query={"role": ROLE}), 403, "forbidden")


def test_a_revoke_sent_as_a_list_of_objects_is_refused_not_applied(world: World) -> None:
    grant = granted(world)

    body = refused_unchanged(
        world, lambda: world.api("POST", f"/requests/{grant['id']}/revoke", CAROL, [{}, {}]), 400, "invalid_input"
    )

    assert "one JSON object" in body["error"]["message"]
    assert world.status(grant["id"]) == "active"


def test_a_request_sent_as_a_list_holding_a_valid_request_is_refused(world: World) -> None:
    refused_unchanged(world, lambda: world.api("POST", "/requests", ALICE, [ask()]), 400, "invalid_input")


def test_an_if_match_of_superscript_digits_is_refused(world: World) -> None:
    refused_unchanged(
        world, lambda: world.api("PUT", POLICY, CAROL, TIGHTER, headers={"If-Match": '"²"'}), 400, "invalid_input"
    )


def test_a_duration_of_json_true_is_refused_not_read_as_one_minute(world: World) -> None:
    refused_unchanged(world, lambda: world.api("POST", "/requests", ALICE, ask(True)), 400, "invalid_input")
