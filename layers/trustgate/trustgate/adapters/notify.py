"""SNS adapter: personal messages to the personal topic, team copies to the shared topic.

Two topics, so that an approval link can never reach a shared subscriber:

* the **personal topic** carries messages addressed to one person (`recipient` = their ARN or a
  `notify` target), approval links among them. Every subscription to it must be filtered on exactly one
  recipient (`{"recipient": ["<ARN>"]}`): before a link is published, `DeliveryGuard` reads the topic's
  subscriptions and, if any that would receive this approver's message is not theirs alone (no filter,
  several recipients, a pattern, or an address that is also subscribed to the shared topic), withholds
  the link, tells the approver why, and tells the team.
* the **shared topic** (alarms, the team mailbox, Chatbot channels) carries team copies, never a link.
  It cannot be filtered safely instead: CloudWatch alarms publish without message attributes, and a
  filter policy on attributes drops every such message.

Each message also carries `personal` ("true"/"false") and `recipient` attributes, so subscribers can filter.
"""

from __future__ import annotations

import json
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from trustgate.adapters.observability import logger
from trustgate.core import messages
from trustgate.core.messages import Notification

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

GUARD_CACHE_SECONDS = 2.0  # one read serves the links of one notify step; a new subscription is judged at once after
PENDING = "PendingConfirmation"

Reach = Literal["none", "only", "shared"]


def recipient_filter(recipient: str) -> dict[str, list[str]]:
    """The filter policy of one person's own subscription to the personal topic."""
    return {"recipient": [recipient]}


def subscribe_command(topic_arn: str, recipient: str, endpoint: str, protocol: str = "email") -> str:
    """The `aws sns subscribe` command that gives one person their own, filtered delivery."""
    attributes = json.dumps({"FilterPolicy": json.dumps(recipient_filter(recipient))})
    return " ".join(
        [
            "aws sns subscribe",
            f"--topic-arn {shlex.quote(topic_arn)}",
            f"--protocol {shlex.quote(protocol)}",
            f"--notification-endpoint {shlex.quote(endpoint)}",
            f"--attributes {shlex.quote(attributes)}",
        ]
    )


def reach(filter_policy: str | None, scope: str | None, recipient: str) -> Reach:
    """Would a subscription with this filter policy receive `recipient`'s personal messages, and theirs only?

    `only`: it is filtered to exactly this recipient. `none`: it never receives this recipient's
    messages. `shared`: it receives them together with others' (or we cannot tell: fail closed).
    """
    if not filter_policy:
        return "shared"  # no filter: every message of the topic
    if scope == "MessageBody":
        return "shared"
    try:
        policy = json.loads(filter_policy)
    except ValueError:
        return "shared"
    if not isinstance(policy, dict) or "$or" in policy:
        return "shared"
    values = policy.get("recipient")
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        return "shared"  # not filtered on the recipient, or with a pattern (prefix, anything-but, …)
    if recipient not in values:
        return "none"
    return "only" if set(values) == {recipient} else "shared"


@dataclass(frozen=True)
class Subscription:
    arn: str
    protocol: str
    endpoint: str
    filter_policy: str | None
    scope: str | None


class DeliveryGuard:
    """Reads who subscribes to the personal topic (read again every few seconds) and judges whether a link may go."""

    def __init__(
        self,
        client: SNSClient,
        personal_topic_arn: str,
        shared_topic_arn: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.personal_topic_arn = personal_topic_arn
        self.shared_topic_arn = shared_topic_arn
        self.clock = clock
        self._cached: tuple[list[Subscription], set[str]] | None = None
        self._read_at = 0.0
        self._reading = threading.Lock()  # one read for callers arriving together (the local stack's threads)

    def _endpoints(self, topic_arn: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for page in self.client.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
            found.extend(dict(s) for s in page.get("Subscriptions", []))
        return found

    def _read(self) -> tuple[list[Subscription], set[str]]:
        with self._reading:
            return self._read_cached()

    def _read_cached(self) -> tuple[list[Subscription], set[str]]:
        now = self.clock()
        if self._cached is None or now - self._read_at > GUARD_CACHE_SECONDS:
            subscriptions = []
            for listed in self._endpoints(self.personal_topic_arn):
                arn = str(listed.get("SubscriptionArn", ""))
                if not arn or arn == PENDING:
                    continue  # receives nothing until confirmed; judged once it is
                attributes = self.client.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
                subscriptions.append(
                    Subscription(
                        arn,
                        str(listed.get("Protocol", "")),
                        str(listed.get("Endpoint", "")),
                        attributes.get("FilterPolicy") or None,
                        attributes.get("FilterPolicyScope"),
                    )
                )
            shared = {str(s.get("Endpoint", "")).lower() for s in self._endpoints(self.shared_topic_arn)} - {""}
            self._cached = (subscriptions, shared)
            self._read_at = now
        return self._cached

    def problem(self, recipient: str) -> str | None:
        """Why `recipient`'s link must not be published, or None when only their own deliveries receive it."""
        try:
            subscriptions, shared_endpoints = self._read()
        except Exception as error:  # cannot tell who would receive it: fail closed
            logger.exception("could not read the personal topic's subscriptions")
            return f"TrustGate could not check who receives it ({type(error).__name__})"
        for subscription in subscriptions:
            verdict = reach(subscription.filter_policy, subscription.scope, recipient)
            if verdict == "shared":
                return (
                    f"the {subscription.protocol} subscription {subscription.arn} would also receive other "
                    "people's messages (its filter policy does not name exactly one recipient)"
                )
            if verdict == "only" and subscription.endpoint.lower() in shared_endpoints:  # email: any case
                return (
                    f"the {subscription.protocol} endpoint of subscription {subscription.arn} also receives the "
                    "shared notification topic, so it is a shared address"
                )
        return None


class Notifier:
    def __init__(
        self,
        client: SNSClient,
        topic_arn: str,
        personal_topic_arn: str = "",
        guard: DeliveryGuard | None = None,
    ) -> None:
        self.client = client
        self.topic_arn = topic_arn
        self.personal_topic_arn = personal_topic_arn
        self.guard = guard or (DeliveryGuard(client, personal_topic_arn, topic_arn) if personal_topic_arn else None)

    def send(self, notification: Notification) -> None:
        if notification.personal:
            self._send_personal(notification)
        if not notification.personal or notification.shared:
            self._publish(self.topic_arn, replace(notification, link=None), personal=False)

    def _send_personal(self, notification: Notification) -> None:
        if not self.personal_topic_arn:
            logger.warning(
                "no personal topic configured: personal message not sent", extra={"event": notification.event}
            )
            return
        if notification.link and self.guard is not None:
            problem = self.guard.problem(notification.recipient)
            if problem:
                logger.error("approval link withheld", extra={"recipient": notification.recipient, "problem": problem})
                request = notification.request
                self._publish(self.topic_arn, messages.links_withheld(request, notification.recipient, problem), False)
                notification = messages.approval_needed(request, notification.recipient, None, withheld=problem)
        self._publish(self.personal_topic_arn, notification, personal=True)

    def _publish(self, topic_arn: str, notification: Notification, personal: bool) -> None:
        self.client.publish(**publish_arguments(topic_arn, notification, personal))


def publish_arguments(topic_arn: str, notification: Notification, personal: bool) -> dict[str, Any]:
    """The SNS Publish request for one notification: what the notifier sends now, and what a reminder schedule
    sends later on its own (EventBridge Scheduler's universal target, no Lambda)."""
    if notification.link and not personal:  # never: a link is a credential of one person
        raise ValueError("refusing to publish an approval link to the shared topic")
    # Per-protocol bodies: email and SQS get plain text, HTTPS (Chatbot) and everything else the JSON card.
    message = {"default": notification.chatbot(), "email": notification.text, "sqs": notification.text}
    attributes = {
        "event": notification.event,
        "recipient": notification.recipient,
        "audience": notification.audience,
        "personal": "true" if personal else "false",
        "role_arn": notification.request.role_arn,
        "request_id": notification.request.id,
    }
    return {
        "TopicArn": topic_arn,
        "Subject": notification.subject[:99],
        "Message": json.dumps(message),
        "MessageStructure": "json",
        "MessageAttributes": {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items() if v},
    }
