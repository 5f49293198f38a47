"""EventBridge Scheduler adapter: one self-deleting `at()` schedule per grant, targeting the expire function."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from trustgate.core.records import ScheduleRef

if TYPE_CHECKING:
    from mypy_boto3_scheduler import EventBridgeSchedulerClient


PREFIX = "trustgate-"
EXPIRE_PREFIX = f"{PREFIX}expire-"
REMIND_PREFIX = f"{PREFIX}remind-"


def schedule_name(request_id: str, reminder: bool = False) -> str:
    return f"{REMIND_PREFIX if reminder else EXPIRE_PREFIX}{request_id}"


def parse_schedule_name(name: str) -> ScheduleRef | None:
    """The grant a schedule belongs to, from its name (None for a name TrustGate does not give)."""
    for prefix, reminder in ((EXPIRE_PREFIX, False), (REMIND_PREFIX, True)):
        if name.startswith(prefix) and len(name) > len(prefix):
            return ScheduleRef(name[len(prefix) :], reminder)
    return None


class ExpirySchedules:
    def __init__(
        self, client: EventBridgeSchedulerClient, group: str, target_arn: str, role_arn: str, dead_letter_arn: str
    ) -> None:
        self.client = client
        self.group = group
        self.target_arn = target_arn
        self.role_arn = role_arn
        self.dead_letter_arn = dead_letter_arn

    def create(self, request_id: str, at: datetime, reminder: bool = False) -> None:
        """Schedule the grant's expiry (or its reminder); an existing one is replaced, so retries are safe."""
        payload: dict[str, object] = {"request_id": request_id}
        if reminder:
            payload["reminder"] = True
        target: dict[str, object] = {
            "Arn": self.target_arn,
            "RoleArn": self.role_arn,
            "Input": json.dumps(payload),
            "RetryPolicy": {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 10},
        }
        if self.dead_letter_arn:
            target["DeadLetterConfig"] = {"Arn": self.dead_letter_arn}
        arguments: dict[str, object] = {
            "Name": schedule_name(request_id, reminder),
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
        for reminder in (False, True):
            try:
                self.client.delete_schedule(Name=schedule_name(request_id, reminder), GroupName=self.group)
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
