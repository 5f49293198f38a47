"""The approval page (no IAM auth; the single-use link token is the credential): GET shows, POST decides.

Routes live in `trustgate.api.decide`. The tracer keeps responses out of X-Ray: a page embeds its CSRF value.
"""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from trustgate.adapters.observability import logger, metrics, tracer
from trustgate.adapters.wiring import dependencies
from trustgate.api.decide import build_decide_app

app = build_decide_app(dependencies)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
