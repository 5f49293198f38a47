"""Microsoft Teams webhooks (an incoming webhook or a Workflows "post to a channel/chat" URL): Adaptive Cards,
with an Action.OpenUrl to the approval page.

Routing and the personal-link rule are `chat.WebhookRoutes`'s (TeamsWebhookSecretArn names the secret): a Teams
channel is the `*` webhook and never gets a link; an approver's own chat gets theirs.
"""

from __future__ import annotations

from typing import Any

from trustgate.core.messages import Notification

CARD_VERSION = "1.4"  # what Teams renders on every client
TEXT_LIMIT = 3000  # per text block; a card must stay well under the webhook's 28 KB


def adaptive_card(notification: Notification, with_link: bool) -> dict[str, Any]:
    """The Teams message: the title, the request one line per block, its commands, and the page button if allowed.

    The text is the chat text (`Notification.chat_text`): people's words in it are already inert (one line, links
    defanged, markdown escaped); a message with a link always has a chat text without it, so the link is only
    the button."""
    lines = (notification.chat_text or notification.text).splitlines()
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": notification.subject[:TEXT_LIMIT], "weight": "Bolder", "wrap": True},
        *({"type": "TextBlock", "text": line[:TEXT_LIMIT], "wrap": True, "spacing": "None"} for line in lines if line),
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
