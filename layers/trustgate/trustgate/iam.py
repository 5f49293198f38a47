"""IAM adapter: read and write a managed role's trust policy, in this account or through the editor role."""

from __future__ import annotations

import json
import random
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from trustgate.errors import NotFoundError
from trustgate.identity import account_of, role_name_of
from trustgate.session_guard import GUARD_POLICY_NAME
from trustgate.trust_policy import Document, policy_size, serialize

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


@dataclass(frozen=True)
class LiveRole:
    """What IAM holds for a managed role, as far as TrustGate renders it."""

    trust_policy: Document
    role_id: str  # AROA…: inside the role a session's aws:userid is <role_id>:<session name>
    guard: Document | None  # TrustGate's session-guard inline policy, if present
    other_inline_size: int  # characters the role's other inline policies use (shared 10,240 quota)


def _decoded(document: Any) -> Document:
    if isinstance(document, str):  # IAM returns policies URL-encoded when a client does not decode them
        document = json.loads(urllib.parse.unquote(document))
    return dict(document)


class RoleEditor:
    """Reads and writes what TrustGate owns on a role: its trust policy and its session-guard inline policy.

    `client_for(account)` gives an IAM client for a role's account (directly or through the editor role).
    """

    def __init__(self, client_for: Callable[[str], IAMClient], sleep: Callable[[float], None] = time.sleep) -> None:
        self.client_for = client_for
        self.sleep = sleep

    def _role(self, role_arn: str) -> dict[str, Any]:
        client = self.client_for(account_of(role_arn))
        try:
            role = with_backoff(lambda: client.get_role(RoleName=role_name_of(role_arn)), sleep=self.sleep)
        except ClientError as error:
            if error.response["Error"]["Code"] == "NoSuchEntity":
                raise NotFoundError(
                    f"role {role_arn} does not exist in IAM; check the ManagedRoleArns parameter"
                ) from error
            raise
        return dict(role["Role"])

    def trust_policy(self, role_arn: str) -> Document:
        return _decoded(self._role(role_arn).get("AssumeRolePolicyDocument", {}))

    def read(self, role_arn: str) -> LiveRole:
        """The role's trust policy, id, MaxSessionDuration and inline policies (guard and the size of the rest)."""
        role = self._role(role_arn)
        guard: Document | None = None
        others = 0
        for name in self._inline_policy_names(role_arn):
            document = self._inline_policy(role_arn, name)
            if name == GUARD_POLICY_NAME:
                guard = document
            elif document is not None:
                others += policy_size(document)
        return LiveRole(
            trust_policy=_decoded(role.get("AssumeRolePolicyDocument", {})),
            role_id=str(role["RoleId"]),
            guard=guard,
            other_inline_size=others,
        )

    def session_guard(self, role_arn: str) -> Document | None:
        return self._inline_policy(role_arn, GUARD_POLICY_NAME)

    def write_trust_policy(self, role_arn: str, document: Document) -> None:
        client = self.client_for(account_of(role_arn))
        name = role_name_of(role_arn)
        with_backoff(
            lambda: client.update_assume_role_policy(RoleName=name, PolicyDocument=serialize(document)),
            sleep=self.sleep,
        )

    def write_session_guard(self, role_arn: str, document: Document | None) -> None:
        """Put the guard, or delete it when nothing needs guarding (an absent policy is already deleted)."""
        client = self.client_for(account_of(role_arn))
        name = role_name_of(role_arn)
        if document is not None:
            with_backoff(
                lambda: client.put_role_policy(
                    RoleName=name, PolicyName=GUARD_POLICY_NAME, PolicyDocument=serialize(document)
                ),
                sleep=self.sleep,
            )
            return
        try:
            with_backoff(
                lambda: client.delete_role_policy(RoleName=name, PolicyName=GUARD_POLICY_NAME), sleep=self.sleep
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "NoSuchEntity":
                raise

    def _inline_policy_names(self, role_arn: str) -> list[str]:
        client = self.client_for(account_of(role_arn))
        name = role_name_of(role_arn)
        names: list[str] = []
        marker: str | None = None
        while True:
            kwargs: dict[str, Any] = {"RoleName": name, **({"Marker": marker} if marker else {})}
            page = self._list_role_policies(client, kwargs)
            names.extend(page.get("PolicyNames", []))
            if not page.get("IsTruncated"):
                return names
            marker = page.get("Marker")

    def _list_role_policies(self, client: IAMClient, kwargs: dict[str, Any]) -> dict[str, Any]:
        return dict(with_backoff(lambda: client.list_role_policies(**kwargs), sleep=self.sleep))

    def _inline_policy(self, role_arn: str, policy_name: str) -> Document | None:
        client = self.client_for(account_of(role_arn))
        try:
            response = with_backoff(
                lambda: client.get_role_policy(RoleName=role_name_of(role_arn), PolicyName=policy_name),
                sleep=self.sleep,
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "NoSuchEntity":
                return None
            raise
        return _decoded(response["PolicyDocument"])
