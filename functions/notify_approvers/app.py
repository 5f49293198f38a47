"""State WaitForApproval: keep the task token and send every approver their own approval link."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from trustgate import service
from trustgate.observability import logger, metrics, tracer
from trustgate.steps import WaitStep
from trustgate.wiring import dependencies


@logger.inject_lambda_context(correlation_id_path="request_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    step = WaitStep.model_validate(event)
    return service.notify_approvers(dependencies(), step.request_id, step.task_token)
