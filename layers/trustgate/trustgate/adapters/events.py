"""EventBridge adapter: every state change goes out as `trustgate.<event>` for SIEM and chat routing.

An event is published after its audit record is committed, so it can never be the reason a change fails:
callers publish through `transitions.publish_quietly`, which logs and counts what could not be sent. The audit log
(`GET /audit`) stays the record of what happened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trustgate.core.models import AuditEvent

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

SOURCE = "trustgate"


class EventNotPublishedError(Exception):
    """EventBridge answered, but refused the event (`FailedEntryCount` > 0): it was not put on the bus."""

    def __init__(self, action: str, code: str, message: str) -> None:
        super().__init__(f"EventBridge did not accept the trustgate.{action} event: {code}: {message}")
        self.code = code


class EventPublisher:
    def __init__(self, client: EventBridgeClient, bus_name: str) -> None:
        self.client = client
        self.bus_name = bus_name

    def publish(self, event: AuditEvent) -> None:
        """Put the event on the bus; raises if the call fails or EventBridge refuses the entry."""
        response = self.client.put_events(
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
        # put_events answers 200 even when it refuses an entry (throttled, internal failure): only the
        # entry says so.
        if response.get("FailedEntryCount", 0):
            failed = [entry for entry in response.get("Entries", []) if entry.get("ErrorCode")]
            code = failed[0].get("ErrorCode", "unknown") if failed else "unknown"
            reason = failed[0].get("ErrorMessage", "no reason given") if failed else "no reason given"
            raise EventNotPublishedError(event.action, code, reason)
