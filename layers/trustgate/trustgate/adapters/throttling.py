"""Which AWS errors mean "too busy, retry later": throttling, and a write that lost to a concurrent transaction.

The API answers these `429 throttled` with `Retry-After` (never a 5xx, never a 409): nothing was changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import ClientError

from trustgate.core.errors import ThrottledError, TrustGateError

# Error codes AWS services use for throttling (IAM: Throttling; DynamoDB: ThrottlingException,
# ProvisionedThroughputExceededException, RequestLimitExceeded; Step Functions, Scheduler, SNS, EventBridge:
# ThrottlingException, TooManyRequestsException). IAM's `LimitExceeded` is a quota on a document, no throttle.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TransactionConflictException",  # DynamoDB: a single-item write lost to a transaction in flight
    }
)
# Why DynamoDB cancels a transaction when it is only busy: retry it as it is. Any other reason (above all
# `ConditionalCheckFailed`: the item is not what the writer read) is a real conflict.
BUSY_CANCELLATIONS = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded", "TransactionConflict"})


def is_throttling(error: BaseException) -> bool:
    """Is this AWS error a throttle, or a transaction cancelled only because the table was busy?"""
    if not isinstance(error, ClientError):
        return False
    code = error.response.get("Error", {}).get("Code", "")
    if code in THROTTLING_CODES:
        return True
    if code != "TransactionCanceledException":
        return False
    reasons = {reason.get("Code", "None") for reason in error.response.get("CancellationReasons", [])}
    return bool(reasons & BUSY_CANCELLATIONS) and reasons <= BUSY_CANCELLATIONS | {"None"}


def throttling_in(error: BaseException) -> ClientError | None:
    """The throttling AWS error behind `error`: itself, or one it was raised `from` (a domain error an adapter
    made of it, such as the store's ConflictError for a cancelled transaction)."""
    current: BaseException | None = error
    for _ in range(10):  # a cause chain is short; never loop on a cyclic one
        if current is None:
            return None
        if isinstance(current, ClientError) and is_throttling(current):
            return current
        current = current.__cause__
    return None


@contextmanager
def throttles_as_throttled_error() -> Iterator[None]:
    """Inside: an AWS throttle (raw, or behind a conflict the store made of a busy transaction) leaves as
    `ThrottledError`, the error name the state machine retries with backoff. Other errors pass unchanged."""
    try:
        yield
    except Exception as error:
        if isinstance(error, ThrottledError) or (isinstance(error, TrustGateError) and error.status != 409):
            raise  # already says what happened (role_busy, revoke_incomplete…)
        if throttling_in(error) is None:
            raise
        raise ThrottledError() from error
