"""IAM adapter: read and write a managed role's trust policy, in this account or through the editor role."""

from __future__ import annotations

import json
import random
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as TransportError

from trustgate.adapters.throttling import THROTTLING_CODES
from trustgate.core.errors import DocumentRefusedError, NotFoundError
from trustgate.core.identity import account_of, role_name_of
from trustgate.core.records import LiveRole
from trustgate.core.retry_budget import retry_deadline
from trustgate.core.session_guard import GUARD_POLICY_NAME
from trustgate.core.trust_policy import Document, policy_size, serialize

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

# -- retries, counted once (issue 11) -------------------------------------------------------------------
# botocore makes exactly one attempt per IAM call (CLIENT_CONFIG); `with_backoff` alone retries, so nothing
# multiplies (botocore's 5 attempts times a 6-attempt loop made up to 30 calls). It retries throttling, IAM's
# transient failures (5xx, ConcurrentModification), its eventual consistency (a principal created moments ago
# is not yet valid in a policy) and transport errors: every IAM call TrustGate makes is idempotent (reads, and
# writes that put or delete a whole document), so repeating one whose answer was lost is safe.
#
# Worst case of one IAM call, every attempt running into its timeouts and every pause at its cap:
#   ATTEMPTS x (CONNECT_TIMEOUT + READ_TIMEOUT) + pauses = 6 x (2 + 5) + (0.5 + 1 + 2 + 4 + 4) = 53.5 s,
#   but no pause may end later than RETRY_BUDGET (8 s) after the first attempt began, so the last attempt
#   starts by then: at most RETRY_BUDGET + one attempt = 8 + 7 = 15 s (`worst_case_seconds`).
# 15 s is below the Timeout of every function that syncs (the API's 30 s, and API Gateway's 29 s; grant,
# finalize and expire 120 s; reconcile 240 s): tests/unit/test_retry_budget.py checks it against template.yaml.
# A sync makes several IAM calls: `time_budget` bounds the retries of all of them together.
ATTEMPTS = 6
BACKOFF_BASE_SECONDS = 0.5  # full jitter: pause n (0-based) is uniform in [0, min(base * 2**n, cap)]
BACKOFF_CAP_SECONDS = 4.0
RETRY_BUDGET_SECONDS = 8.0
CONNECT_TIMEOUT_SECONDS = 2
READ_TIMEOUT_SECONDS = 5
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 1},
    connect_timeout=CONNECT_TIMEOUT_SECONDS,
    read_timeout=READ_TIMEOUT_SECONDS,
)

# IAM's own transient failures (ServiceFailure is its 500), besides throttling and any other 5xx.
_TRANSIENT_CODES = {"ServiceFailure", "ServiceUnavailable", "InternalFailure", "ConcurrentModification"}


def is_retryable(error: BaseException) -> bool:
    if isinstance(error, (TransportError, HTTPClientError)):  # connection refused or reset, a timeout
        return True
    if not isinstance(error, ClientError):
        return False
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return (
        code in THROTTLING_CODES
        or code in _TRANSIENT_CODES
        or status >= 500
        or (code == "MalformedPolicyDocument" and "Invalid principal" in message)
    )


def pause_cap(attempt: int) -> float:
    """The longest pause after the 0-based `attempt` failed."""
    return min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0**attempt)


def worst_case_seconds() -> float:
    """The longest one IAM call can take with its retries (see the arithmetic above)."""
    attempt = CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS
    unbounded = ATTEMPTS * attempt + sum(pause_cap(n) for n in range(ATTEMPTS - 1))
    return min(unbounded, RETRY_BUDGET_SECONDS + attempt)


def with_backoff[T](
    call: Callable[[], T],
    *,
    attempts: int = ATTEMPTS,
    budget: float = RETRY_BUDGET_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run `call`, retrying retryable IAM errors with full-jitter exponential backoff within `budget` seconds
    (and the enclosing `time_budget`): the last error is raised once attempts or time run out."""
    deadline = min(clock() + budget, retry_deadline())
    for attempt in range(attempts):
        try:
            return call()
        except (ClientError, TransportError, HTTPClientError) as error:
            if attempt == attempts - 1 or not is_retryable(error):
                raise
            pause = random.uniform(0, pause_cap(attempt))
            if clock() + pause > deadline:
                raise
            sleep(pause)
    raise AssertionError("unreachable")


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
        with _refusals_named():
            with_backoff(
                lambda: client.update_assume_role_policy(RoleName=name, PolicyDocument=serialize(document)),
                sleep=self.sleep,
            )

    def write_session_guard(self, role_arn: str, document: Document | None) -> None:
        """Put the guard, or delete it when nothing needs guarding (an absent policy is already deleted)."""
        client = self.client_for(account_of(role_arn))
        name = role_name_of(role_arn)
        if document is not None:
            with _refusals_named():
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


# IAM's answers that refuse a document as such (not a throttle, not a permission): its message says why.
IAM_REFUSALS = frozenset({"MalformedPolicyDocument", "InvalidInput", "LimitExceeded"})


@contextmanager
def _refusals_named() -> Iterator[None]:
    """Inside: IAM refusing a document leaves as `DocumentRefusedError` (the port's word for it), with IAM's reason."""
    try:
        yield
    except ClientError as error:
        info = error.response.get("Error", {})
        code = info.get("Code", "")
        if code not in IAM_REFUSALS:
            raise
        raise DocumentRefusedError(str(info.get("Message") or code)) from error
