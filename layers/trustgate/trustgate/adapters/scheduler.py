"""EventBridge Scheduler adapter: self-deleting `at()` schedules per grant. Its expiry and the reminder before it
invoke the expire function; a scheduled request's start starts an approval-flow execution with
{request_id, start: true}, which goes straight to its Grant step (retries, failure handling and all)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from trustgate.core.records import SCHEDULE_KINDS, ScheduleKind, ScheduleRef

if TYPE_CHECKING:
    from mypy_boto3_scheduler import EventBridgeSchedulerClient


PREFIX = "trustgate-"
# What each kind's target is told besides the request id: the expire function's input (core/steps.ExpiryStep),
# or the approval flow's (statemachine/approval.asl.json).
_PAYLOADS: dict[ScheduleKind, dict[str, object]] = {
    "expire": {},
    "remind": {"reminder": True},
    "start": {"start": True},
}


def schedule_name(request_id: str, kind: ScheduleKind = "expire") -> str:
    return f"{PREFIX}{kind}-{request_id}"


def parse_schedule_name(name: str) -> ScheduleRef | None:
    """The grant a schedule belongs to, from its name (None for a name TrustGate does not give)."""
    for kind in SCHEDULE_KINDS:
        prefix = f"{PREFIX}{kind}-"
        if name.startswith(prefix) and len(name) > len(prefix):
            return ScheduleRef(name[len(prefix) :], kind)
    return None


class ExpirySchedules:
    def __init__(
        self,
        client: EventBridgeSchedulerClient,
        group: str,
        target_arn: str,
        role_arn: str,
        dead_letter_arn: str,
        state_machine_arn: str = "",
    ) -> None:
        self.client = client
        self.group = group
        self.target_arn = target_arn
        self.role_arn = role_arn
        self.dead_letter_arn = dead_letter_arn
        self.state_machine_arn = state_machine_arn

    def create(self, request_id: str, at: datetime, kind: ScheduleKind = "expire") -> None:
        """Schedule the grant's expiry (its reminder, its start); an existing one is replaced, so retries are safe."""
        payload: dict[str, object] = {"request_id": request_id, **_PAYLOADS[kind]}
        target: dict[str, object] = {
            "Arn": self.state_machine_arn if kind == "start" else self.target_arn,
            "RoleArn": self.role_arn,
            "Input": json.dumps(payload),
            "RetryPolicy": {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 10},
        }
        if self.dead_letter_arn:
            target["DeadLetterConfig"] = {"Arn": self.dead_letter_arn}
        arguments: dict[str, object] = {
            "Name": schedule_name(request_id, kind),
            "GroupName": self.group,
            "ScheduleExpression": f"at({at.astimezone(UTC):%Y-%m-%dT%H:%M:%S})",
            "ScheduleExpressionTimezone": "UTC",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": target,
            "ActionAfterCompletion": "DELETE",
        }
        try:
            self.client.create_schedule(**arguments)  # type: ignore[arg-type]
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConflictException":
                raise
            self.client.update_schedule(**arguments)  # type: ignore[arg-type]

    def delete(self, request_id: str) -> None:
        """Remove a grant's schedules; already gone (fired, or never made) is fine."""
        for kind in SCHEDULE_KINDS:
            try:
                self.client.delete_schedule(Name=schedule_name(request_id, kind), GroupName=self.group)
            except ClientError as error:
                if error.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise

    def listed(self) -> Iterator[ScheduleRef]:
        """Every TrustGate schedule in the group, page by page (the reconciler compares them with the grants)."""
        for page in self.client.get_paginator("list_schedules").paginate(GroupName=self.group, NamePrefix=PREFIX):
            for schedule in page.get("Schedules", []):
                ref = parse_schedule_name(schedule.get("Name", ""))
                if ref is not None:
                    yield ref
