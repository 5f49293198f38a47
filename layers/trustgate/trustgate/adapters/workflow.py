"""Step Functions adapter: start the approval flow for a request, resume it with a decision, read its status."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from trustgate.core.records import Decision, ExecutionStatus

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient


class ApprovalFlow:
    def __init__(self, client: SFNClient, state_machine_arn: str) -> None:
        self.client = client
        self.state_machine_arn = state_machine_arn

    def start(self, request_id: str, *, auto_approve: bool, approval_window_seconds: int) -> bool:
        """Start the flow named after the request; False if it already exists (a retry, not a second flow).
        `auto_approve` sends it straight to Grant; otherwise it waits for a decision at most the window."""
        flow_input = {
            "request_id": request_id,
            "start": False,  # not a scheduled request's start run (its start schedule sends true)
            "auto_approve": auto_approve,
            "approval_window_seconds": approval_window_seconds,
        }
        try:
            self.client.start_execution(
                stateMachineArn=self.state_machine_arn, name=request_id, input=json.dumps(flow_input)
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ExecutionAlreadyExists":
                return False
            raise
        return True

    def resume(self, task_token: str, decision: Decision) -> None:
        """Hand the decision to the waiting flow; a token that already finished or timed out is ignored."""
        try:
            self.client.send_task_success(taskToken=task_token, output=json.dumps({"decision": decision}))
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("TaskTimedOut", "TaskDoesNotExist", "InvalidToken"):
                raise

    def status(self, request_id: str) -> ExecutionStatus | None:
        """The status of the request's flow (execution name = request id); None when it never started."""
        arn = self.state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{request_id}"
        try:
            return self.client.describe_execution(executionArn=arn)["status"]
        except ClientError as error:
            if error.response["Error"]["Code"] == "ExecutionDoesNotExist":
                return None
            raise
