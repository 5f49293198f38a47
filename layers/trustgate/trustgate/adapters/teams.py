"""Microsoft Teams webhooks (an incoming webhook or a Workflows "post to a channel/chat" URL): Adaptive Cards,
with an Action.OpenUrl to the approval page.

Routing and the personal-link rule are `chat.WebhookRoutes`'s (TeamsWebhookSecretArn names the secret): a Teams
channel is the `*` webhook and never gets a link; an approver's own chat gets theirs. A Teams incoming webhook
(`*.webhook.office.com`, an Office 365 connector) can only post to a channel, so it never gets a link either, even
keyed by one approver (`may_carry_link`): only a Workflows flow that posts to the approver's own chat can.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from trustgate.core.messages import Notification

CARD_VERSION = "1.4"  # what Teams renders on every client
TEXT_LIMIT = 3000  # per text block; a card must stay well under the webhook's 28 KB


CHANNEL_ONLY_HOSTS = (".webhook.office.com",)  # Office 365 connectors: they post to a channel, never to one person


def may_carry_link(url: str) -> bool:
    """Can this webhook be one person's own chat? Not an incoming-webhook connector: those only post to channels."""
    host = (urlsplit(url).hostname or "").lower()
    return not host.endswith(CHANNEL_ONLY_HOSTS)


def adaptive_card(notification: Notification, with_link: bool) -> dict[str, Any]:
    """The Teams message: the title, the request one line per block, its commands, and the page button if allowed.

    The chat text (`Notification.chat_text`) is markdown whose people's words are already inert (one line, links
    defanged, markdown escaped); a message with a link always has one without it, so the link is only the button.
    A message without a chat text is shown as plain text runs, which Teams never reads as markdown."""
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": notification.subject[:TEXT_LIMIT], "weight": "Bolder", "wrap": True},
        *(_lines(notification)),
        {
            "type": "TextBlock",
            "text": "\n\n".join([f"TrustGate · request {notification.request.id}", *notification.next_steps])[
                :TEXT_LIMIT
            ],
            "isSubtle": True,
            "size": "Small",
            "wrap": True,
        },
    ]
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": body,
    }
    if with_link and notification.link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open approval page", "url": notification.link}]
    return {
        "type": "message",
        "summary": notification.subject[:150],
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def _lines(notification: Notification) -> list[dict[str, Any]]:
    if notification.chat_text:
        return [
            {"type": "TextBlock", "text": line[:TEXT_LIMIT], "wrap": True, "spacing": "None"}
            for line in notification.chat_text.splitlines()
            if line
        ]
    return [
        {"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": line[:TEXT_LIMIT]}], "spacing": "None"}
        for line in notification.text.splitlines()
        if line
    ]
