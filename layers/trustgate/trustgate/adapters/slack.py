"""Slack incoming webhooks: Block Kit messages, with a button that opens the approval page.

Routing and the personal-link rule are `chat.WebhookRoutes`'s (SlackWebhookSecretArn names the secret).
"""

from __future__ import annotations

from typing import Any

from trustgate.core.messages import Notification

SECTION_LIMIT = 3000  # Slack's limit for a section's text


def block_kit(notification: Notification, with_link: bool) -> dict[str, Any]:
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
