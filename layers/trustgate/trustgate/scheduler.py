"""EventBridge Scheduler adapter: one self-deleting `at()` schedule per grant, targeting the expire function."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_scheduler import EventBridgeSchedulerClient


def schedule_name(request_id: str, reminder: bool = False) -> str:
    return f"trustgate-{'remind' if reminder else 'expire'}-{request_id}"


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
