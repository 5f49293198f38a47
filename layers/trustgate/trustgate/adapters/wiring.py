"""Builds the adapters from the function environment. The only module that reads `os.environ`.

Clients are created on first use: a function pays only for the AWS services it actually calls,
which keeps cold starts close to a bare `import boto3`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from trustgate.adapters.chat import ChatNotifier, FanOut, NotificationSink, WebhookRoutes
from trustgate.adapters.events import EventPublisher
from trustgate.adapters.iam import CLIENT_CONFIG as IAM_CONFIG
from trustgate.adapters.iam import RoleEditor
from trustgate.adapters.notify import Notifier
from trustgate.adapters.scheduler import ExpirySchedules
from trustgate.adapters.slack import block_kit
from trustgate.adapters.store import Store
from trustgate.adapters.teams import adaptive_card
from trustgate.adapters.teams import may_carry_link as teams_may_carry_link
from trustgate.adapters.workflow import ApprovalFlow
from trustgate.core.clock import Clock, system_clock
from trustgate.core.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

# Retries are counted once (issue 11): one layer retries each kind of error, and each has a bounded worst case.
# * IAM: botocore makes one attempt; `iam.with_backoff` alone retries, within its time budget (see iam.py:
#   at most 15 s for one call).
# * Every other service (DynamoDB, Step Functions, Scheduler, SNS, EventBridge, STS, Secrets Manager): botocore's
#   standard mode, and nothing above it retries the same errors (`decisions.decide` retries *conflicts*, which
#   botocore never retries; a throttle that outlasts these attempts reaches the API as 429 throttled).
#   Its pause before retry n (0-based) is at most min(2**n, 20) s, raised by an `x-amz-retry-after` header to
#   at most that plus 5 s. Worst case of one call, every attempt running into its timeouts:
#     AWS_ATTEMPTS x (connect + read) + pauses = 3 x (1 + 4) + (1 + 5) + (2 + 5) = 15 + 13 = 28 s
#   (`worst_case_call_seconds`), below the 30 s Timeout of the API (API Gateway: 29 s), the shortest of the
#   functions that sync; tests/unit/test_retry_budget.py checks both against template.yaml.
AWS_ATTEMPTS = 3
AWS_CONNECT_TIMEOUT_SECONDS = 1
AWS_READ_TIMEOUT_SECONDS = 4  # DynamoDB and the others answer in milliseconds; nothing here long-polls
BOTOCORE_MAX_PAUSE_SECONDS = 20  # botocore.retries.standard.ExponentialBackoff's defaults
BOTOCORE_RETRY_AFTER_EXTRA_SECONDS = 5
_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": AWS_ATTEMPTS},
    connect_timeout=AWS_CONNECT_TIMEOUT_SECONDS,
    read_timeout=AWS_READ_TIMEOUT_SECONDS,
)


def worst_case_call_seconds() -> float:
    """The longest one call to a service other than IAM can take with botocore's retries (see above)."""
    pauses = sum(
        min(2.0**n, BOTOCORE_MAX_PAUSE_SECONDS) + BOTOCORE_RETRY_AFTER_EXTRA_SECONDS for n in range(AWS_ATTEMPTS - 1)
    )
    return AWS_ATTEMPTS * (AWS_CONNECT_TIMEOUT_SECONDS + AWS_READ_TIMEOUT_SECONDS) + pauses


class Dependencies:
    """Everything a service needs; handlers hold one per process."""

    def __init__(
        self,
        settings: Settings,
        session: boto3.Session | None = None,
        clock: Clock = system_clock,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.session = session or boto3.Session()
        self.clock = clock
        self.sleep = sleep
        self._editor_clients: dict[str, tuple[IAMClient, datetime]] = {}

    def client(self, service: str) -> Any:
        config = IAM_CONFIG if service == "iam" else _CONFIG
        return self.session.client(service, region_name=self.settings.region, config=config)  # type: ignore[call-overload]

    @cached_property
    def store(self) -> Store:
        return Store(self.client("dynamodb"), self.settings.table_name)

    @cached_property
    def roles(self) -> RoleEditor:
        return RoleEditor(self._iam_client_for, sleep=self.sleep)

    @cached_property
    def schedules(self) -> ExpirySchedules:
        s = self.settings
        return ExpirySchedules(
            self.client("scheduler"),
            s.schedule_group,
            s.expire_function_arn,
            s.scheduler_role_arn,
            s.expiry_dlq_arn,
            s.state_machine_arn,
            # SNS is the only delivery: Scheduler publishes reminders itself. Chat webhooks need the function.
            "" if s.slack_webhook_secret_arn or s.teams_webhook_secret_arn else s.personal_topic_arn,
        )

    @cached_property
    def flow(self) -> ApprovalFlow:
        return ApprovalFlow(self.client("stepfunctions"), self.settings.state_machine_arn)

    @cached_property
    def notifier(self) -> NotificationSink:
        sns = Notifier(self.client("sns"), self.settings.topic_arn, self.settings.personal_topic_arn)
        chats: list[NotificationSink] = []
        if self.settings.slack_webhook_secret_arn:
            routes = WebhookRoutes(self.client("secretsmanager"), self.settings.slack_webhook_secret_arn)
            chats.append(ChatNotifier(routes, block_kit))
        if self.settings.teams_webhook_secret_arn:
            routes = WebhookRoutes(self.client("secretsmanager"), self.settings.teams_webhook_secret_arn)
            chats.append(ChatNotifier(routes, adaptive_card, may_carry_link=teams_may_carry_link))
        return FanOut([sns, *chats]) if chats else sns

    @cached_property
    def events(self) -> EventPublisher:
        return EventPublisher(self.client("events"), self.settings.event_bus_name)

    @cached_property
    def _own_iam(self) -> IAMClient:
        client: IAMClient = self.client("iam")
        return client

    def _iam_client_for(self, account: str) -> IAMClient:
        """Roles in another account are edited through the small editor role deployed there."""
        editor = self.settings.editor_role_name
        if not editor:
            return self._own_iam
        cached = self._editor_clients.get(account)
        if cached and cached[1] - timedelta(minutes=5) > datetime.now(UTC):
            return cached[0]
        role_arn = f"arn:{self.settings.partition}:iam::{account}:role/{editor}"
        credentials = self.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="trustgate-sync")["Credentials"]
        client: IAMClient = boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        ).client("iam", config=IAM_CONFIG)
        self._editor_clients[account] = (client, credentials["Expiration"])
        return client


_dependencies: Dependencies | None = None


def dependencies(environ: Mapping[str, str] | None = None) -> Dependencies:
    """The process-wide dependencies, built once from the environment."""
    global _dependencies
    if _dependencies is None:
        _dependencies = Dependencies(Settings.from_env(environ if environ is not None else os.environ))
    return _dependencies


def reset(replacement: Dependencies | None = None) -> None:
    """Forget (or replace) the process-wide dependencies: tests and the local stack re-wire with this."""
    global _dependencies
    _dependencies = replacement
