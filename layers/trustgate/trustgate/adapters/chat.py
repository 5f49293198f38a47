"""Chat webhooks (Slack, Microsoft Teams): who gets which message, and never a personal link in a shared place.

Each service is enabled by a Secrets Manager secret holding a JSON object that maps recipients to webhook URLs:

    {"arn:aws:iam::222222222222:user/bob": "https://…",   # bob's own chat (a Slack DM, a Teams chat)
     "*": "https://…"}                                     # a shared channel

A webhook keyed by one recipient (an approver's ARN, or a role policy's `notify` target) gets that recipient's
messages, with a button that opens the approval page when the message carries a personal link and the webhook is
theirs alone. The `*` webhook is a shared channel: it gets the team copies (a new request, without links, and
every message to requesters) and never a personal link, which would let anyone in the channel decide as that
approver. A webhook URL that appears under several keys, or is also the `*` channel, is shared too: it never gets
a link either. The rule is the same for every service; only the message's shape differs (`slack.block_kit`,
`teams.adaptive_card`).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from trustgate.adapters.observability import logger
from trustgate.core.messages import Notification

CHANNEL = "*"
CACHE_SECONDS = 300.0  # re-read the secret now and then, so a rotated webhook takes effect without a deploy

# A message's body for one service: (notification, with_link) -> the JSON the webhook takes.
Render = Callable[[Notification, bool], dict[str, Any]]


class SecretReader(Protocol):
    """The one Secrets Manager call this adapter needs (a boto3 `secretsmanager` client has it)."""

    def get_secret_value(self, *, SecretId: str) -> Mapping[str, Any]: ...


class NotificationSink(Protocol):
    def send(self, notification: Notification) -> None: ...


def post_json(url: str, body: bytes) -> int:
    if not url.startswith("https://"):
        raise ValueError("chat webhooks must be https:// URLs")
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - https only
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - https only
        return int(response.status)


class WebhookRoutes:
    """Recipient -> webhook URL, read from the secret and cached for a few minutes."""

    def __init__(self, secrets: SecretReader, secret_arn: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.secrets = secrets
        self.secret_arn = secret_arn
        self.clock = clock
        self._routes: dict[str, str] = {}
        self._read_at: float | None = None

    def routes(self) -> dict[str, str]:
        now = self.clock()
        if self._read_at is None or now - self._read_at > CACHE_SECONDS:
            raw = self.secrets.get_secret_value(SecretId=self.secret_arn).get("SecretString") or "{}"
            parsed = json.loads(str(raw))
            if not isinstance(parsed, dict):
                raise ValueError("a chat webhook secret must be a JSON object of recipient -> webhook URL")
            self._routes = {str(k): str(v) for k, v in parsed.items() if str(v).startswith("https://")}
            self._read_at = now
        return self._routes

    def urls_for(self, notification: Notification) -> list[str]:
        """Where this notification goes: the recipient's own webhook, and the shared channel if it may."""
        routes = self.routes()
        own = routes.get(notification.recipient) if notification.personal else None
        urls = [own] if own else []
        channel = routes.get(CHANNEL)
        if channel and channel not in urls and _fit_for_channel(notification):
            urls.append(channel)
        return urls

    def is_personal(self, url: str, recipient: str) -> bool:
        """Is this webhook the recipient's alone (keyed by them only, and not the shared channel)?"""
        keys = [key for key, value in self.routes().items() if value == url]
        return keys == [recipient] and recipient != CHANNEL


def _fit_for_channel(notification: Notification) -> bool:
    """A shared channel sees team copies, never a personal link (nor one copy per approver)."""
    return not notification.link and (not notification.personal or notification.shared)


class ChatNotifier:
    """Posts notifications, rendered for one chat service, to the webhooks `WebhookRoutes` routes them to."""

    def __init__(
        self,
        routes: WebhookRoutes,
        render: Render,
        post: Callable[[str, bytes], int] | None = None,
        may_carry_link: Callable[[str], bool] = lambda _: True,
    ) -> None:
        self.routes = routes
        self.render = render
        self.post = post
        self.may_carry_link = may_carry_link  # the service's own limit: a URL that can only post to a channel

    def send(self, notification: Notification) -> None:
        """Post to every webhook it is routed to; one that fails (logged) stops none of the others."""
        post = self.post or post_json  # looked up when sending, so the local stack and tests can stand in for it
        failures: list[Exception] = []
        for url in self.routes.urls_for(notification):
            with_link = (
                notification.personal
                and self.routes.is_personal(url, notification.recipient)
                and self.may_carry_link(url)
            )
            try:
                post(url, json.dumps(self.render(notification, with_link)).encode())
            except Exception as error:  # re-raised below, after the other webhooks had theirs
                logger.exception("chat webhook failed", extra={"event": notification.event})
                failures.append(error)
        if failures:
            raise failures[0]


class FanOut:
    """Send through every sink; one failing (a chat service down) never stops the others (SNS)."""

    def __init__(self, sinks: Sequence[NotificationSink]) -> None:
        self.sinks = list(sinks)

    def send(self, notification: Notification) -> None:
        failures: list[Exception] = []
        for sink in self.sinks:
            try:
                sink.send(notification)
            except Exception as error:  # logged here, re-raised below so the caller still knows
                logger.exception("notification sink failed", extra={"sink": type(sink).__name__})
                failures.append(error)
        if failures:
            raise failures[0]
