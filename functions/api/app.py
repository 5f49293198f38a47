"""The TrustGate REST API (AWS_IAM auth): routes live in `trustgate.api`, this is only the entry point."""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from trustgate.adapters.observability import logger, metrics, tracer
from trustgate.adapters.wiring import dependencies
from trustgate.api.app import build_app

app = build_app(dependencies)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
