"""What people are told: notification texts for email and AWS Chatbot. Pure; `notify` sends them.

An approver's message carries their personal approval link. That link is a bearer credential: the
message is personal (`recipient` = the approver), it goes only to deliveries filtered on that
recipient, the link is in the email text only (the chat card never holds it), and shared subscribers
get a separate team copy without links (`TEAM`). Text people typed (justification, ticket, comments,
reasons) is rendered inert (`user_text.inert`): one bounded line, links defanged, below the link block.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from trustgate.core.clock import to_rfc3339
from trustgate.core.durations import format_duration
from trustgate.core.identity import role_name_of
from trustgate.core.models import AccessRequest, RequestStatus, way_in
from trustgate.core.user_text import inert
from trustgate.core.wording import DECISION_WORDS, ended_phrase, outcome_of

BRAND = "[TrustGate]"
TEAM = "*"  # the recipient of a team copy: what shared subscribers (a team mailbox, a channel) receive
LINK_BLOCK_START = "=== Your approval link " + "=" * 48
LINK_BLOCK_END = "=== End of your approval link " + "=" * 41


@dataclass(frozen=True)
class Notification:
    """One message to one audience; `recipient` lets SNS subscriptions filter to a person.

    A message to a person goes to their own delivery only; `shared` also sends the team a copy
    (never with a link). A message to `TEAM` goes to shared subscribers only.
    """

    event: str
    subject: str
    text: str
    recipient: str
    audience: str  # requester | approver | admin | team
    request: AccessRequest
    link: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    chat_text: str = ""  # the card's body; empty = `text` (which must then hold no personal link)
    next_steps: tuple[str, ...] = ()
    shared: bool = False

    def __post_init__(self) -> None:
        if self.link and (self.shared or self.recipient == TEAM):
            raise ValueError("a message with a personal approval link is never shared")
        if self.link and (not self.chat_text or self.link in self.chat_text):
            raise ValueError("a message with a personal approval link needs a chat text without it")

    @property
    def personal(self) -> bool:
        """Addressed to one person (their own delivery), not to the team."""
        return self.recipient != TEAM

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


def one_line(text: str | None) -> str:
    """User text made inert: one bounded line, no invisible characters, links defanged (see `user_text`)."""
    return inert(text)


_MARKDOWN = re.compile(r"([\\`*_~\[\]()<>|#>])")


def chat_text(text: str | None) -> str:
    """User text inert in a chat card: one line, links defanged, markdown escaped (no links, no bold, no `<!here>`)."""
    return _MARKDOWN.sub(r"\\\1", one_line(text))


def _from(request: AccessRequest) -> str:
    """` from <start>` for scheduled access (it begins then, not once approved), else nothing."""
    return f" from {human_time(request.start_at)}" if request.start_at is not None else ""


def scheduled_window(request: AccessRequest) -> str | None:
    """`2026-12-01 21:00 UTC (scheduled; ends 2026-12-01 23:00 UTC)` for scheduled access, else None."""
    if request.start_at is None:
        return None
    return f"{human_time(request.start_at)} (scheduled; ends {human_time(request.requested_end())})"


def roles_named(request: AccessRequest) -> str:
    """The role a request asks for, or each role of a multi-role request: `RoleA, RoleB`."""
    return ", ".join(role_name_of(arn) for arn in request.roles or [request.role_arn])


def _summary(request: AccessRequest) -> str:
    lines = [
        f"Requester:     {request.requester.label} via {request.principal_arn}",
        *(
            [f"Roles:         {', '.join(request.roles)} (one decision, one grant each)"]
            if request.roles
            else [f"Role:          {request.role_arn}"]
        ),
        f"Duration:      {human_duration(request.duration)} ({format_duration(request.duration)})",
    ]
    starts = scheduled_window(request)
    if starts:
        lines.append(f"Starts:        {starts}")
    lines.append(f"Justification: {one_line(request.justification)}")
    if request.ticket:
        lines.append(f"Ticket:        {one_line(request.ticket)}")
    change = extension_change(request)
    if change:
        lines.append(f"Extension:     {request.requester.label} {change}")
    if request.break_glass:
        lines.append(f"Break-glass:   {_review_state(request)}")
    lines.append(f"Request id:    {request.id}")
    return "\n".join(lines)


def _review_state(request: AccessRequest) -> str:
    """`granted without approval; review pending` or the verdict and who gave it."""
    review = request.review
    if review is None:
        return "granted without approval; an approver's review is pending"
    return f"granted without approval; reviewed {review.verdict} by {short_principal(review.reviewer_arn)}"


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
        *([f"*Roles:* `{'`, `'.join(request.roles)}`"] if request.roles else [f"*Role:* `{request.role_arn}`"]),
        f"*Duration:* {human_duration(request.duration)}",
    ]
    starts = scheduled_window(request)
    if starts:
        lines.append(f"*Starts:* {starts}")
    lines.append(f"*Justification:* {chat_text(request.justification)}")
    if request.ticket:
        lines.append(f"*Ticket:* {chat_text(request.ticket)}")
    change = extension_change(request)
    if change:
        lines.append(f"*Extension:* {change}")
    if request.break_glass:
        lines.append(f"*Break-glass:* {_review_state(request)}")
    lines.append(f"*Request id:* `{request.id}`")
    return "\n".join(lines)


# -- to approvers --------------------------------------------------------------------------------

USER_TEXT_NOTE = (
    "The justification and ticket below are the requester's own words, shown on one line with any links\n"
    "defanged (https[:]//…). TrustGate's only link is the one in the block above."
)


def _decide_commands(request: AccessRequest) -> list[str]:
    return [f"trustgate approve {request.id} --comment '…'", f"trustgate deny {request.id} --comment '…'"]


def _progress(request: AccessRequest) -> tuple[str, str]:
    deadline = human_time(request.approval_deadline) if request.approval_deadline else "the end of the approval window"
    return f"{len(request.approvals_by('approve'))} given, {request.required_approvals} needed", deadline


def approval_needed(
    request: AccessRequest, approver: str, link: str | None, withheld: str | None = None
) -> Notification:
    """Ask one approver to decide: their own single-use link first, in a delimited block, then the request.

    `withheld` says why a link that was minted is not in the message (the delivery is not the approver's alone).
    """
    role = roles_named(request)
    who = short_principal(request.principal_arn)
    progress, deadline = _progress(request)
    cli = _decide_commands(request)
    lines = [f"{who} asks for access to {role} for {human_duration(request.duration)}{_from(request)}.", ""]
    if link:
        lines += [
            LINK_BLOCK_START,
            "This link is yours alone: it decides as you, so do not forward it. It works once, and",
            "stops working when the request is decided or times out. Opening it only shows the request.",
            link,
            "Or from a terminal:",
            *(f"  {command}" for command in cli),
            LINK_BLOCK_END,
            USER_TEXT_NOTE,
        ]
    else:
        if withheld:
            lines += [
                "Your approval link was withheld: " + withheld,
                "Ask your TrustGate operator for a delivery of your own (docs/notifications.md).",
                "",
            ]
        lines += ["Decide from a terminal:", *(f"  {command}" for command in cli)]
    lines += [
        "",
        _summary(request),
        f"Approvals:     {progress}",
        f"Times out at:  {deadline}",
    ]
    chat = "\n".join(
        [
            f"{who} asks for access to *{role}* for {human_duration(request.duration)}{_from(request)}.",
            _chat_summary(request),
            f"*Approvals:* {progress}",
            f"*Times out at:* {deadline}",
            "Approvers use their own approval link or `trustgate approve`.",
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


def request_notice(request: AccessRequest, recipient: str = TEAM) -> Notification:
    """The request without any link: for shared subscribers (`TEAM`) and the role policy's `notify` targets."""
    role = roles_named(request)
    who = short_principal(request.principal_arn)
    progress, deadline = _progress(request)
    cli = _decide_commands(request)
    named = [short_principal(a) for a in dict.fromkeys(request.approvers) if a.startswith("arn:") and "*" not in a]
    lines = [
        f"{who} asks for access to {role} for {human_duration(request.duration)}{_from(request)}.",
        "",
        f"Approvers use their own link or `trustgate approve {request.id}`. Each approver's personal link goes",
        "only to that approver's own delivery; this copy never carries one.",
        *(f"  {command}" for command in cli),
        "",
        _summary(request),
        f"Approvers:     {', '.join(named) or 'see the role policy'}",
        f"Approvals:     {progress}",
        f"Times out at:  {deadline}",
    ]
    return Notification(
        "approval.requested",
        f"{BRAND} {who} asks for {role} for {human_duration(request.duration)}",
        "\n".join(lines),
        recipient,
        "team" if recipient == TEAM else "watcher",
        request,
        chat_text="\n".join(
            [
                f"{who} asks for access to *{role}* for {human_duration(request.duration)}{_from(request)}.",
                _chat_summary(request),
                f"*Approvals:* {progress}",
                f"*Times out at:* {deadline}",
                "Approvers use their own approval link or `trustgate approve`.",
            ]
        ),
        next_steps=tuple(cli),
    )


def links_withheld(request: AccessRequest, approver: str, why: str) -> Notification:
    """Tell shared subscribers (the operators) that an approver's link was withheld, and why."""
    who = short_principal(approver)
    return Notification(
        "approval.link_withheld",
        f"{BRAND} Approval link for {who} withheld: their delivery is not theirs alone",
        f"TrustGate did not send {who}'s approval link for request {request.id}: {why}\n"
        "Give each approver a subscription filtered on their own recipient (docs/notifications.md); until then\n"
        f"they decide with `trustgate approve {request.id}`.",
        TEAM,
        "team",
        request,
    )


def already_decided(request: AccessRequest, approver: str) -> Notification:
    """Tell an approver their earlier message is stale: the request was decided (or closed) already."""
    outcome = outcome_of(request)
    role = roles_named(request)
    # Only approvals and denials have deciders; a cancel or a timeout is nobody's approval.
    decisive = next((decision for decision, word in DECISION_WORDS.items() if word == outcome), None)
    by = ", ".join(short_principal(a.approver_arn) for a in request.approvals if a.decision == decisive)
    detail = f" by {by}" if by else ""
    body = (
        f"Request {request.id} for {role} {ended_phrase(outcome, already=True)}{detail}. No action is needed from "
        "you; your approval link no longer works.\n\n" + _summary(request)
    )
    return Notification(
        "approval.closed",
        f"{BRAND} No action needed: {short_principal(request.principal_arn)}'s request for {role} "
        f"{ended_phrase(outcome)}",
        body,
        approver,
        "approver",
        request,
    )


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
            + (
                ["", "This was break-glass access: your approvers were told at once and review it afterwards."]
                if request.break_glass
                else []
            )
        )
        access = way_in(request)
        steps = (f"Switch role: {access.console_url}", access.assume_role_command)
    elif status == RequestStatus.SCHEDULED:
        begins, ends = human_time(request.start_at), human_time(request.requested_end())
        subject = f"{BRAND} Access to {role} approved: it begins at {begins}"
        body = "\n".join(
            [
                f"Your request {request.id} was approved. Your access to {role} begins at {begins} and ends at "
                f"{ends}; until then the role does not let you in. You are told again when it begins.",
                "",
                f"Not needed any more? trustgate cancel {request.id}",
            ]
        )
    elif status == RequestStatus.DENIED:
        note = comment or request.reason
        denier = next((a.approver_arn for a in reversed(request.approvals) if a.decision == "deny"), None)
        subject = f"{BRAND} Access to {role} denied"
        body = f"Your request {request.id} was denied" + (f" by {short_principal(denier)}" if denier else "") + "."
        body += f"\nComment: {one_line(note)}" if note else "\nNo comment was given."
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
        body += f"\nReason: {one_line(request.reason)}" if request.reason else ""
    elif status == RequestStatus.EXPIRED:
        subject = f"{BRAND} Access to {role} ended"
        body = f"Your access ({request.id}) ended at {human_time(request.expires_at)}. Ask again if you need more time."
    elif status == RequestStatus.FAILED:
        subject = f"{BRAND} Request for {role} failed"
        body = (
            f"Request {request.id} failed and no access was given.\nReason: {inert(request.reason, 1000) or 'unknown'}\n"
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
        shared=True,  # the team sees outcomes; nothing here is a credential
    )


def coverage_revoked(
    ended: list[AccessRequest], cancelled: list[AccessRequest], was_until: datetime | None, reason: str | None
) -> Notification:
    """Tell a person exactly what a revoke changed: which grants ended, the end they had, what was cancelled."""
    first = (ended or cancelled)[0]
    role = role_name_of(first.role_arn)
    started = [g for g in ended if g.starts_at is not None]
    never_started = [g for g in ended if g.starts_at is None]  # scheduled access revoked before its start
    lines = []
    if started:
        lines.append(
            f"Your access to {role} was revoked at {human_time(started[0].expires_at)}"
            + (f" (it was until {human_time(was_until)})" if was_until else "")
            + ". You can no longer switch into the role, and every session of yours in it stopped working then."
        )
        lines.append("Grants ended: " + ", ".join(g.id for g in started))
    if never_started:
        lines.append(
            "Scheduled access revoked before it began (it will not start): "
            + ", ".join(f"{g.id} (from {human_time(g.start_at)})" for g in never_started)
        )
    if cancelled:
        lines.append("Pending requests cancelled (they would have extended it): " + ", ".join(r.id for r in cancelled))
    if reason:
        lines.append(f"Reason: {one_line(reason)}")
    return Notification(
        "request.revoked",
        f"{BRAND} Access to {role} revoked",
        "\n".join(lines) + f"\n\n{_summary(first)}",
        first.principal_arn,
        "requester",
        first,
        shared=True,
    )


# -- break-glass ---------------------------------------------------------------------------------


def _review_commands(request: AccessRequest) -> list[str]:
    return [
        f"trustgate review {request.id} --ok --comment '…'",
        f"trustgate review {request.id} --misuse --comment '…'",
    ]


def break_glass_used(request: AccessRequest, until: datetime, recipient: str = TEAM) -> Notification:
    """At once, to every approver (`recipient` one of them), the role's notify targets and the team: someone took
    the role without approval. Carries no link: reviewing is done with the CLI or the API, as the reviewer."""
    role = role_name_of(request.role_arn)
    who = short_principal(request.principal_arn)
    commands = _review_commands(request)
    headline = (
        f"BREAK-GLASS: {who} took {role} without approval, for {human_duration(request.duration)} "
        f"(until about {human_time(until)})."
    )
    lines = [
        headline,
        "",
        "Nobody approved this access: the role's break-glass rule let it in at once. An approver reviews every",
        "break-glass grant afterwards (anyone but the requester):",
        *(f"  {command}" for command in commands),
        f"If it should not last: trustgate revoke {request.id} --reason '…' (an admin of the role)",
        "",
        _summary(request),
    ]
    audience = "team" if recipient == TEAM else ("approver" if recipient in request.approvers else "watcher")
    return Notification(
        "break_glass",
        f"{BRAND} BREAK-GLASS: {who} took {role} without approval",
        "\n".join(lines),
        recipient,
        audience,
        request,
        chat_text="\n".join([headline, _chat_summary(request), "Approvers review it with `trustgate review`."]),
        next_steps=tuple(commands),
    )


def review_due(request: AccessRequest, reviewer: str) -> Notification:
    """The daily reminder of a break-glass grant nobody has reviewed yet."""
    role = role_name_of(request.role_arn)
    who = short_principal(request.principal_arn)
    commands = _review_commands(request)
    body = "\n".join(
        [
            f"{who} took {role} without approval on {human_time(request.created_at)} (break-glass), and no approver has",
            "reviewed it yet. Review it, or see every one awaiting review with: trustgate list --review pending",
            *(f"  {command}" for command in commands),
            "",
            _summary(request),
        ]
    )
    return Notification(
        "break_glass.review_due",
        f"{BRAND} Review due: {who}'s break-glass use of {role}",
        body,
        reviewer,
        "approver",
        request,
        next_steps=tuple(commands),
    )


def break_glass_reviewed(request: AccessRequest) -> Notification:
    """Tell the requester (and the team) the verdict on their break-glass use."""
    review = request.review
    assert review is not None
    role = role_name_of(request.role_arn)
    verdict = "justified" if review.verdict == "ok" else "MISUSE"
    body = f"{short_principal(review.reviewer_arn)} reviewed your break-glass use of {role} ({request.id}): {verdict}."
    body += f"\nComment: {one_line(review.comment)}" if review.comment else "\nNo comment was given."
    return Notification(
        "break_glass.reviewed",
        f"{BRAND} Break-glass use of {role} reviewed: {verdict}",
        f"{body}\n\n{_summary(request)}",
        request.principal_arn,
        "requester",
        request,
        shared=True,
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
