"""Published us-east-1 list prices (no free tier, no savings plans), with where and when they were checked.

Checked 2026-11-26 against the search tool's stored copies of the AWS pricing pages (Step Functions page:
$0.025 per 1,000 state transitions in US East (N. Virginia)). DynamoDB on-demand: the stored AWS page did not
show the figures, so they come from a secondary source describing the November 2024 50% reduction
($0.625 per million WRU, $0.125 per million RRU). Lambda arm64: $0.20 per 1M requests and $0.0000133334 per
GB-s (first pricing tier). The rest are as the brief gives them and match AWS's pages as last known.
"""

from __future__ import annotations

from dataclasses import dataclass

CHECKED = "2026-11-26"


@dataclass(frozen=True)
class Price:
    usd: float
    per: float  # units the price is for
    unit: str
    source: str

    def cost(self, units: float) -> float:
        return self.usd * units / self.per


STEP_FUNCTIONS_TRANSITION = Price(0.025, 1_000, "state transition (Standard)", "aws.amazon.com/step-functions/pricing")
LAMBDA_REQUEST = Price(0.20, 1_000_000, "invocation", "aws.amazon.com/lambda/pricing")
LAMBDA_ARM_GB_SECOND = Price(0.0000133334, 1, "GB-second (arm64, first tier)", "aws.amazon.com/lambda/pricing")
DYNAMODB_WRITE_UNIT = Price(
    0.625, 1_000_000, "write request unit (on-demand)", "aws.amazon.com/dynamodb/pricing/on-demand (Nov 2024 prices)"
)
DYNAMODB_READ_UNIT = Price(
    0.125, 1_000_000, "read request unit (on-demand)", "aws.amazon.com/dynamodb/pricing/on-demand (Nov 2024 prices)"
)
SCHEDULER_INVOCATION = Price(1.00, 1_000_000, "scheduled invocation", "aws.amazon.com/eventbridge/pricing")
SNS_PUBLISH = Price(0.50, 1_000_000, "publish (64 KB chunk)", "aws.amazon.com/sns/pricing")
EVENTBRIDGE_EVENT = Price(1.00, 1_000_000, "custom event (64 KB chunk)", "aws.amazon.com/eventbridge/pricing")
API_GATEWAY_REST_REQUEST = Price(3.50, 1_000_000, "REST API request (first tier)", "aws.amazon.com/api-gateway/pricing")
# IAM and STS API calls are free; CloudWatch Logs, X-Ray traces and KMS requests (SNS topic encryption) are
# left out: they depend on log volume and sampling, not on TrustGate's design.

ALL = {
    "step_functions_transition": STEP_FUNCTIONS_TRANSITION,
    "lambda_request": LAMBDA_REQUEST,
    "lambda_arm_gb_second": LAMBDA_ARM_GB_SECOND,
    "dynamodb_write_unit": DYNAMODB_WRITE_UNIT,
    "dynamodb_read_unit": DYNAMODB_READ_UNIT,
    "scheduler_invocation": SCHEDULER_INVOCATION,
    "sns_publish": SNS_PUBLISH,
    "eventbridge_event": EVENTBRIDGE_EVENT,
    "api_gateway_rest_request": API_GATEWAY_REST_REQUEST,
}
