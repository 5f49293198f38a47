"""States RecordDenied / RecordTimeout / RecordFailure: record the outcome and tell the requester."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from trustgate.adapters.observability import logger, metrics, tracer
from trustgate.adapters.throttling import throttles_as_throttled_error
from trustgate.adapters.wiring import dependencies
from trustgate.app import workflow_steps
from trustgate.core.steps import FinalizeStep


@logger.inject_lambda_context(correlation_id_path="request_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    step = FinalizeStep.model_validate(event)
    # A throttle leaves as ThrottledError, which the state machine retries with backoff.
    with throttles_as_throttled_error():
        return workflow_steps.finalize(dependencies(), step.request_id, step.outcome, step.error)
