"""What people are told: notification texts for email and AWS Chatbot. Pure; `notify` sends them.

An approver's message carries their personal approval link. That link is a bearer credential, so it
goes into the email text only: the chat card (which a whole channel reads) never contains it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from trustgate.clock import to_rfc3339
from trustgate.durations import format_duration
from trustgate.identity import role_name_of
from trustgate.models import AccessRequest, RequestStatus, way_in

BRAND = "[TrustGate]"


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
    chat_text: str = ""  # the card's body; empty = `text` (which must then hold no personal link)
    next_steps: tuple[str, ...] = ()

    def chatbot(self) -> str:
        """AWS Chatbot custom-notification JSON, so Slack/Teams channels on the topic show it."""
        request = self.request
        return json.dumps(
            {
                "version": "1.0",
                "source": "custom",
                "id": f"{request.id}:{self.event}:{self.recipient}",
                "content": {
                    "textType": "client-markdown",
                    "title": self.subject,
                    "description": self.chat_text or self.text,
                    "nextSteps": list(self.next_steps),
                    "keywords": [self.event, role_name_of(request.role_arn), request.status.value],
                },
                "metadata": {
                    "threadId": request.id,
                    "summary": self.subject,
                    "eventType": self.event,
                    "relatedResources": [request.role_arn, request.principal_arn],
                    "additionalContext": {"request_id": request.id, "recipient": self.recipient},
                    "enableCustomActions": False,
                },
            }
        )


# -- shared wording ------------------------------------------------------------------------------


def human_duration(delta: timedelta) -> str:
    """`1 hour 30 minutes`, `2 days`, `45 minutes`: how a person says a grant's length."""
    total = int(delta.total_seconds())
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [
        f"{n} {unit}{'' if n == 1 else 's'}"
        for n, unit in ((days, "day"), (hours, "hour"), (minutes, "minute"), (seconds, "second"))
        if n
    ]
    return " ".join(parts) or "0 minutes"


def human_time(moment: datetime | None) -> str:
    """`2026-11-26 10:00 UTC`: minutes are precise enough for people; the API keeps seconds."""
    if moment is None:
        return "unknown"
    return f"{to_rfc3339(moment)[:16].replace('T', ' ')} UTC"


def short_principal(arn: str) -> str:
    """`alice (222222222222)` for a user, `Jane@corp (AWSReservedSSO_Admin, 2222…)` for a session."""
    resource = arn.split(":", 5)[-1]
    kind, _, rest = resource.partition("/")
    account = arn.split(":")[4] if arn.count(":") >= 5 else "?"
    if kind == "assumed-role" and "/" in rest:
        role, _, session = rest.partition("/")
        return f"{session} ({role}, {account})"
    return f"{rest.rsplit('/', 1)[-1] or arn} ({account})"


def approvals_so_far(request: AccessRequest) -> str:
    """`1 of 2` approvals given of those the request needs."""
    return f"{len(request.approvals_by('approve'))} of {request.required_approvals}"


def extension_change(request: AccessRequest) -> str | None:
    """For a request made while the person already has access: what approving it changes."""
    if request.covered_until is None:
        return None
    moved = request.covered_until + request.duration
    return f"has access until {human_time(request.covered_until)}; approving moves the end to {human_time(moved)}"


def one_line(text: str) -> str:
    """User text on one line: a justification cannot start a line that looks like one of ours."""
    return " ".join(text.split())


_MARKDOWN = re.compile(r"([\\`*_~\[\]()<>|#>])")


def chat_text(text: str) -> str:
    """User text inert in a chat card: one line, every markdown character escaped (no links, no bold)."""
    return _MARKDOWN.sub(r"\\\1", one_line(text))


def _summary(request: AccessRequest) -> str:
    lines = [
        f"Requester:     {request.requester.label} via {request.principal_arn}",
        f"Role:          {request.role_arn}",
        f"Duration:      {human_duration(request.duration)} ({format_duration(request.duration)})",
        f"Justification: {one_line(request.justification)}",
    ]
    if request.ticket:
        lines.append(f"Ticket:        {one_line(request.ticket)}")
    change = extension_change(request)
    if change:
        lines.append(f"Extension:     {request.requester.label} {change}")
    lines.append(f"Request id:    {request.id}")
    return "\n".join(lines)


def way_in_lines(request: AccessRequest) -> list[str]:
    """The exact way into a granted role (the session name is pinned: no other name works)."""
    access = way_in(request)
    lines = [
        f"Session name:  {access.session_name} (the role only accepts this name for you)",
        f"Console (Switch Role): {access.console_url}",
        f"CLI: {access.assume_role_command}",
    ]
    if access.mfa_required:
        lines.append("MFA is required: sign in with MFA, or pass --serial-number and --token-code as shown.")
    return lines


def _chat_summary(request: AccessRequest) -> str:
    lines = [
        f"*Requester:* `{request.principal_arn}`",
        f"*Role:* `{request.role_arn}`",
        f"*Duration:* {human_duration(request.duration)}",
        f"*Justification:* {chat_text(request.justification)}",
    ]
    if request.ticket:
        lines.append(f"*Ticket:* {chat_text(request.ticket)}")
    change = extension_change(request)
    if change:
        lines.append(f"*Extension:* {change}")
    lines.append(f"*Request id:* `{request.id}`")
    return "\n".join(lines)


# -- to approvers --------------------------------------------------------------------------------


def approval_needed(request: AccessRequest, approver: str, link: str | None) -> Notification:
    """Ask one approver to decide: the request in full, and their own single-use link (email only)."""
    role = role_name_of(request.role_arn)
    who = short_principal(request.principal_arn)
    deadline = human_time(request.approval_deadline) if request.approval_deadline else "the end of the approval window"
    progress = f"{len(request.approvals_by('approve'))} given, {request.required_approvals} needed"
    cli = [f"trustgate approve {request.id} --comment '…'", f"trustgate deny {request.id} --comment '…'"]
    lines = [
        f"{who} asks for access to {role} for {human_duration(request.duration)}.",
        "",
        _summary(request),
        f"Approvals:     {progress}",
        f"Times out at:  {deadline}",
        "",
    ]
    if link:
        lines += [
            "Open your approval page to approve or deny (the link is yours alone, works once,",
            "and stops working when the request is decided or times out):",
            link,
            "",
            "Or from a terminal:",
        ]
    else:
        lines.append("Decide from a terminal:")
    lines += [f"  {command}" for command in cli]
    chat = "\n".join(
        [
            f"{who} asks for access to *{role}* for {human_duration(request.duration)}.",
            _chat_summary(request),
            f"*Approvals:* {progress}",
            f"*Times out at:* {deadline}",
            "Each named approver has a personal approval link in their email.",
        ]
    )
    return Notification(
        "approval.requested",
        f"{BRAND} {who} asks for {role} for {human_duration(request.duration)}: approve?",
        "\n".join(lines),
        approver,
        "approver",
        request,
        link,
        chat_text=chat,
        next_steps=tuple(cli),
    )


def already_decided(request: AccessRequest, approver: str) -> Notification:
    """Tell an approver their earlier message is stale: the request was decided (or closed) already."""
    outcome = _outcome(request)
    role = role_name_of(request.role_arn)
    # Only approvals and denials have deciders; a cancel or a timeout is nobody's approval.
    decisive = {"approved": "approve", "denied": "deny"}.get(outcome)
    by = ", ".join(short_principal(a.approver_arn) for a in request.approvals if a.decision == decisive)
    detail = f" by {by}" if by else ""
    body = (
        f"Request {request.id} for {role} was already {outcome}{detail}. No action is needed from you; "
        "your approval link no longer works.\n\n" + _summary(request)
    )
    return Notification(
        "approval.closed",
        f"{BRAND} No action needed: {short_principal(request.principal_arn)}'s request for {role} was {outcome}",
        body,
        approver,
        "approver",
        request,
    )


def _outcome(request: AccessRequest) -> str:
    """The word for how a request left `pending` (approved while the grant is still being made)."""
    if request.status == RequestStatus.PENDING:
        return "approved" if request.decided_at is not None else "pending"
    if request.status in (RequestStatus.ACTIVE, RequestStatus.EXPIRED, RequestStatus.REVOKED):
        return "approved"
    return {RequestStatus.TIMED_OUT: "timed out"}.get(request.status, request.status.value)


# -- to the requester ----------------------------------------------------------------------------


def outcome_for_requester(request: AccessRequest, comment: str | None = None) -> Notification:
    """Tell the requester where their request stands: granted, denied, timed out, revoked, ended, failed."""
    role = role_name_of(request.role_arn)
    status = request.status
    steps: tuple[str, ...] = ()
    if status == RequestStatus.ACTIVE:
        expires = human_time(request.expires_at)
        subject = f"{BRAND} Access to {role} granted until {expires}"
        body = "\n".join(
            [
                f"Your access to {role} is active until {expires}. At that moment every session of yours in the "
                "role stops working, including ones already open.",
                "",
                *way_in_lines(request),
                "",
                f"Need longer? trustgate extend {request.id} --duration 1h --reason '…' (before it ends)",
                f"Done early?  trustgate revoke {request.id}",
            ]
        )
        access = way_in(request)
        steps = (f"Switch role: {access.console_url}", access.assume_role_command)
    elif status == RequestStatus.DENIED:
        note = comment or request.reason
        denier = next((a.approver_arn for a in reversed(request.approvals) if a.decision == "deny"), None)
        subject = f"{BRAND} Access to {role} denied"
        body = f"Your request {request.id} was denied" + (f" by {short_principal(denier)}" if denier else "") + "."
        body += f"\nComment: {note}" if note else "\nNo comment was given."
    elif status == RequestStatus.TIMED_OUT:
        subject = f"{BRAND} Request for {role} timed out"
        body = (
            f"Nobody decided request {request.id} within the approval window, so no access was given. "
            "Ask again if you still need access, and perhaps tell an approver directly."
        )
    elif status == RequestStatus.REVOKED:
        subject = f"{BRAND} Access to {role} revoked"
        body = (
            f"Your access ({request.id}) was revoked at {human_time(request.expires_at)}: you can no longer switch "
            "into the role, and every session of yours in it stopped working at that moment."
        )
        body += f"\nReason: {request.reason}" if request.reason else ""
    elif status == RequestStatus.EXPIRED:
        subject = f"{BRAND} Access to {role} ended"
        body = f"Your access ({request.id}) ended at {human_time(request.expires_at)}. Ask again if you need more time."
    elif status == RequestStatus.FAILED:
        subject = f"{BRAND} Request for {role} failed"
        body = (
            f"Request {request.id} failed and no access was given.\nReason: {request.reason or 'unknown'}\n"
            "An admin can see the details in the audit log (trustgate audit)."
        )
    else:
        subject = f"{BRAND} Request for {role} is {status.value}"
        body = f"Request {request.id} is now {status.value}."
    return Notification(
        f"request.{status.value}",
        subject,
        f"{body}\n\n{_summary(request)}",
        request.principal_arn,
        "requester",
        request,
        next_steps=steps,
    )


def coverage_revoked(
    ended: list[AccessRequest], cancelled: list[AccessRequest], was_until: datetime | None, reason: str | None
) -> Notification:
    """Tell a person exactly what a revoke changed: which grants ended, the end they had, what was cancelled."""
    first = (ended or cancelled)[0]
    role = role_name_of(first.role_arn)
    now_end = human_time(ended[0].expires_at) if ended else None
    lines = []
    if ended:
        lines.append(
            f"Your access to {role} was revoked at {now_end}"
            + (f" (it was until {human_time(was_until)})" if was_until else "")
            + ". You can no longer switch into the role, and every session of yours in it stopped working then."
        )
        lines.append("Grants ended: " + ", ".join(g.id for g in ended))
    if cancelled:
        lines.append("Pending requests cancelled (they would have extended it): " + ", ".join(r.id for r in cancelled))
    if reason:
        lines.append(f"Reason: {reason}")
    return Notification(
        "request.revoked",
        f"{BRAND} Access to {role} revoked",
        "\n".join(lines) + f"\n\n{_summary(first)}",
        first.principal_arn,
        "requester",
        first,
    )


def expiring_soon(request: AccessRequest) -> Notification:
    """A reminder shortly before a grant ends, with the command that extends it."""
    role = role_name_of(request.role_arn)
    expires = human_time(request.expires_at)
    body = (
        f"Your access to {role} ({request.id}) ends at {expires}; after that you cannot start new sessions.\n"
        f"To keep working, ask for more time now (it goes through approval again):\n"
        f"  trustgate extend {request.id} --duration 1h --reason '…'"
    )
    return Notification(
        "grant.expiring",
        f"{BRAND} Access to {role} ends at {expires}",
        f"{body}\n\n{_summary(request)}",
        request.principal_arn,
        "requester",
        request,
        next_steps=(f"trustgate extend {request.id} --duration 1h --reason '…'",),
    )
