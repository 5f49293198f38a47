"""Measure 3: what one access lifecycle costs, counted: request → approve → grant → expire, and an
auto-approved request → grant → expire. Step Functions state transitions come from the execution history,
Lambda invocations from the function host, AWS calls per service from botocore's hooks; dollars per 1,000
lifecycles from `bench.prices`.

Expiry is driven the way EventBridge Scheduler drives it: the clock moves past `expires_at`, and the grant's
own schedule target (the expire function, with the schedule's input) is invoked once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import prices
from bench.counting import Call, per_operation, per_service, repeated_reads
from bench.dynamodb_units import indexes_from_template, units_of
from bench.results import Section
from bench.world import BenchWorld
from trustgate.core.ids import new_id
from trustgate.core.models import AuditEvent, AutoApproveRule, RolePolicy
from trustgate_local.clockwork import fire_target
from trustgate_local.template import load_template
from trustgate_local.world import ALICE, BOB, ROLE_ARN

ROOT = Path(__file__).resolve().parents[1]
GOAL_TRANSITIONS = 10
GOAL_INVOCATIONS = 5
GOAL_DYNAMODB_UNITS = 60  # read and write request units per approved lifecycle
BODY = {"role": "PumpCustomerAccess", "duration": "PT1H", "justification": "rotate the CloudTrail bucket policy"}


@dataclass
class Lifecycle:
    kind: str
    request_id: str
    transitions: int
    states: list[str]
    invocations: dict[str, int]
    invocation_seconds: float
    api_requests: int
    scheduled_invocations: int
    calls: list[Call] = field(default_factory=list)

    @property
    def invocation_count(self) -> int:
        return sum(self.invocations.values())


def _memory_gb() -> float:
    template = load_template(ROOT / "template.yaml")
    return int(template.get("Globals", {}).get("Function", {}).get("MemorySize", 128)) / 1024


def _history(bench: BenchWorld, request_id: str) -> list[dict[str, Any]]:
    sfn: Any = bench.observer.client("stepfunctions")
    arn = bench.world.stack.attributes["ApprovalStateMachine"]["Arn"].replace(":stateMachine:", ":execution:")
    execution = f"{arn}:{request_id}"
    bench.wait_for(lambda: sfn.describe_execution(executionArn=execution)["status"] != "RUNNING", 30, "the flow")
    events: list[dict[str, Any]] = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    return events


def _fire_schedules(bench: BenchWorld, request_id: str) -> int:
    """What Scheduler does: at each of the request's one-time schedules (expiry, and a reminder if the code
    makes one), in time order, move the clock there and invoke the target with the schedule's input, once."""
    world = bench.world
    client: Any = bench.observer.client("scheduler")
    group = world.stack.refs["ExpiryScheduleGroup"]
    names = [s["Name"] for s in client.list_schedules(GroupName=group)["Schedules"] if request_id in s["Name"]]
    schedules = sorted((client.get_schedule(Name=n, GroupName=group) for n in names), key=_at)
    for schedule in schedules:
        due = _at(schedule)
        if due > world.clock.now():
            world.advance(due - world.clock.now() + timedelta(seconds=1))
        fire_target(world.session, world.host, schedule["Target"])
    return len(schedules)


def _at(schedule: dict[str, Any]) -> datetime:
    expression = schedule["ScheduleExpression"]  # at(2026-11-26T10:00:00), in UTC as TrustGate writes it
    return datetime.fromisoformat(expression[3:-1]).replace(tzinfo=UTC)


def _measure(bench: BenchWorld, kind: str, approve: bool) -> Lifecycle:
    world, store = bench.world, bench.observer_store()
    bench.recorder.reset()
    first = len(bench.invocations)
    status, body = world.api("POST", "/requests", ALICE, BODY)
    assert status == 201, body
    request_id = body["id"]
    api_requests = 1
    if approve:
        bench.wait_for(lambda: store.get_task_token(request_id), 30, "the flow to wait for approval")
        status, body = world.api("POST", f"/requests/{request_id}/approve", BOB, {"comment": "ok"})
        assert status == 200, body
        api_requests += 1
    bench.wait_for(lambda: store.get_request(request_id).status.value == "active", 30, "the grant")
    events = _history(bench, request_id)
    fired = _fire_schedules(bench, request_id)
    assert store.get_request(request_id).status.value == "expired"
    calls = bench.recorder.reset()
    invoked = bench.invocations[first:]
    counts: dict[str, int] = {}
    for invocation in invoked:
        counts[invocation.function] = counts.get(invocation.function, 0) + 1
    states = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]
    return Lifecycle(
        kind, request_id, len(states), states, counts, sum(i.seconds for i in invoked), api_requests, fired, calls
    )


def _auto_approve_policy(bench: BenchWorld, policy: RolePolicy) -> None:
    store = bench.world.deps.store
    _, version = store.get_role_policy(ROLE_ARN)
    now = bench.world.clock.now()
    audit = AuditEvent(id=new_id(now), at=now, actor="bench", action="policy.changed", role_arn=ROLE_ARN)
    store.put_role_policy(ROLE_ARN, policy, version, audit)


def cost_per_thousand(lifecycle: Lifecycle, memory_gb: float) -> dict[str, float]:
    """US dollars per 1,000 such lifecycles, per service, at `bench.prices` (list prices, no free tier)."""
    services = per_operation(lifecycle.calls)
    units = units_of(lifecycle.calls, indexes_from_template(load_template(ROOT / "template.yaml")))
    publishes = services.get("sns.Publish", 0)
    events = sum(len(c.params.get("Entries", [])) for c in lifecycle.calls if c.key == "events.PutEvents")
    cost = {
        "step_functions": prices.STEP_FUNCTIONS_TRANSITION.cost(lifecycle.transitions),
        "lambda_requests": prices.LAMBDA_REQUEST.cost(lifecycle.invocation_count),
        "lambda_duration": prices.LAMBDA_ARM_GB_SECOND.cost(lifecycle.invocation_seconds * memory_gb),
        "dynamodb_writes": prices.DYNAMODB_WRITE_UNIT.cost(units.total_write),
        "dynamodb_reads": prices.DYNAMODB_READ_UNIT.cost(units.read),
        "scheduler": prices.SCHEDULER_INVOCATION.cost(lifecycle.scheduled_invocations),
        "sns": prices.SNS_PUBLISH.cost(publishes),
        "eventbridge": prices.EVENTBRIDGE_EVENT.cost(events),
        "api_gateway": prices.API_GATEWAY_REST_REQUEST.cost(lifecycle.api_requests),
    }
    return {k: round(v * 1000, 5) for k, v in cost.items()}


def run(bench: BenchWorld, quick: bool) -> Section:
    """One lifecycle of each kind is exact (counts do not vary); quick and full mode measure the same."""
    section = Section("lifecycle")
    memory_gb = _memory_gb()
    approved = _measure(bench, "approved", approve=True)
    _auto_approve_policy(bench, RolePolicy(auto_approve=[AutoApproveRule(principals=[ALICE])]))
    try:
        auto = _measure(bench, "auto-approved", approve=False)
    finally:
        _auto_approve_policy(bench, RolePolicy())
    for lifecycle in (approved, auto):
        is_approved = lifecycle.kind == "approved"
        cost = cost_per_thousand(lifecycle, memory_gb)
        units = units_of(lifecycle.calls, indexes_from_template(load_template(ROOT / "template.yaml")))
        section.add(
            f"{lifecycle.kind}: Step Functions state transitions",
            lifecycle.transitions,
            "transitions",
            goal=f"<= {GOAL_TRANSITIONS}" if is_approved else "",
            met=lifecycle.transitions <= GOAL_TRANSITIONS if is_approved else None,
            note=" → ".join(lifecycle.states),
        )
        section.add(
            f"{lifecycle.kind}: Lambda invocations",
            lifecycle.invocation_count,
            "invocations",
            goal=f"<= {GOAL_INVOCATIONS}" if is_approved else "",
            met=lifecycle.invocation_count <= GOAL_INVOCATIONS if is_approved else None,
            note=", ".join(f"{k} {v}" for k, v in sorted(lifecycle.invocations.items())),
        )
        section.add(
            f"{lifecycle.kind}: AWS calls",
            len(lifecycle.calls),
            "calls",
            note=", ".join(f"{k} {v}" for k, v in per_service(lifecycle.calls).items()),
        )
        section.add(
            f"{lifecycle.kind}: DynamoDB request units",
            round(units.total_write + units.read, 1),
            "units",
            goal=f"<= {GOAL_DYNAMODB_UNITS}" if is_approved else "",
            met=units.total_write + units.read <= GOAL_DYNAMODB_UNITS if is_approved else None,
            note=f"{units.write:g} WRU table + {units.index_write:g} WRU indexes + {units.read:g} RRU",
        )
        section.add(
            f"{lifecycle.kind}: USD per 1,000 lifecycles",
            round(sum(cost.values()), 4),
            "USD",
            note=", ".join(f"{k} {v:.4f}" for k, v in sorted(cost.items(), key=lambda kv: -kv[1]) if v),
        )
        section.details[lifecycle.kind] = {
            "request_id": lifecycle.request_id,
            "states": lifecycle.states,
            "invocations": lifecycle.invocations,
            "invocation_seconds_measured_in_process": round(lifecycle.invocation_seconds, 3),
            "calls_per_operation": per_operation(lifecycle.calls),
            "repeated_reads": repeated_reads(lifecycle.calls),
            "dynamodb_units_by_operation": units.by_operation,
            "usd_per_1000": cost,
        }
    section.details["prices"] = {name: vars(price) for name, price in prices.ALL.items()}
    section.details["prices_checked"] = prices.CHECKED
    section.details["lambda_duration"] = (
        f"measured: each handler's wall time in-process against moto, billed at {memory_gb:g} GB; real AWS calls "
        "are slower (IAM ~50-200 ms), so on AWS this line is a lower bound"
    )
    return section
