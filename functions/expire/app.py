"""EventBridge Scheduler target: end one grant at its expiry, or remind its requester shortly before."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from trustgate.adapters.observability import logger, metrics, tracer
from trustgate.adapters.wiring import dependencies
from trustgate.app import workflow_steps
from trustgate.core.steps import ExpiryStep


@logger.inject_lambda_context(correlation_id_path="request_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = ExpiryStep.model_validate(event)
    return (workflow_steps.remind if step.reminder else workflow_steps.expire)(dependencies(), step.request_id)
