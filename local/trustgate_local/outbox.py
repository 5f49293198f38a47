"""The notification outbox: what each subscriber of TrustGate's topics receives, with its approval link.

The local stack subscribes like a real deployment (docs/notifications.md): the template's shared mailbox
on the shared topic, and one delivery per person on the personal topic, filtered on that person's ARN.
Each subscriber is an SQS queue (there is no mail locally) that receives what an email subscriber would
(the topic's per-protocol message, after SNS applied the subscription's filter policy), so the outbox
shows exactly who received what, through public APIs only. A message two subscribers receive appears
twice, once with each `subscriber`.
"""

from __future__ import annotations

import collections
import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import boto3

from trustgate.adapters.notify import recipient_filter
from trustgate.core.clock import Clock, to_rfc3339
from trustgate_local.provision import Mailbox, Stack, subscribe_mailbox

_LINK = re.compile(r"https?://\S+/decide/[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Notification:
    """One message as one subscriber received it (`GET /_local/outbox`)."""

    time: str  # on the stack's clock
    subscriber: str  # whose delivery received it: a person's name, or the shared mailbox's address
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


def notification_from_envelope(envelope: dict[str, Any], time: str, subscriber: str = "") -> Notification:
    """Read an SNS-to-SQS envelope: subject, text (the per-protocol message) and TrustGate's attributes."""
    attributes = {
        name: str(value.get("Value", "")) for name, value in (envelope.get("MessageAttributes") or {}).items()
    }
    text = str(envelope.get("Message", ""))
    link = _LINK.search(text)
    return Notification(
        time=time,
        subscriber=subscriber,
        subject=str(envelope.get("Subject") or ""),
        recipient=attributes.get("recipient", ""),
        audience=attributes.get("audience", ""),
        event=attributes.get("event", ""),
        request_id=attributes.get("request_id", ""),
        role_arn=attributes.get("role_arn", ""),
        text=text,
        link=link.group(0) if link else None,
    )


def personal_mailboxes(session: boto3.Session, stack: Stack, people: Mapping[str, str]) -> list[Mailbox]:
    """Each person's own delivery: a queue on the personal topic, filtered on their ARN (name -> ARN)."""
    topic = stack.refs["PersonalTopic"]
    return [
        subscribe_mailbox(session, name, topic, f"{stack.name}-personal-{name}", recipient_filter(arn))
        for name, arn in people.items()
    ]


DEFAULT_KEEP = 1000  # notifications: the newest are kept, so a long-running stack does not grow without bound


class Outbox:
    """Collects what every mailbox receives (the newest `keep`); `on_message` sees each one as it arrives."""

    def __init__(
        self,
        session: boto3.Session,
        mailboxes: Sequence[Mailbox],
        clock: Clock,
        on_message: Callable[[Notification], None] | None = None,
        poll_interval: float = 0.2,
        keep: int = DEFAULT_KEEP,
    ) -> None:
        self.poll_interval = poll_interval
        self.sqs = session.client("sqs")
        self.mailboxes = list(mailboxes)
        self.clock = clock
        self.on_message = on_message
        self._items: collections.deque[Notification] = collections.deque(maxlen=keep)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start draining the mailboxes (they are subscribed already)."""
        self._thread = threading.Thread(target=self._drain, name="trustgate-outbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def items(self) -> list[Notification]:
        with self._lock:
            return list(self._items)

    @property
    def keep(self) -> int:
        """How many notifications the outbox keeps (the newest)."""
        return self._items.maxlen or 0

    @keep.setter
    def keep(self, count: int) -> None:
        with self._lock:
            self._items = collections.deque(self._items, maxlen=count)

    def _drain(self) -> None:
        # Short polls: a long poll would hold moto's request lock (trustgate_local.host) while it waits.
        while not self._stopping.wait(self.poll_interval):
            try:
                while self.drain_once():
                    pass
            except Exception as error:  # the server going away at shutdown, mostly
                if not self._stopping.is_set():
                    print(f"outbox: could not read the notification queues: {error}", flush=True)
                    self._stopping.wait(1)

    def drain_once(self) -> list[Notification]:
        """Move what the mailboxes hold (up to 10 messages each) into the outbox; returns what arrived."""
        arrived = []
        for mailbox in self.mailboxes:
            answer = self.sqs.receive_message(QueueUrl=mailbox.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            for message in answer.get("Messages", []):
                envelope = json.loads(message["Body"])
                arrived.append(notification_from_envelope(envelope, to_rfc3339(self.clock.now()), mailbox.name))
                self.sqs.delete_message(QueueUrl=mailbox.queue_url, ReceiptHandle=message["ReceiptHandle"])
        with self._lock:
            self._items.extend(arrived)
        if self.on_message:
            for notification in arrived:
                self.on_message(notification)
        return arrived


def describe(notification: Notification) -> str:
    """How `make local` prints a notification as it arrives."""
    lines = [
        f"[{notification.time}] {notification.subscriber or '?'} received: to {notification.recipient or '?'} "
        f"({notification.audience}, {notification.event})",
        f"    {notification.subject}",
    ]
    if notification.link:
        lines.append(f"    approval link: {notification.link}")
    return "\n".join(lines)
