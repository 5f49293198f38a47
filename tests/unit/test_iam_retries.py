"""IAM's eventual consistency and throttling are retried; everything else fails at once."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from trustgate.iam import is_retryable, with_backoff

pytestmark = pytest.mark.unit


def client_error(code: str, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "UpdateAssumeRolePolicy")


@pytest.mark.parametrize(
    ("code", "message", "retryable"),
    [
        ("MalformedPolicyDocument", 'Invalid principal in policy: "AWS":"arn:aws:iam::1:user/new"', True),
        ("MalformedPolicyDocument", "Syntax errors in policy.", False),
        ("Throttling", "Rate exceeded", True),
        ("ConcurrentModification", "", True),
        ("AccessDenied", "", False),
        ("NoSuchEntity", "", False),
    ],
)
def test_which_iam_errors_are_retried(code: str, message: str, retryable: bool) -> None:
    assert is_retryable(client_error(code, message)) is retryable


def test_a_just_created_principal_is_retried_with_growing_backoff_until_iam_accepts_it() -> None:
    calls: list[int] = []
    pauses: list[float] = []

    def update() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise client_error("MalformedPolicyDocument", "Invalid principal in policy")
        return "written"

    assert with_backoff(update, sleep=pauses.append) == "written"
    assert len(calls) == 3
    assert len(pauses) == 2
    assert all(0 <= pause <= 0.5 * 2**i for i, pause in enumerate(pauses))


def test_retries_stop_after_the_last_attempt_and_raise_the_error() -> None:
    def update() -> None:
        raise client_error("Throttling")

    with pytest.raises(ClientError):
        with_backoff(update, attempts=4, sleep=lambda _: None)


def test_a_non_retryable_error_is_raised_at_once() -> None:
    calls: list[int] = []

    def update() -> None:
        calls.append(1)
        raise client_error("AccessDenied")

    with pytest.raises(ClientError):
        with_backoff(update, sleep=lambda _: None)
    assert calls == [1]
