"""What EventBridge does for TrustGate, on the stack's movable clock: fire due Scheduler schedules (one
`at()` schedule per grant) and run the template's `Schedule` rules (reconcile, `rate(5 minutes)`).

Time is `trustgate.core.clock.system_clock`, the same clock the handlers read, so `POST /_local/advance`
moves everything together; `advance` then runs at once whatever became due.
"""

from __future__ import annotations

import json
import re
import threading
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import boto3
from botocore.exceptions import ClientError

from trustgate.core.clock import SystemClock, to_rfc3339
from trustgate_local.host import FunctionHost
from trustgate_local.provision import ScheduleRule, Stack

_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
DEFAULT_MAX_RETRIES = 185  # EventBridge Scheduler's default MaximumRetryAttempts


@dataclass(frozen=True)
class Run:
    """One invocation the clockwork made."""

    kind: str  # schedule | rule
    name: str
    function: str
    at: str
    result: Any = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_rate(expression: str) -> timedelta:
    """`rate(5 minutes)` as a timedelta; anything else (cron) is refused with a clear error."""
    match = _RATE.match(expression.strip())
    if not match:
        raise ValueError(f"the local stack runs rate(...) schedules only, not {expression!r}")
    unit = match.group(2).rstrip("s")
    return timedelta(**{f"{unit}s": int(match.group(1))})


def parse_at(expression: str, timezone: str | None) -> datetime | None:
    """The time of a one-time `at(...)` schedule, or None for recurring ones."""
    match = _AT.match(expression.strip())
    if not match:
        return None
    return datetime.fromisoformat(match.group(1)).replace(tzinfo=ZoneInfo(timezone or "UTC"))


@dataclass
class _Rule:
    rule: ScheduleRule
    period: timedelta
    next_due: datetime


@dataclass
class _Attempts:
    failures: dict[str, int] = field(default_factory=dict)
    # One-time schedules kept after firing (ActionAfterCompletion NONE), by name and expression:
    # updating a schedule to a new time makes it due again.
    completed: set[str] = field(default_factory=set)


def is_state_machine(arn: str) -> bool:
    """Is a schedule's target a Step Functions state machine (Scheduler's StartExecution target)?"""
    return arn.split(":")[2:3] == ["states"] and ":stateMachine:" in arn


def is_sns_publish(arn: str) -> bool:
    """Is a schedule's target Scheduler's universal target for SNS Publish (a grant's reminder)?"""
    return arn.split(":")[2:3] == ["scheduler"] and arn.endswith(":aws-sdk:sns:publish")


def fire_target(session: boto3.Session, host: FunctionHost, target: Mapping[str, Any]) -> tuple[str, Any]:
    """Do what EventBridge Scheduler does with a schedule's target: start the approval flow (a scheduled request's
    start), publish the Publish request it holds (a reminder), or invoke the function. What ran, and its answer."""
    arn, payload = target["Arn"], target.get("Input") or "{}"
    if is_state_machine(arn):
        execution = session.client("stepfunctions").start_execution(stateMachineArn=arn, input=payload)
        return "ApprovalStateMachine", {"executionArn": execution["executionArn"]}
    if is_sns_publish(arn):
        return "SNS Publish", {"MessageId": session.client("sns").publish(**json.loads(payload))["MessageId"]}
    function = host.stack.function_by_arn(arn)
    return function.logical_id, host.invoke(function, json.loads(payload))


def _key(schedule: dict[str, Any]) -> str:
    return f"{schedule['Name']}@{schedule['ScheduleExpression']}"


class Clockwork:
    """Fires due schedules and rules every `interval` seconds (real time), judged on the stack's clock."""

    def __init__(
        self,
        session: boto3.Session,
        stack: Stack,
        host: FunctionHost,
        clock: SystemClock,
        schedule_group: str,
        *,
        interval: float = 1.0,
        log: Callable[[str], None] = print,
    ) -> None:
        self.session = session
        self.scheduler = session.client("scheduler")
        self.sqs = session.client("sqs")
        self.stack = stack
        self.host = host
        self.clock = clock
        self.group = schedule_group
        self.interval = interval
        self.log = log
        now = clock.now()
        self.rules = [
            _Rule(rule, parse_rate(rule.expression), now + parse_rate(rule.expression)) for rule in stack.schedules
        ]
        self._attempts = _Attempts()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="trustgate-clockwork", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def tick(self) -> list[Run]:
        """Run whatever is due now."""
        with self._lock:
            return self._run_due()

    def advance(self, by: timedelta) -> tuple[datetime, list[Run]]:
        """Move the clock forward and run what became due, atomically with respect to the ticker."""
        if by < timedelta(0):
            raise ValueError("the clock only moves forward")
        with self._lock:
            self.clock.advance(by)
            return self.clock.now(), self._run_due()

    def _loop(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.tick()
            except Exception as error:  # keep ticking: a transient failure must not stop expiries
                if not self._stopping.is_set():
                    self.log(f"clockwork: {error}")

    def _run_due(self) -> list[Run]:
        runs = self._fire_schedules()
        now = self.clock.now()
        for rule in self.rules:
            if rule.next_due <= now:
                runs.append(self._run_rule(rule.rule, now))
                # EventBridge does not replay the runs a jump in time skipped: one run, then the next period.
                rule.next_due += rule.period
                if rule.next_due <= now:
                    rule.next_due = now + rule.period
        return runs

    def _fire_schedules(self) -> list[Run]:
        runs = []
        now = self.clock.now()
        names = self._schedule_names()
        self._forget_deleted(set(names))
        for name in names:
            try:
                schedule: dict[str, Any] = dict(self.scheduler.get_schedule(Name=name, GroupName=self.group))
            except ClientError:
                continue  # deleted meanwhile (a revoke)
            if _key(schedule) in self._attempts.completed:
                continue
            at = parse_at(schedule["ScheduleExpression"], schedule.get("ScheduleExpressionTimezone"))
            if at is None or schedule.get("State", "ENABLED") != "ENABLED" or at > now:
                continue
            runs.append(self._fire(name, schedule, now))
        return runs

    def _forget_deleted(self, names: set[str]) -> None:
        """Drop what is remembered of schedules that are gone (a revoke deletes its grant's), so it stays bounded."""
        attempts = self._attempts
        attempts.completed = {key for key in attempts.completed if key.rsplit("@", 1)[0] in names}
        attempts.failures = {name: count for name, count in attempts.failures.items() if name in names}

    def _schedule_names(self) -> list[str]:
        names: list[str] = []
        for page in self.scheduler.get_paginator("list_schedules").paginate(GroupName=self.group):
            names.extend(s["Name"] for s in page.get("Schedules", []))
        return names

    def _fire(self, name: str, schedule: dict[str, Any], now: datetime) -> Run:
        try:
            what, result = fire_target(self.session, self.host, schedule["Target"])
        except Exception as error:
            return self._failed(name, schedule, now, error)
        self._complete(name, schedule)
        run = Run("schedule", name, what, to_rfc3339(now), result=result)
        self.log(f"[{run.at}] schedule {name} fired: {what} -> {json.dumps(result, default=str)}")
        return run

    def _failed(self, name: str, schedule: dict[str, Any], now: datetime, error: Exception) -> Run:
        failures = self._attempts.failures.get(name, 0) + 1
        self._attempts.failures[name] = failures
        target = schedule["Target"]
        limit = (target.get("RetryPolicy") or {}).get("MaximumRetryAttempts", DEFAULT_MAX_RETRIES)
        detail = "".join(traceback.format_exception_only(error)).strip()
        if failures > limit:
            # Out of retries: as Scheduler does, hand the event to the dead-letter queue and give up.
            dead_letter = (target.get("DeadLetterConfig") or {}).get("Arn")
            if dead_letter:
                queue_url = self.sqs.get_queue_url(QueueName=dead_letter.rsplit(":", 1)[-1])["QueueUrl"]
                self.sqs.send_message(QueueUrl=queue_url, MessageBody=target.get("Input") or "{}")
            self._complete(name, schedule)
        self.log(f"[{to_rfc3339(now)}] schedule {name} failed (attempt {failures}): {detail}")
        return Run("schedule", name, target["Arn"], to_rfc3339(now), error=detail)

    def _complete(self, name: str, schedule: dict[str, Any]) -> None:
        self._attempts.failures.pop(name, None)
        if schedule.get("ActionAfterCompletion") == "DELETE":
            try:
                self.scheduler.delete_schedule(Name=name, GroupName=self.group)
                return
            except ClientError:
                pass
        self._attempts.completed.add(_key(schedule))

    def _run_rule(self, rule: ScheduleRule, now: datetime) -> Run:
        name = f"{self.stack.name}-{rule.function}"
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.stack.account,
            "time": to_rfc3339(now),
            "region": self.stack.region,
            "resources": [f"arn:aws:events:{self.stack.region}:{self.stack.account}:rule/{name}"],
            "detail": {},
        }
        try:
            result = self.host.invoke(self.stack.functions[rule.function], event)
        except Exception as error:
            detail = "".join(traceback.format_exception_only(error)).strip()
            self.log(f"[{to_rfc3339(now)}] rule {rule.expression} -> {rule.function} failed: {detail}")
            return Run("rule", name, rule.function, to_rfc3339(now), error=detail)
        self.log(f"[{to_rfc3339(now)}] rule {rule.expression} ran {rule.function} -> {json.dumps(result, default=str)}")
        return Run("rule", name, rule.function, to_rfc3339(now), result=result)
