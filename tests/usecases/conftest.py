"""Use cases on the in-memory fakes (trustgate_local.fakes): no moto, no threads, a clock that moves when told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trustgate.app import decisions, requests, workflow_steps
from trustgate.core import ports
from trustgate.core.clock import FixedClock
from trustgate.core.identity import Caller, caller_for_arn
from trustgate.core.models import AccessRequest, RequestStatus
from trustgate.core.settings import Settings
from trustgate_local.fakes import FakeDependencies

# The functional tests' world (trustgate_local.world and seed), without importing moto.
ORG_ID = "o-exampleorg12"
MANAGEMENT = "123456789012"
MEMBER = "222222222222"
ROLE_NAME = "PumpCustomerAccess"
ROLE_ARN = f"arn:aws:iam::{MANAGEMENT}:role/{ROLE_NAME}"
ROLE_ID = "AROAEXAMPLEROLEID0001"
ALICE = f"arn:aws:iam::{MEMBER}:user/alice"
BOB = f"arn:aws:iam::{MEMBER}:user/bob"
CAROL = f"arn:aws:iam::{MEMBER}:user/carol"
DAVE = f"arn:aws:iam::{MEMBER}:user/dave"
JUSTIFICATION = "rotate the CloudTrail bucket policy"
VENDOR_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "PumpOrganizationAccess",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG_ID}},
        }
    ],
}
SETTINGS = Settings(
    managed_role_arns=[ROLE_ARN],
    organization_id=ORG_ID,
    allowed_account_ids=[MEMBER, MANAGEMENT],
    bootstrap_admins=[CAROL],
    default_approvers=[BOB, DAVE],
    identity_center_account_ids=[MEMBER, MANAGEMENT],
    min_duration=timedelta(minutes=1),
    approval_base_url="http://127.0.0.1:3000",
)


@pytest.fixture
def deps() -> FakeDependencies:
    fakes = FakeDependencies(SETTINGS, FixedClock(datetime(2026, 11, 30, 9, 0, tzinfo=UTC)))
    fakes.roles.add_role(ROLE_ARN, VENDOR_TRUST, ROLE_ID)
    _: ports.Dependencies = fakes  # the fakes are what the use cases are typed against
    return fakes


def caller(arn: str) -> Caller:
    return caller_for_arn(arn, SETTINGS.caller_policy())


def task_token(request_id: str) -> str:
    return f"token-{request_id}"


def request_access(deps: FakeDependencies, who: str = ALICE, duration: timedelta = timedelta(hours=1)) -> AccessRequest:
    """POST /requests, then the flow's first step (WaitForApproval) as the state machine runs it."""
    new = requests.NewRequest(role=ROLE_NAME, duration=duration, justification=JUSTIFICATION)
    request = requests.create_request(deps, caller(who), new)
    workflow_steps.notify_approvers(deps, request.id, task_token(request.id))
    return request


def approve(deps: FakeDependencies, request_id: str, approver: str = BOB) -> AccessRequest:
    return decisions.decide(deps, caller(approver), request_id, "approve", "ok")


def granted(deps: FakeDependencies, who: str = ALICE, duration: timedelta = timedelta(hours=1)) -> AccessRequest:
    """Request, approve, and the flow's Grant step (what the state machine does once resumed with `approve`)."""
    request = request_access(deps, who, duration)
    approve(deps, request.id)
    assert (task_token(request.id), "approve") in deps.flow.resumed
    workflow_steps.grant(deps, request.id)
    grant = deps.store.get_request(request.id)
    assert grant.status == RequestStatus.ACTIVE
    return grant
