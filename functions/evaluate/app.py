"""State EvaluateRequest: decide whether the request needs a person, and how long the flow may wait."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from trustgate.adapters.observability import logger, metrics, tracer
from trustgate.adapters.wiring import dependencies
from trustgate.app import workflow_steps
from trustgate.core.steps import RequestStep


@logger.inject_lambda_context(correlation_id_path="request_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return workflow_steps.evaluate(dependencies(), RequestStep.model_validate(event).request_id)
