"""The notification outbox: every message TrustGate publishes to its SNS topic, with its approval link.

An SQS queue subscribed to the topic receives what an email subscriber would (the topic's
per-protocol message), so the outbox sees exactly what was published, through public APIs only.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import boto3

from trustgate.clock import Clock, to_rfc3339

_LINK = re.compile(r"https?://\S+/decide/[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Notification:
    """One message to one person, as the outbox serves it (`GET /_local/outbox`)."""

    time: str  # on the stack's clock
    subject: str
    recipient: str
    audience: str
    event: str
    request_id: str
    role_arn: str
    text: str
    link: str | None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def notification_from_envelope(envelope: dict[str, Any], time: str) -> Notification:
    """Read an SNS-to-SQS envelope: subject, text (the per-protocol message) and TrustGate's attributes."""
    attributes = {
        name: str(value.get("Value", "")) for name, value in (envelope.get("MessageAttributes") or {}).items()
    }
    text = str(envelope.get("Message", ""))
    link = _LINK.search(text)
    return Notification(
        time=time,
        subject=str(envelope.get("Subject") or ""),
        recipient=attributes.get("recipient", ""),
        audience=attributes.get("audience", ""),
        event=attributes.get("event", ""),
        request_id=attributes.get("request_id", ""),
        role_arn=attributes.get("role_arn", ""),
        text=text,
        link=link.group(0) if link else None,
    )


class Outbox:
    """Collects every notification from the topic; `on_message` sees each one as it arrives."""

    def __init__(
        self,
        session: boto3.Session,
        topic_arn: str,
        clock: Clock,
        queue_name: str,
        on_message: Callable[[Notification], None] | None = None,
        poll_interval: float = 0.2,
    ) -> None:
        self.poll_interval = poll_interval
        self.sqs = session.client("sqs")
        self.sns = session.client("sns")
        self.topic_arn = topic_arn
        self.clock = clock
        self.queue_name = queue_name
        self.on_message = on_message
        self.queue_url = ""
        self._items: list[Notification] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Subscribe the outbox queue to the topic and start draining it."""
        self.queue_url = self.sqs.create_queue(QueueName=self.queue_name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=arn)
        self._thread = threading.Thread(target=self._drain, name="trustgate-outbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def items(self) -> list[Notification]:
        with self._lock:
            return list(self._items)

    def _drain(self) -> None:
        # Short polls: a long poll would hold moto's request lock (trustgate_local.host) while it waits.
        while not self._stopping.wait(self.poll_interval):
            try:
                while self.drain_once():
                    pass
            except Exception as error:  # the server going away at shutdown, mostly
                if not self._stopping.is_set():
                    print(f"outbox: could not read the notification queue: {error}", flush=True)
                    self._stopping.wait(1)

    def drain_once(self) -> list[Notification]:
        """Move what the queue holds (up to 10 messages) into the outbox; returns what arrived."""
        answer = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        arrived = []
        for message in answer.get("Messages", []):
            envelope = json.loads(message["Body"])
            arrived.append(notification_from_envelope(envelope, to_rfc3339(self.clock.now())))
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        with self._lock:
            self._items.extend(arrived)
        if self.on_message:
            for notification in arrived:
                self.on_message(notification)
        return arrived


def describe(notification: Notification) -> str:
    """How `make local` prints a notification as it arrives."""
    lines = [
        f"[{notification.time}] notification to {notification.recipient or '?'} ({notification.audience}, {notification.event})",
        f"    {notification.subject}",
    ]
    if notification.link:
        lines.append(f"    approval link: {notification.link}")
    return "\n".join(lines)
