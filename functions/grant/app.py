"""State Grant: activate the grant, add the principal to the trust policy, schedule its expiry."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from trustgate import service
from trustgate.observability import logger, metrics, tracer
from trustgate.steps import RequestStep
from trustgate.throttling import throttles_as_throttled_error
from trustgate.wiring import dependencies


@logger.inject_lambda_context(correlation_id_path="request_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    # A throttle leaves as ThrottledError, which the state machine retries with backoff.
    with throttles_as_throttled_error():
        return service.grant(dependencies(), RequestStep.model_validate(event).request_id)
