"""Measure 5: approval latency and expiry lag, end to end in the local stack.

Approval latency: from the approver's `POST /requests/{id}/approve` until the role's trust policy (read from
IAM) names the requester; the flow is already waiting for the decision, as it is when a person approves.
Expiry lag: from the moment the clock reaches `expires_at` (`POST /_local/advance`, which fires whatever
became due) until the principal is gone from the trust policy. (IAM itself refuses the principal from
`expires_at` on, by the statement's DateLessThan condition; this lag is how long the policy still names it.)

The local stack (`trustgate_local.server.LocalStack`: HTTP + SigV4, moto in server mode) is preferred; if it
cannot start, the same steps run in-process against `running_world()` and the section says so. Switching is
the choice of driver only.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from bench.results import Section, median
from bench.world import BenchWorld
from trustgate.adapters.store import Store
from trustgate.core.clock import parse_rfc3339
from trustgate.core.trust_policy import aws_principals, is_managed, statements_of
from trustgate_local.clockwork import fire_target
from trustgate_local.world import ALICE, BOB

GOAL_SECONDS = 1.0
POLL_SECONDS = 0.005
BODY = {"role": "PumpCustomerAccess", "duration": "PT1H", "justification": "rotate the CloudTrail bucket policy"}


class Driver(Protocol):
    """The steps a person and EventBridge take, against one running TrustGate."""

    name: str
    requester_arn: str

    def request(self) -> str: ...
    def approve(self, request_id: str) -> None: ...
    def awaiting_decision(self, request_id: str) -> bool: ...
    def expires_at(self, request_id: str) -> datetime | None: ...
    def now(self) -> datetime: ...
    def advance(self, by: timedelta) -> None: ...
    def trust_policy(self) -> dict[str, Any]: ...


def names(policy: dict[str, Any], principal: str) -> bool:
    return any(principal in aws_principals(s) for s in statements_of(policy) if is_managed(s))


def _until(probe: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.perf_counter()
    while not probe():
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(POLL_SECONDS)
    return time.perf_counter() - started


def _has_expiry(driver: Driver, request_id: str) -> bool:
    return driver.expires_at(request_id) is not None


def measure(driver: Driver, rounds: int) -> tuple[list[float], list[float]]:
    approvals: list[float] = []
    lags: list[float] = []
    for _ in range(rounds):
        request_id = driver.request()
        _until(partial(driver.awaiting_decision, request_id), 30, "the flow to wait for approval")
        started = time.perf_counter()
        driver.approve(request_id)
        _until(lambda: names(driver.trust_policy(), driver.requester_arn), 30, "the grant in the trust policy")
        approvals.append(time.perf_counter() - started)
        # The policy names the principal before the request reads active (sync writes, verifies, then marks it).
        _until(partial(_has_expiry, driver, request_id), 30, "the grant to read active")
        expires_at = driver.expires_at(request_id)
        assert expires_at is not None
        due = expires_at - driver.now()
        started = time.perf_counter()
        driver.advance(due + timedelta(milliseconds=10))
        _until(lambda: not names(driver.trust_policy(), driver.requester_arn), 60, "the principal to leave")
        lags.append(time.perf_counter() - started)
    return approvals, lags


# -- the local stack over HTTP ---------------------------------------------------------------------


class LocalStackDriver:
    name = "local stack (HTTP, SigV4, moto server)"

    def __init__(self, local: Any) -> None:
        from botocore.credentials import ReadOnlyCredentials

        from trustgate_cli.client import ApiClient

        self.local = local
        organization = local.organization
        requester, approver = organization.user("requester"), organization.user("approver")
        self.requester_arn = requester.arn

        def client(user: Any) -> Any:
            credentials = ReadOnlyCredentials(user.access_key_id, user.secret_access_key, None)
            return ApiClient(local.endpoint, "us-east-1", lambda: credentials)

        self.requester, self.approver = client(requester), client(approver)
        aws = local.session  # moto's own credentials, as the stack's functions use
        self.iam: Any = aws.client("iam", endpoint_url=local.aws_endpoint)
        self.store = Store(aws.client("dynamodb", endpoint_url=local.aws_endpoint), local.stack.refs["Table"])
        self.role_name = organization.role_arn.rsplit("/", 1)[-1]

    def request(self) -> str:
        return str(self.requester.post("/requests", BODY)["id"])

    def approve(self, request_id: str) -> None:
        self.approver.post(f"/requests/{request_id}/approve", {"comment": "ok"})

    def awaiting_decision(self, request_id: str) -> bool:
        return self.store.get_task_token(request_id) is not None

    def expires_at(self, request_id: str) -> datetime | None:
        value = self.requester.get(f"/requests/{request_id}").get("expires_at")
        return parse_rfc3339(value) if value else None

    def now(self) -> datetime:
        offset: timedelta = self.local.clock.offset  # the stack's clock: wall time moved by /_local/advance
        return datetime.now(UTC) + offset

    def advance(self, by: timedelta) -> None:
        import urllib.request

        body = json.dumps({"by": f"PT{math.ceil(by.total_seconds())}S"}).encode()  # whole seconds only
        request = urllib.request.Request(f"{self.local.endpoint}/_local/advance", data=body, method="POST")  # noqa: S310 - loopback
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback
            response.read()

    def trust_policy(self) -> dict[str, Any]:
        document = self.iam.get_role(RoleName=self.role_name)["Role"]["AssumeRolePolicyDocument"]
        return dict(document)


@contextmanager
def local_stack() -> Iterator[LocalStackDriver]:
    from trustgate_local.server import LocalStack

    with tempfile.TemporaryDirectory(prefix="trustgate-bench-local-") as state:
        local = LocalStack(port=0, aws_port=0, state_dir=Path(state), tick_interval=0.2)
        local.start()
        try:
            yield LocalStackDriver(local)
        finally:
            local.stop()


# -- in-process, against running_world() -----------------------------------------------------------


class InProcessDriver:
    name = "in-process (running_world, moto decorator mode)"

    def __init__(self, bench: BenchWorld) -> None:
        self.bench = bench
        self.requester_arn, self.approver_arn = ALICE, BOB
        self.store = bench.observer_store()
        self.iam: Any = bench.observer.client("iam")

    def request(self) -> str:
        status, body = self.bench.world.api("POST", "/requests", self.requester_arn, BODY)
        assert status == 201, body
        return str(body["id"])

    def approve(self, request_id: str) -> None:
        status, body = self.bench.world.api("POST", f"/requests/{request_id}/approve", self.approver_arn, {})
        assert status == 200, body

    def awaiting_decision(self, request_id: str) -> bool:
        return self.store.get_task_token(request_id) is not None

    def expires_at(self, request_id: str) -> datetime | None:
        request = self.store.get_request(request_id)
        return request.expires_at if request.status.value == "active" else None

    def now(self) -> datetime:
        now: datetime = self.bench.world.clock.now()
        return now

    def advance(self, by: timedelta) -> None:
        """Move the clock, then do what Scheduler does for every schedule now due (expiry, reminders)."""
        world = self.bench.world
        world.advance(by)
        scheduler = self.bench.observer.client("scheduler")
        group = world.stack.refs["ExpiryScheduleGroup"]
        for entry in scheduler.list_schedules(GroupName=group)["Schedules"]:
            schedule = scheduler.get_schedule(Name=entry["Name"], GroupName=group)
            at = datetime.fromisoformat(schedule["ScheduleExpression"][3:-1]).replace(tzinfo=UTC)
            if at <= world.clock.now():
                fire_target(world.session, world.host, schedule["Target"])
                scheduler.delete_schedule(Name=entry["Name"], GroupName=group)  # ActionAfterCompletion: DELETE

    def trust_policy(self) -> dict[str, Any]:
        return dict(self.iam.get_role(RoleName="PumpCustomerAccess")["Role"]["AssumeRolePolicyDocument"])


def _report(section: Section, driver_name: str, approvals: list[float], lags: list[float]) -> None:
    section.details["driver"] = driver_name
    section.details["approval_seconds"] = [round(s, 4) for s in approvals]
    section.details["expiry_lag_seconds"] = [round(s, 4) for s in lags]
    section.add(
        "approve → trust policy names the principal (median)",
        round(median(approvals) * 1000, 1),
        "ms",
        goal=f"<= {GOAL_SECONDS * 1000:.0f} ms",
        met=median(approvals) <= GOAL_SECONDS,
        note=f"{len(approvals)} approvals; max {max(approvals) * 1000:.0f} ms; {driver_name}",
    )
    section.add(
        "expires_at → principal gone (median)",
        round(median(lags) * 1000, 1),
        "ms",
        note=f"max {max(lags) * 1000:.0f} ms; IAM's DateLessThan refuses the principal from expires_at on",
    )


def run_local_stack(quick: bool) -> Section | None:
    """The local stack's numbers, or None (with the reason kept) if it cannot run here."""
    section = Section("approval latency")
    rounds = 3 if quick else 20
    try:
        with local_stack() as driver:
            approvals, lags = measure(driver, rounds)
    except Exception:  # the local stack is optional for the bench: fall back, but keep the reason
        run_local_stack.failure = traceback.format_exc(limit=3)  # type: ignore[attr-defined]
        return None
    _report(section, driver.name, approvals, lags)
    return section


def run_in_process(bench: BenchWorld, quick: bool, reason: str) -> Section:
    section = Section("approval latency")
    approvals, lags = measure(InProcessDriver(bench), 3 if quick else 20)
    _report(section, InProcessDriver.name, approvals, lags)
    section.details["why_not_the_local_stack"] = reason
    return section
