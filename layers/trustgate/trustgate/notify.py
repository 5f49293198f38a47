"""SNS adapter: one message per recipient, readable as email and as an AWS Chatbot notification."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from trustgate.messages import Notification

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient


class Notifier:
    def __init__(self, client: SNSClient, topic_arn: str) -> None:
        self.client = client
        self.topic_arn = topic_arn

    def send(self, notification: Notification) -> None:
        # Per-protocol bodies: email gets plain text, HTTPS (Chatbot) and everything else the JSON card.
        message = {"default": notification.chatbot(), "email": notification.text, "sqs": notification.text}
        attributes = {
            "event": notification.event,
            "recipient": notification.recipient,
            "audience": notification.audience,
            "role_arn": notification.request.role_arn,
            "request_id": notification.request.id,
        }
        self.client.publish(
            TopicArn=self.topic_arn,
            Subject=notification.subject[:99],
            Message=json.dumps(message),
            MessageStructure="json",
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
        )
