import pytest

from tests.support.aws import ALICE, BOB, ROLE_ARN, World

pytestmark = pytest.mark.functional


def test_request_then_approve_puts_alice_in_the_trust_policy(world: World) -> None:
    status, body = world.api("POST", "/requests", ALICE, {"role": "PumpCustomerAccess", "duration": "PT1H", "justification": "rotate the CloudTrail bucket"})
    assert status == 201, body
    request_id = body["id"]
    status, body = world.api("POST", f"/requests/{request_id}/approve", BOB, {"comment": "ok"})
    assert status == 200, body
    world.wait_status(request_id, "active")
    print(world.trust_policy())
    assert ALICE in str(world.trust_policy())
    assert ROLE_ARN
