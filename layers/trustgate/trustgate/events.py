"""EventBridge adapter: every state change goes out as `trustgate.<event>` for SIEM and chat routing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trustgate.models import AuditEvent

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

SOURCE = "trustgate"


class EventPublisher:
    def __init__(self, client: EventBridgeClient, bus_name: str) -> None:
        self.client = client
        self.bus_name = bus_name

    def publish(self, event: AuditEvent) -> None:
        self.client.put_events(
            Entries=[
                {
                    "Source": SOURCE,
                    "DetailType": f"trustgate.{event.action}",
                    "Detail": event.model_dump_json(),
                    "EventBusName": self.bus_name,
                    "Resources": [arn for arn in (event.role_arn,) if arn],
                }
            ]
        )
