"""EventBridge Scheduler target: end one grant at its expiry, or remind its requester shortly before."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from trustgate import service
from trustgate.observability import logger, metrics, tracer
from trustgate.steps import ExpiryStep
from trustgate.wiring import dependencies


@logger.inject_lambda_context(correlation_id_path="request_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    step = ExpiryStep.model_validate(event)
    return (service.remind if step.reminder else service.expire)(dependencies(), step.request_id)
