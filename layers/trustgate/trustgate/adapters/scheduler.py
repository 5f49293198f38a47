"""EventBridge Scheduler adapter: self-deleting `at()` schedules per grant. Its expiry invokes the expire function;
the reminder before it publishes its message to the personal topic itself (Scheduler's universal target for SNS
Publish: no Lambda), or, where chat webhooks also deliver, invokes the expire function, which sends it everywhere.
A scheduled request's start starts an approval-flow execution with {request_id, start: true}, which goes straight to
its Grant step (retries, failure handling and all)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from trustgate.adapters.notify import publish_arguments
from trustgate.core.messages import Notification
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


def sns_publish_target(partition: str) -> str:
    """Scheduler's universal target for SNS Publish: the schedule's input is the Publish request itself."""
    return f"arn:{partition}:scheduler:::aws-sdk:sns:publish"


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
        reminder_topic_arn: str = "",
    ) -> None:
        self.client = client
        self.group = group
        self.target_arn = target_arn
        self.role_arn = role_arn
        self.dead_letter_arn = dead_letter_arn
        self.state_machine_arn = state_machine_arn
        self.reminder_topic_arn = reminder_topic_arn  # set: reminders are published by Scheduler itself

    def create(
        self, request_id: str, at: datetime, kind: ScheduleKind = "expire", message: Notification | None = None
    ) -> None:
        """Schedule the grant's expiry (its reminder, its start); an existing one is replaced, so retries are safe.
        A reminder's `message` is published as it is now, when its topic is set (its words are known beforehand)."""
        arn, payload = self._target(request_id, kind, message)
        target: dict[str, object] = {
            "Arn": arn,
            "RoleArn": self.role_arn,
            "Input": json.dumps(payload),
            # A reminder late by more than its lead time would arrive after the end it announces.
            "RetryPolicy": {"MaximumEventAgeInSeconds": 600 if kind == "remind" else 3600, "MaximumRetryAttempts": 10},
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

    def _target(
        self, request_id: str, kind: ScheduleKind, message: Notification | None
    ) -> tuple[str, dict[str, object]]:
        if message is not None and message.link is not None:  # a link is one approver's credential: never stored
            raise ValueError("a scheduled message never carries an approval link")
        if kind == "remind" and message is not None and self.reminder_topic_arn:
            partition = self.role_arn.split(":")[1]
            return sns_publish_target(partition), publish_arguments(self.reminder_topic_arn, message, personal=True)
        payload: dict[str, object] = {"request_id": request_id, **_PAYLOADS[kind]}
        return (self.state_machine_arn if kind == "start" else self.target_arn), payload

    def delete(self, request_id: str, kinds: tuple[ScheduleKind, ...] = SCHEDULE_KINDS) -> None:
        """Remove a grant's schedules (or only some kinds); already gone (fired, or never made) is fine."""
        for kind in kinds:
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
