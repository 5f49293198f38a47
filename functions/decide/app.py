"""The approval page (no IAM auth; the single-use link token is the credential): GET shows, POST decides.

Routes live in `trustgate.api.decide`. The tracer keeps responses out of X-Ray: a page embeds its CSRF value.
"""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from trustgate.api.decide import build_decide_app
from trustgate.observability import logger, metrics, tracer

app = build_decide_app()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
