"""The in-process moto world the tests and the bench run in: a TrustGate stack, a managed role, and helpers.

`running_world()` provisions the stack from template.yaml into a fresh moto account (`mock_aws`, no server)
and hosts its handlers in this process (`trustgate_local.host`), with a movable clock and no real sleeping.
The local stack (`trustgate_local.server`) is the same stack behind a real HTTP gateway instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import boto3
from moto import mock_aws

from trustgate.adapters import wiring
from trustgate.adapters.scheduler import schedule_name
from trustgate.core.clock import SystemClock
from trustgate.core.records import ScheduleKind
from trustgate.core.settings import Settings
from trustgate_local import seed
from trustgate_local.clockwork import fire_target
from trustgate_local.host import FunctionHost, install, uninstall
from trustgate_local.polling import wait_until
from trustgate_local.provision import Stack, provision
from trustgate_local.seed import vendor_trust_policy

ORG_ID = seed.ORGANIZATION_ID
MANAGEMENT = seed.MANAGEMENT_ACCOUNT  # moto's default account holds the managed role
MEMBER = seed.MEMBER_ACCOUNT
ROLE_NAME = seed.ROLE_NAME
ROLE_ARN = f"arn:aws:iam::{MANAGEMENT}:role/{ROLE_NAME}"
ALICE = f"arn:aws:iam::{MEMBER}:user/alice"
BOB = f"arn:aws:iam::{MEMBER}:user/bob"
DAVE = f"arn:aws:iam::{MEMBER}:user/dave"
CAROL = f"arn:aws:iam::{MEMBER}:user/carol"
ERIN = f"arn:aws:iam::{MEMBER}:user/erin"
MALLORY = f"arn:aws:iam::{seed.OUTSIDER_ACCOUNT}:user/mallory"
VENDOR_TRUST = vendor_trust_policy(ORG_ID)
PARAMETERS = {
    "ManagedRoleArns": ROLE_ARN,
    "OrganizationId": ORG_ID,
    "AllowedAccountIds": f"{MEMBER},{MANAGEMENT}",
    "BootstrapAdmins": CAROL,
    "DefaultApprovers": f"{BOB},{DAVE}",
    "IdentityCenterAccountIds": f"{MEMBER},{MANAGEMENT}",
    "MinDuration": "PT1M",
}
ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": seed.REGION,
    "AWS_REGION": seed.REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


@dataclass
class World:
    """A running TrustGate in moto, with a movable clock and no real sleeping."""

    session: boto3.Session
    stack: Stack
    host: FunctionHost
    clock: SystemClock

    @property
    def deps(self) -> wiring.Dependencies:
        return wiring.dependencies()

    def trust_policy(self, role_name: str = ROLE_NAME) -> dict[str, Any]:
        document = self.session.client("iam").get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
        if isinstance(document, str):  # boto3 decodes the document; its stubs also allow the raw JSON
            return dict(json.loads(document))
        return dict(document)

    def session_guard(self) -> dict[str, Any] | None:
        """TrustGate's session-guard inline policy on the role, as IAM holds it (None when absent)."""
        return self.deps.roles.session_guard(ROLE_ARN)

    def role_id(self) -> str:
        return str(self.session.client("iam").get_role(RoleName=ROLE_NAME)["Role"]["RoleId"])

    def invoke(self, logical_id: str, event: Any) -> Any:
        return self.host.invoke(self.stack.functions[logical_id], event)

    def api(
        self,
        method: str,
        path: str,
        caller: str | None,
        body: Any = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Call the API function as API Gateway (AWS_IAM auth) would, as `caller`."""
        event = api_event(method, path, caller, body, query, headers)
        response = self.invoke("ApiFunction", event)
        content = response.get("body") or ""
        is_json = "json" in (response.get("headers") or {}).get("Content-Type", "application/json")
        return response["statusCode"], json.loads(content) if content and is_json else content

    def execution(self, request_id: str) -> dict[str, Any]:
        sfn = self.session.client("stepfunctions")
        arn = self.stack.attributes["ApprovalStateMachine"]["Arn"].replace(":stateMachine:", ":execution:")
        return dict(sfn.describe_execution(executionArn=f"{arn}:{request_id}"))

    def wait_execution(self, request_id: str, timeout: float = 20) -> dict[str, Any]:
        return wait_for(lambda: _finished(self.execution(request_id)), timeout, f"execution {request_id} to finish")

    def status(self, request_id: str) -> str:
        return self.deps.store.get_request(request_id).status.value

    def wait_status(self, request_id: str, status: str, timeout: float = 20) -> None:
        """Wait for a status; for `active`, also for the flow to finish (the trust policy is synced then)."""
        if status == "active":
            self.wait_execution(request_id, timeout)
        wait_for(lambda: self.status(request_id) == status, timeout, f"{request_id} to become {status}")

    def wait_for_task_token(self, request_id: str, timeout: float = 20) -> str:
        """The flow is waiting for a decision once the notify step stored its task token."""
        return wait_for(lambda: self.deps.store.get_task_token(request_id), timeout, f"{request_id} to await approval")

    def schedule(self, request_id: str, kind: ScheduleKind = "expire") -> dict[str, Any]:
        group = self.stack.refs["ExpiryScheduleGroup"]
        client = self.session.client("scheduler")
        return dict(client.get_schedule(Name=schedule_name(request_id, kind), GroupName=group))

    def fire_schedule(self, request_id: str, kind: ScheduleKind = "expire") -> Any:
        """Do what EventBridge Scheduler does at the schedule's time: invoke its target with its input."""
        what, answer = fire_target(self.session, self.host, self.schedule(request_id, kind)["Target"])
        return answer["executionArn"] if what == "ApprovalStateMachine" else answer

    def advance(self, by: timedelta) -> None:
        self.clock.advance(by)


def _finished(execution: dict[str, Any]) -> dict[str, Any] | None:
    return execution if execution["status"] != "RUNNING" else None


def wait_for[T](probe: Callable[[], T | None], timeout: float, what: str) -> T:
    return wait_until(probe, what, timeout)


def api_event(
    method: str,
    path: str,
    caller: str | None,
    body: Any = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event as AWS_IAM auth fills it in."""
    account = caller.split(":")[4] if caller else None
    identity: dict[str, Any] = {"sourceIp": "203.0.113.10", "userAgent": "pytest"}
    if caller:
        unique = "AIDA" + caller.rsplit("/", 1)[-1].upper().ljust(16, "X")
        identity |= {"userArn": caller, "accountId": account, "caller": unique, "user": unique}
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "multiValueHeaders": {},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in (query or {}).items()} or None,
        "pathParameters": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": "test-request",
            "identity": identity,
        },
        "body": json.dumps(body) if body is not None and not isinstance(body, str) else body,
        "isBase64Encoded": False,
    }


def _create_managed_role(session: boto3.Session) -> None:
    """The vendor's role with the vendor's default trust: all the organization the world needs."""
    iam = session.client("iam")
    iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(VENDOR_TRUST))


@contextmanager
def running_world(parameters: dict[str, str] | None = None) -> Iterator[World]:
    """A fresh moto account with the stack provisioned from template.yaml and handlers hosted in-process."""
    saved = dict(os.environ)
    os.environ.update(ENVIRONMENT)
    try:
        with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
            session = boto3.Session(region_name=seed.REGION)
            _create_managed_role(session)
            stack = provision(
                session,
                {**PARAMETERS, **(parameters or {})},
                environment_overrides={"APPROVAL_BASE_URL": "http://127.0.0.1:3000"},
            )
            host = install(stack)
            clock = SystemClock()
            wiring.reset(wiring.Dependencies(Settings.from_env(os.environ), session, clock, sleep=lambda _: None))
            try:
                yield World(session, stack, host, clock)
            finally:
                uninstall()
                wiring.reset()
    finally:
        os.environ.clear()
        os.environ.update(saved)
