"""IAM's eventual consistency and throttling are retried; everything else fails at once."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from trustgate.adapters.iam import RoleEditor, is_retryable, with_backoff
from trustgate.core.errors import DocumentRefusedError

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


class RefusingClient:
    """An IAM client whose writes fail with one error; counts the calls."""

    def __init__(self, error: ClientError) -> None:
        self.error = error
        self.calls = 0

    def update_assume_role_policy(self, **_: object) -> None:
        self.calls += 1
        raise self.error

    def put_role_policy(self, **_: object) -> None:
        self.calls += 1
        raise self.error


GUARD = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}
ROLE = "arn:aws:iam::123456789012:role/PumpCustomerAccess"


@pytest.mark.parametrize("write", ["trust", "guard"])
@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("MalformedPolicyDocument", "Syntax errors in policy."),
        ("LimitExceeded", "Cannot exceed quota for ACLSizePerRole: 2048"),
        ("InvalidInput", "Policy document is too long"),
    ],
)
def test_iam_refusing_a_document_is_the_ports_document_refused_error(write: str, code: str, message: str) -> None:
    client = RefusingClient(client_error(code, message))
    editor = RoleEditor(lambda _account: client, sleep=lambda _: None)  # type: ignore[arg-type,return-value]
    writer = editor.write_trust_policy if write == "trust" else editor.write_session_guard
    with pytest.raises(DocumentRefusedError) as refused:
        writer(ROLE, GUARD)
    assert refused.value.reason == message
    assert isinstance(refused.value.__cause__, ClientError)  # the throttle check can still see what AWS said
    assert client.calls == 1  # a refusal of the document as such is not retried


@pytest.mark.parametrize("code", ["AccessDenied", "NoSuchEntity"])
def test_other_iam_errors_pass_unchanged(code: str) -> None:
    client = RefusingClient(client_error(code))
    editor = RoleEditor(lambda _account: client, sleep=lambda _: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(ClientError) as failed:
        editor.write_trust_policy(ROLE, GUARD)
    assert failed.value.response["Error"]["Code"] == code
