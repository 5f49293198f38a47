"""EventBridge rate(5 minutes): end what is due even if its schedule was lost, and repair drift."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from trustgate import service
from trustgate.observability import logger, metrics, tracer
from trustgate.wiring import dependencies


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return service.reconcile(dependencies())
