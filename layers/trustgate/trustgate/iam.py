"""IAM adapter: read and write a managed role's trust policy, in this account or through the editor role."""

from __future__ import annotations

import json
import random
import time
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from trustgate.errors import NotFoundError
from trustgate.identity import account_of, role_name_of
from trustgate.trust_policy import Document, serialize

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

# Errors worth retrying: throttling, and IAM's eventual consistency right after a principal is created.
_RETRYABLE_CODES = {"Throttling", "ThrottlingException", "ServiceFailure", "ConcurrentModification"}


def is_retryable(error: ClientError) -> bool:
    code = error.response["Error"]["Code"]
    message = error.response["Error"].get("Message", "")
    return code in _RETRYABLE_CODES or (code == "MalformedPolicyDocument" and "Invalid principal" in message)


def with_backoff[T](
    call: Callable[[], T], *, attempts: int = 6, base: float = 0.5, sleep: Callable[[float], None] = time.sleep
) -> T:
    """Run `call`, retrying retryable IAM errors with full-jitter exponential backoff (~0.5 s … 16 s)."""
    for attempt in range(attempts):
        try:
            return call()
        except ClientError as error:
            if attempt == attempts - 1 or not is_retryable(error):
                raise
            sleep(random.uniform(0, base * 2**attempt))
    raise AssertionError("unreachable")


class RoleEditor:
    """Reads and writes trust policies; `client_for(account)` gives an IAM client for a role's account."""

    def __init__(self, client_for: Callable[[str], IAMClient], sleep: Callable[[float], None] = time.sleep) -> None:
        self.client_for = client_for
        self.sleep = sleep

    def trust_policy(self, role_arn: str) -> Document:
        client = self.client_for(account_of(role_arn))
        try:
            role = with_backoff(lambda: client.get_role(RoleName=role_name_of(role_arn)), sleep=self.sleep)
        except ClientError as error:
            if error.response["Error"]["Code"] == "NoSuchEntity":
                raise NotFoundError(
                    f"role {role_arn} does not exist in IAM; check the ManagedRoleArns parameter"
                ) from error
            raise
        document: Any = role["Role"].get("AssumeRolePolicyDocument", {})
        if isinstance(document, str):  # IAM returns it URL-encoded when a client does not decode it
            document = json.loads(urllib.parse.unquote(document))
        return dict(document)

    def write_trust_policy(self, role_arn: str, document: Document) -> None:
        client = self.client_for(account_of(role_arn))
        name = role_name_of(role_arn)
        with_backoff(
            lambda: client.update_assume_role_policy(RoleName=name, PolicyDocument=serialize(document)),
            sleep=self.sleep,
        )
