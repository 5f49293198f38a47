"""EventBridge Scheduler target: end one grant at its expiry."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from trustgate import service
from trustgate.observability import logger, metrics, tracer
from trustgate.steps import RequestStep
from trustgate.wiring import dependencies


@logger.inject_lambda_context(correlation_id_path="request_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return service.expire(dependencies(), RequestStep.model_validate(event).request_id)
