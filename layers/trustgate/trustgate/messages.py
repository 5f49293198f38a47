"""What people are told: notification texts for email and AWS Chatbot. Pure; `notify` sends them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from trustgate.clock import to_rfc3339
from trustgate.durations import format_duration
from trustgate.identity import account_of, role_name_of
from trustgate.models import AccessRequest


@dataclass(frozen=True)
class Notification:
    """One message to one audience; `recipient` lets SNS subscriptions filter to a person."""

    event: str
    subject: str
    text: str
    recipient: str
    audience: str  # requester | approver | admin
    request: AccessRequest
    link: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def chatbot(self) -> str:
        """AWS Chatbot custom-notification JSON, so Slack/Teams channels on the topic show it."""
        description = self.text if not self.link else f"{self.text}\n\n<{self.link}|Open the approval page>"
        return json.dumps(
            {
                "version": "1.0",
                "source": "custom",
                "id": f"{self.request.id}:{self.event}:{self.recipient}",
                "content": {"textType": "client-markdown", "title": self.subject, "description": description},
                "metadata": {"threadId": self.request.id, "enableCustomActions": False},
            }
        )


def switch_role_url(role_arn: str) -> str:
    name = role_name_of(role_arn)
    return f"https://signin.aws.amazon.com/switchrole?roleName={name}&account={account_of(role_arn)}&displayName={name}"


def _summary(request: AccessRequest) -> str:
    lines = [
        f"Requester:     {request.principal_arn}",
        f"Role:          {request.role_arn}",
        f"Duration:      {format_duration(request.duration)}",
        f"Justification: {request.justification}",
    ]
    if request.ticket:
        lines.append(f"Ticket:        {request.ticket}")
    lines.append(f"Request id:    {request.id}")
    return "\n".join(lines)


def approval_needed(request: AccessRequest, approver: str, link: str | None) -> Notification:
    approved = len(request.approvals_by("approve"))
    deadline = to_rfc3339(request.approval_deadline) if request.approval_deadline else "the approval window"
    how = f"Decide here (the link is yours alone and works once): {link}" if link else ""
    text = "\n".join(
        [
            f"{request.principal_arn} asks for access to {role_name_of(request.role_arn)}.",
            "",
            _summary(request),
            f"Approvals:     {approved} of {request.required_approvals} needed",
            f"Times out at:  {deadline}",
            "",
            how,
            f"Or: trustgate approve {request.id}   /   trustgate deny {request.id} --comment '…'",
        ]
    )
    return Notification(
        "approval.requested",
        f"[TrustGate] Approve access to {role_name_of(request.role_arn)}?",
        text.strip(),
        approver,
        "approver",
        request,
        link,
    )


def outcome_for_requester(request: AccessRequest, comment: str | None = None) -> Notification:
    role = role_name_of(request.role_arn)
    status = request.status.value
    if status == "active":
        expires = to_rfc3339(request.expires_at) if request.expires_at else "?"
        subject = f"[TrustGate] Access to {role} granted until {expires}"
        body = (
            f"Your access to {request.role_arn} is active until {expires}.\n\n"
            f"Console: {switch_role_url(request.role_arn)}\n"
            f"CLI:     aws sts assume-role --role-arn {request.role_arn} --role-session-name {request.id}"
        )
    elif status == "denied":
        subject = f"[TrustGate] Access to {role} denied"
        body = f"Your request {request.id} was denied." + (f"\nComment: {comment}" if comment else "")
    elif status == "timed_out":
        subject = f"[TrustGate] Request for {role} timed out"
        body = f"Nobody decided request {request.id} within the approval window. Ask again if you still need access."
    elif status == "revoked":
        subject = f"[TrustGate] Access to {role} revoked"
        body = f"Your access ({request.id}) was revoked." + (f"\nReason: {request.reason}" if request.reason else "")
    elif status == "expired":
        subject = f"[TrustGate] Access to {role} expired"
        body = f"Your access ({request.id}) has ended. Use `trustgate extend` before expiry next time."
    elif status == "failed":
        subject = f"[TrustGate] Request for {role} failed"
        body = f"Request {request.id} failed and no access was given.\nReason: {request.reason or 'unknown'}"
    else:
        subject = f"[TrustGate] Request for {role} is {status}"
        body = f"Request {request.id} is now {status}."
    return Notification(
        f"request.{status}", subject, f"{body}\n\n{_summary(request)}", request.principal_arn, "requester", request
    )


def already_decided(request: AccessRequest, approver: str) -> Notification:
    outcome = request.status.value if request.status.value != "pending" else "approved"
    return Notification(
        "approval.closed",
        f"[TrustGate] No action needed: request for {role_name_of(request.role_arn)} is {outcome}",
        f"Request {request.id} was already decided ({outcome}); its approval links no longer work.\n\n{_summary(request)}",
        approver,
        "approver",
        request,
    )


def expiring_soon(request: AccessRequest) -> Notification:
    expires = to_rfc3339(request.expires_at) if request.expires_at else "?"
    return Notification(
        "grant.expiring",
        f"[TrustGate] Access to {role_name_of(request.role_arn)} ends at {expires}",
        f"Your access ({request.id}) ends at {expires}. To keep it: trustgate extend {request.id} --duration 1h --reason '…'",
        request.principal_arn,
        "requester",
        request,
    )
