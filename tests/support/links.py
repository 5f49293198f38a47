"""Approval links as approvers get them, and the approval page as a browser calls it (moto world)."""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from moto.sns.models import sns_backends
from moto.sns.utils import FilterPolicyMatcher

from tests.support.aws import World, wait_for
from trustgate.adapters.notify import recipient_filter

LINK = re.compile(r"https?://[^\s/]+/decide/(?P<token>[A-Za-z0-9_-]+)")
HOST = "127.0.0.1:3000"  # the world's APPROVAL_BASE_URL


@dataclass(frozen=True)
class Sent:
    """One message TrustGate published: the topic, the email text, the chat card and the attributes."""

    topic: str  # "personal" (one person's own deliveries) or "shared" (the team mailbox, alarms, channels)
    subject: str
    email: str
    chat: dict[str, Any]
    attributes: dict[str, str]
    raw_attributes: dict[str, Any]

    @property
    def recipient(self) -> str:
        return self.attributes.get("recipient", "")

    @property
    def event(self) -> str:
        return self.attributes.get("event", "")

    @property
    def request_id(self) -> str:
        return self.attributes.get("request_id", "")

    @property
    def token(self) -> str | None:
        match = LINK.search(self.email)
        return match.group("token") if match else None


def _topic_messages(world: World, topic_arn: str, topic: str) -> list[Sent]:
    _, _, _, region, account, _ = topic_arn.split(":")
    found = sns_backends[account][region].topics[topic_arn]
    sent = []
    for _, message, subject, attributes, _ in list(found.sent_notifications):
        parts = json.loads(message)
        values = {
            name: str(value.get("Value", value.get("StringValue", ""))) for name, value in (attributes or {}).items()
        }
        sent.append(Sent(topic, subject or "", parts["email"], json.loads(parts["default"]), values, attributes or {}))
    return sent


def published(world: World, topic: str | None = None) -> list[Sent]:
    """Everything published so far to TrustGate's topics (or to one: "personal" / "shared"), from moto's SNS."""
    settings = world.deps.settings
    sent = []
    if topic in (None, "personal") and settings.personal_topic_arn:
        sent += _topic_messages(world, settings.personal_topic_arn, "personal")
    if topic in (None, "shared"):
        sent += _topic_messages(world, settings.topic_arn, "shared")
    return sent


def received_by(world: World, recipient: str) -> list[Sent]:
    """What `recipient`'s own delivery receives: the personal topic through the filter policy the docs give
    each person ({"recipient": [ARN]}), evaluated by moto's SNS filter matcher."""
    matcher = FilterPolicyMatcher(recipient_filter(recipient), "MessageAttributes")
    return [s for s in published(world, "personal") if matcher.matches(s.raw_attributes, "")]


def messages_for(world: World, request_id: str, event: str | None = None, topic: str | None = "personal") -> list[Sent]:
    """A request's messages as their recipients get them (the personal topic; `topic="shared"`: team copies)."""
    return [s for s in published(world, topic) if s.request_id == request_id and (event is None or s.event == event)]


def approval_links(world: World, request_id: str, expected: int = 2) -> dict[str, str]:
    """Each approver's token, read from their own delivery's `approval.requested` message once the flow sent it."""

    def probe() -> dict[str, str]:
        approvers = {
            s.recipient for s in messages_for(world, request_id, "approval.requested") if s.topic == "personal"
        }
        found = {
            approver: s.token
            for approver in approvers
            for s in received_by(world, approver)
            if s.request_id == request_id and s.event == "approval.requested" and s.token
        }
        return found if len(found) >= expected else {}

    return wait_for(probe, 20, f"{expected} approval links for {request_id}")


@dataclass(frozen=True)
class PageResponse:
    status: int
    body: str
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


def page_event(
    method: str,
    token: str,
    *,
    form: dict[str, str] | None = None,
    json_body: Any = None,
    raw_body: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event for /decide/{token}, as a browser (or a JSON client) sends it."""
    sent_headers = {"Host": HOST, "Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    body = raw_body
    if form is not None:
        sent_headers["Content-Type"] = "application/x-www-form-urlencoded"
        sent_headers["Origin"] = f"http://{HOST}"
        body = urllib.parse.urlencode(form)
    elif json_body is not None:
        sent_headers["Content-Type"] = "application/json"
        sent_headers["Accept"] = "application/json"
        body = json.dumps(json_body)
    sent_headers.update(headers or {})
    path = f"/decide/{token}"
    return {
        "resource": "/decide/{token}",
        "path": path,
        "httpMethod": method,
        "headers": sent_headers,
        "multiValueHeaders": {k: [v] for k, v in sent_headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"token": token},
        "requestContext": {
            "resourcePath": "/decide/{token}",
            "httpMethod": method,
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": "test-request",
            "domainName": HOST.split(":")[0],
            "identity": {"sourceIp": "203.0.113.10", "userAgent": "pytest", "userArn": None, "caller": None},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def call_page(world: World, method: str, token: str, **kwargs: Any) -> PageResponse:
    """Invoke the DecideFunction as API Gateway would (no IAM auth: the token is the credential)."""
    response = world.invoke("DecideFunction", page_event(method, token, **kwargs))
    headers = {k: v[-1] if isinstance(v, list) else v for k, v in (response.get("multiValueHeaders") or {}).items()}
    headers |= response.get("headers") or {}
    return PageResponse(response["statusCode"], response.get("body") or "", headers)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]*)"', html)
    assert match, "the approval page has no csrf field"
    return match.group(1)


def form_for(html: str, decision: str, comment: str = "") -> dict[str, str]:
    """What the page's form posts when the approver clicks a button."""
    request_id = re.search(r'name="request_id" value="([^"]*)"', html)
    return {
        "csrf": csrf_of(html),
        "request_id": request_id.group(1) if request_id else "",
        "comment": comment,
        "decision": decision,
    }
