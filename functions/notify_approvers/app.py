"""State WaitForApproval: keep the task token and send every approver their own approval link."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from trustgate.adapters.observability import logger, metrics, tracer
from trustgate.adapters.wiring import dependencies
from trustgate.app import workflow_steps
from trustgate.core.steps import WaitStep


@logger.inject_lambda_context(correlation_id_path="request_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = WaitStep.model_validate(event)
    return workflow_steps.notify_approvers(dependencies(), step.request_id, step.task_token)
