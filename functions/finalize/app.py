"""States RecordDenied / RecordTimeout / RecordFailure: record the outcome and tell the requester."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from trustgate import service
from trustgate.observability import logger, metrics, tracer
from trustgate.steps import FinalizeStep
from trustgate.throttling import throttles_as_throttled_error
from trustgate.wiring import dependencies


@logger.inject_lambda_context(correlation_id_path="request_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    step = FinalizeStep.model_validate(event)
    # A throttle leaves as ThrottledError, which the state machine retries with backoff.
    with throttles_as_throttled_error():
        return service.finalize(dependencies(), step.request_id, step.outcome, step.error)
