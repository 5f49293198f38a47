"""Optional Slack incoming webhooks: Block Kit messages, with a button that opens the approval page.

Enabled when SLACK_WEBHOOK_SECRET_ARN names a Secrets Manager secret holding a JSON object that maps
recipients to incoming-webhook URLs:

    {"arn:aws:iam::222222222222:user/bob": "https://hooks.slack.com/services/…",   # bob's own DM
     "*": "https://hooks.slack.com/services/…"}                                     # a shared channel

A webhook keyed by one recipient (an approver's ARN, or a role policy's `notify` target) gets that
recipient's messages, with an "Open approval page" button when the message carries a personal link
and the webhook is theirs alone. The `*` webhook is a shared channel: it gets the team copies (a new
request, without links, and every message to requesters) and never a personal link, which would let
anyone in the channel decide as that approver. A webhook URL that appears under several keys, or is
also the `*` channel, is shared too: it never gets a link either.
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
SECTION_LIMIT = 3000  # Slack's limit for a section's text


class SecretReader(Protocol):
    """The one Secrets Manager call this adapter needs (a boto3 `secretsmanager` client has it)."""

    def get_secret_value(self, *, SecretId: str) -> Mapping[str, Any]: ...


class NotificationSink(Protocol):
    def send(self, notification: Notification) -> None: ...


def _post_json(url: str, body: bytes) -> int:
    if not url.startswith("https://"):
        raise ValueError("Slack webhooks must be https:// URLs")
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - https only
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - https only
        return int(response.status)


class SlackWebhooks:
    """Recipient → webhook URL, read from the secret and cached for a few minutes."""

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
                raise ValueError("the Slack webhook secret must be a JSON object of recipient -> webhook URL")
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


def block_kit(notification: Notification, *, with_link: bool) -> dict[str, Any]:
    """The Block Kit message: title, the request, and a button to the approval page when allowed."""
    # A message with a link always has a chat text without it (`Notification` checks): the link is only a button.
    text = _mrkdwn_escape(notification.chat_text or notification.text)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": notification.subject[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:SECTION_LIMIT]}},
    ]
    if with_link and notification.link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "open-approval-page",
                        "style": "primary",
                        "text": {"type": "plain_text", "text": "Open approval page"},
                        "url": notification.link,
                    }
                ],
            }
        )
    steps = "\n".join(f"`{_mrkdwn_escape(step)}`" for step in notification.next_steps)
    context = f"TrustGate · request `{_mrkdwn_escape(notification.request.id)}`" + (f"\n{steps}" if steps else "")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context[:SECTION_LIMIT]}]})
    return {"text": notification.subject, "blocks": blocks}


def _mrkdwn_escape(text: str) -> str:
    # Slack's three control characters; everything else is shown as typed (no @channel pings from a justification).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackNotifier:
    """Posts notifications to the webhooks `SlackWebhooks` routes them to."""

    def __init__(self, webhooks: SlackWebhooks, post: Callable[[str, bytes], int] = _post_json) -> None:
        self.webhooks = webhooks
        self.post = post

    def send(self, notification: Notification) -> None:
        for url in self.webhooks.urls_for(notification):
            with_link = notification.personal and self.webhooks.is_personal(url, notification.recipient)
            body = block_kit(notification, with_link=with_link)
            self.post(url, json.dumps(body).encode())


class FanOut:
    """Send through every sink; one failing (Slack down) never stops the others (SNS)."""

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
