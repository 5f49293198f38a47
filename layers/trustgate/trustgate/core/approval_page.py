"""The approval page: HTML for GET/POST /decide/{token}. Pure (standard library only).

Every value that comes from a request, an ARN or an error is passed through `_e` (html.escape) before
it reaches the markup: a justification containing `<script>` renders as text. The page needs no
JavaScript; its one `<style>` block is allowed by hash in a Content-Security-Policy that forbids
everything else, so even an escaping bug could not run a script.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from trustgate.core.durations import format_duration
from trustgate.core.errors import InvalidPrincipalError
from trustgate.core.identity import person_of
from trustgate.core.messages import (
    approvals_so_far,
    extension_change,
    human_duration,
    human_time,
    roles_named,
    scheduled_window,
    short_principal,
    way_in_lines,
)
from trustgate.core.models import AccessRequest, RequestStatus
from trustgate.core.wording import DECISION_WORDS, status_label

CSS = """
:root{color-scheme:light dark;--bg:#f4f5f7;--card:#fff;--text:#16191f;--muted:#5f6b7a;--line:#e3e6ea;
--ok:#1d8102;--ok-bg:#e9f6e5;--bad:#c0392b;--bad-bg:#fbeaea;--warn:#8a5a00;--warn-bg:#fff4db;--accent:#0b5fff}
@media (prefers-color-scheme:dark){:root{--bg:#0f1115;--card:#181b21;--text:#e8eaed;--muted:#9aa4b1;
--line:#2b3039;--ok:#5ccf3a;--ok-bg:#17301a;--bad:#ff7b6e;--bad-bg:#3a1b19;--warn:#f3c257;--warn-bg:#352a10}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--text);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,sans-serif;-webkit-text-size-adjust:100%}
main{max-width:40rem;margin:0 auto;padding:1rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:1.25rem 1.25rem 1.5rem}
header{display:flex;justify-content:space-between;align-items:center;gap:.5rem;margin-bottom:.75rem}
.brand{font-weight:700;letter-spacing:.02em;color:var(--muted)}
.badge{font-size:.8rem;font-weight:600;padding:.15rem .6rem;border-radius:999px;background:var(--line)}
.badge.ok{background:var(--ok-bg);color:var(--ok)}.badge.bad{background:var(--bad-bg);color:var(--bad)}
.badge.warn{background:var(--warn-bg);color:var(--warn)}
h1{font-size:1.35rem;line-height:1.3;margin:.25rem 0 .75rem}
p{margin:.5rem 0}
dl{display:grid;grid-template-columns:minmax(7rem,auto) 1fr;gap:.4rem 1rem;margin:1rem 0;padding:1rem 0;
border-top:1px solid var(--line);border-bottom:1px solid var(--line)}
dt{color:var(--muted);font-size:.9rem}
dd{margin:0;min-width:0;overflow-wrap:anywhere}
code{font:.85rem/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.text{white-space:pre-wrap}
.muted{color:var(--muted);font-size:.9rem;font-weight:400}
ul.approvals{margin:.25rem 0 0;padding-left:1.1rem}
ul.way-in{margin:.25rem 0 1rem;padding-left:1.1rem}ul.way-in li{overflow-wrap:anywhere;margin:.2rem 0}
label{display:block;font-weight:600;margin:1rem 0 .35rem}
textarea{width:100%;min-height:5rem;padding:.6rem;border:1px solid var(--line);border-radius:8px;
background:var(--bg);color:var(--text);font:inherit;resize:vertical}
.actions{display:flex;gap:.75rem;margin-top:1rem;flex-wrap:wrap}
button{flex:1 1 10rem;min-height:3rem;border:0;border-radius:8px;font-family:inherit;font-size:1.05rem;
font-weight:600;cursor:pointer;color:#fff}
button.approve{background:var(--ok)}button.deny{background:var(--bad)}
button:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
@media (max-width:30rem){dl{grid-template-columns:1fr;gap:.1rem}dd{margin-bottom:.5rem}main{padding:.5rem}}
footer{max-width:40rem;margin:0 auto;padding:0 1rem 2rem;color:var(--muted);font-size:.8rem}
""".strip()

_CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on the page's own form
# post, which would blind the cross-site check; same-origin still never sends the token-bearing URL
# to another site (and the page links nowhere else).
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
    "Cross-Origin-Opener-Policy": "same-origin",
}
HTML_CONTENT_TYPE = "text/html; charset=utf-8"


@dataclass(frozen=True)
class Page:
    """A rendered page and the status it is served with."""

    status: int
    title: str
    html: str
    headers: dict[str, str] = field(default_factory=lambda: dict(SECURITY_HEADERS))


def _e(value: object) -> str:
    """Escape for HTML text and attribute values (quotes included)."""
    return html.escape(str(value), quote=True)


# -- the pages -----------------------------------------------------------------------------------


def decision_page(
    request: AccessRequest, approver_arn: str, csrf: str, now: datetime, *, nonconforming: str | None = None
) -> Page:
    """GET /decide/{token}: the request in full, a comment box, Approve and Deny in one POST form.

    `nonconforming`: why the role policy in force no longer allows approving it; the page says so up front
    (an approval is refused, a deny still closes the request).
    """
    role = roles_named(request)
    title = f"Approve access to {role}?"
    duration = f"<strong>{_e(human_duration(request.duration))}</strong>"
    if request.covered_until is not None:  # an extension: they have access now, and ask for more
        asks = f"<p>{_who(request)} asks for {duration} more access to <strong>{_e(role)}</strong>.</p>"
    else:
        asks = f"<p>{_who(request)} asks for access to <strong>{_e(role)}</strong> for\n{duration}.</p>"
    if nonconforming:
        asks += (
            f"<p><strong>The role policy changed after this request was made: {_e(nonconforming)}.</strong> "
            "It can no longer be approved; deny it, or the requester cancels it and asks again.</p>"
        )
    body = f"""
{asks}
{_details(request, now)}
<p class="muted">You are deciding as <code>{_e(approver_arn)}</code>. This link is yours alone and works once.</p>
<form method="post" autocomplete="off">
<input type="hidden" name="csrf" value="{_e(csrf)}">
<input type="hidden" name="request_id" value="{_e(request.id)}">
<label for="comment">Comment <span class="muted">(optional; the requester sees it, the audit log keeps it)</span></label>
<textarea id="comment" name="comment" maxlength="1000" rows="3"></textarea>
<div class="actions">
<button class="approve" type="submit" name="decision" value="approve">Approve</button>
<button class="deny" type="submit" name="decision" value="deny">Deny</button>
</div>
</form>"""
    return _page(200, title, title, ("Waiting for approval", "warn"), body)


def result_page(request: AccessRequest, decision: str, now: datetime, *, missing: int | None = None) -> Page:
    """After POST: what this decision did (recorded, approved, access granted, denied, not granted).

    `missing`: approvals still needed as the role policy in force counts them (approvals by approvers it
    no longer names do not count); without it, every approval on the request counts.
    """
    role = roles_named(request)
    so_far = approvals_so_far(request)
    if missing is not None:  # as the policy in force counts them
        so_far = f"{max(request.required_approvals - missing, 0)} of {request.required_approvals}"
    if decision == "deny":
        heading = "Denied"
        badge = ("Denied", "bad")
        lead = f"<p>You denied {_who(request)} access to <strong>{_e(role)}</strong>. They have been told.</p>"
    elif request.status == RequestStatus.FAILED:
        heading = "Not granted"
        badge = ("Failed", "bad")
        lead = f"<p>Your approval was recorded, but access to <strong>{_e(role)}</strong> was not granted.</p>" + (
            f"<p>{_e(_sentence(request.reason))}</p>" if request.reason else ""
        )
    elif request.status == RequestStatus.SCHEDULED:
        heading = "Approved — access begins later"
        badge = ("Approved", "ok")
        lead = (
            f"<p>Approved — {_e(so_far)} approvals. {_who(request)} can switch into <strong>{_e(role)}</strong> "
            f"from <strong>{_e(human_time(request.start_at))}</strong> until "
            f"<strong>{_e(human_time(request.requested_end()))}</strong>, not before.</p>"
        )
    elif request.status == RequestStatus.ACTIVE:
        heading = "Access granted"
        badge = ("Approved", "ok")
        lead = (
            f"<p>Approved — {_e(so_far)} approvals. {_who(request)} can switch into <strong>{_e(role)}</strong> "
            f"until <strong>{_e(human_time(request.expires_at))}</strong>.</p>"
        ) + _way_in(request)
    elif request.decided_at is not None:
        heading = f"Approved — {so_far} approvals"
        badge = ("Approved", "ok")
        lead = (
            f"<p>The request has all the approvals it needs. Access to <strong>{_e(role)}</strong> is being "
            "granted now; the requester is told when it is ready.</p>"
        )
    else:
        if missing is None:
            missing = request.required_approvals - len(request.approvals_by("approve"))
        heading = f"Approved — {so_far} approvals"
        badge = ("Approval recorded", "warn")
        lead = (
            f"<p>Your approval is recorded. {_e(missing)} more approval{'' if missing == 1 else 's'} "
            "needed before access is granted; the other approvers have their own links.</p>"
        )
    body = lead + _details(request, now) + '<p class="muted">You can close this page.</p>'
    return _page(200, heading, heading, badge, body)


# Headings for the error codes the page can meet; anything else falls back to a generic one.
PROBLEM_HEADINGS: dict[str, str] = {
    "invalid_link": "This approval link is not valid",
    "link_expired": "This approval link has expired",
    "link_used": "This approval link was already used",
    "already_decided": "This request was already decided",
    "already_decided_by_you": "You already decided this request",
    "own_request": "You cannot decide your own request",
    "approver_removed": "You are no longer an approver",
    "request_nonconforming": "This request can no longer be approved",
    "forbidden": "You cannot decide this request",
    "csrf_failed": "This form did not come from your approval page",
    "cross_site": "This form was sent from another site",
    "invalid_input": "Something is missing from the form",
    "unsupported_media_type": "This kind of request is not accepted",
    "conflict": "Please try again",
    "throttled": "TrustGate is busy: please try again in a moment",
    "decision_busy": "Others are deciding this request right now",
    "internal": "Something went wrong",
}
_PROBLEM_HINTS: dict[str, str] = {
    "invalid_link": "Check that you opened the whole link from your notification. Links are personal and cannot be guessed.",
    "link_expired": "Links stop working when the request's approval window ends. The requester can ask again.",
    "link_used": "Each link decides once.",
    "already_decided": "Your link no longer works for this request.",
    "own_request": "Someone else must approve access you asked for.",
    "approver_removed": "Your approval link stopped working when the role's approvers changed.",
    "request_nonconforming": "Your link still works to deny it.",
    "csrf_failed": "Open the link from your notification again and decide on that page.",
    "cross_site": "Open the link from your notification again and decide on that page.",
}
# A refusal changes nothing; these pages say so once (the error's own message may already have).
_SAYS_NOTHING_CHANGED = frozenset({"already_decided", "request_nonconforming", "csrf_failed", "cross_site"})
NOTHING_CHANGED = "Nothing was changed."


def problem_page(status: int, code: str, message: str, request: AccessRequest | None, now: datetime) -> Page:
    """A clear page for a link that cannot be used as it was: invalid, expired, used, decided, forbidden.

    With the request, it says how the request ended (who decided it and when) and shows it; the badge is the
    request's status, coloured as the status is (a red `Denied`).
    """
    heading = PROBLEM_HEADINGS.get(code, "This request cannot be completed")
    outcome = decided_by(request) if request is not None else None
    hint = _PROBLEM_HINTS.get(code, "")
    if code == "link_expired" and outcome and request is not None and request.status != RequestStatus.TIMED_OUT:
        hint = "Nothing more is needed from you."  # someone decided it: nobody needs to ask again
    if code in _SAYS_NOTHING_CHANGED and NOTHING_CHANGED[:-1].lower() not in message.lower():
        hint = f"{NOTHING_CHANGED} {hint}"
    parts = [f"<p>{_e(_sentence(message))}</p>"]
    if outcome:
        parts.append(f"<p>{_e(outcome)}</p>")
    if hint:
        parts.append(f'<p class="muted">{_e(hint)}</p>')
    if request is not None:
        parts.append(_details(request, now))
        badge = (status_label(request), _status_tone(request))
    else:
        badge = ("Not available", "bad" if status >= 500 or status in (401, 403) else "warn")
    return _page(status, heading, heading, badge, "".join(parts))


def decided_by(request: AccessRequest) -> str | None:
    """How a request that no longer waits for a decision ended: who decided it and when (None while it waits)."""
    if request.status == RequestStatus.PENDING and request.decided_at is None:
        return None
    denials = request.approvals_by("deny")
    approvals = request.approvals_by("approve")
    if denials:
        return f"{_person(denials[-1].approver_arn)} denied it at {human_time(denials[-1].at)}."
    if request.status == RequestStatus.TIMED_OUT:
        return f"Nobody decided it in time: it timed out at {human_time(request.approval_deadline)}."
    if request.status == RequestStatus.CANCELLED:
        return "The requester cancelled it" + (f" at {human_time(request.decided_at)}." if request.decided_at else ".")
    if request.auto_approved:
        return f"An auto-approve rule of the role approved it at {human_time(request.decided_at)}."
    if approvals:
        names = ", ".join(_person(a.approver_arn) for a in approvals)
        return f"{names} approved it at {human_time(request.decided_at or approvals[-1].at)}."
    return None


# -- pieces --------------------------------------------------------------------------------------


def _page(status: int, title: str, heading: str, badge: tuple[str, str], body: str) -> Page:
    label, tone = badge
    markup = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{_e(title)} · TrustGate</title>
<style>{CSS}</style>
</head>
<body>
<main>
<div class="card">
<header><span class="brand">TrustGate</span><span class="badge {_e(tone)}">{_e(label)}</span></header>
<h1>{_e(heading)}</h1>
{body}
</div>
</main>
<footer>Just-in-time access to AWS roles. Opening this page never approves or denies anything.</footer>
</body>
</html>
"""
    return Page(status, title, markup)


def _sentence(message: str) -> str:
    """Error messages are written lower-case for APIs; a page shows them as a sentence."""
    text = message.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else f"{text}."


def _who(request: AccessRequest) -> str:
    return f"<strong>{_e(_person(request.principal_arn))}</strong>"


def _person(arn: str) -> str:
    """`alice (IAM user, 222222222222)`: who an ARN is, as every rule about *who* counts them."""
    try:
        return person_of(arn).label
    except InvalidPrincipalError:
        return short_principal(arn)


def _way_in(request: AccessRequest) -> str:
    """How the requester gets in, line for line as their "granted" email says it (`messages.way_in_lines`)."""
    items = "".join(f'<li><code class="text">{_e(line)}</code></li>' for line in way_in_lines(request))
    return (
        '<p>How they get in <span class="muted">(their "granted" email says the same)</span>:</p>'
        f'<ul class="way-in">{items}</ul>'
    )


def _status_tone(request: AccessRequest) -> str:
    """The badge colour of a request's status: red for refused, green for approved, amber while it waits."""
    if request.status in (RequestStatus.DENIED, RequestStatus.FAILED):
        return "bad"
    if request.status in (RequestStatus.ACTIVE, RequestStatus.SCHEDULED) or (
        request.status == RequestStatus.PENDING and request.decided_at is not None
    ):
        return "ok"
    return "warn" if request.status == RequestStatus.PENDING else ""


def _details(request: AccessRequest, now: datetime) -> str:
    rows: list[tuple[str, str]] = [
        (
            "Requester",
            f"{_e(_person(request.principal_arn))} <span class='muted'>via</span> <code>{_e(request.principal_arn)}</code>",
        ),
        (
            (
                "Roles",
                "<br>".join(f"<code>{_e(arn)}</code>" for arn in request.roles) + " <span class='muted'>(one "
                "decision for all; each role its own grant)</span>",
            )
            if request.roles
            else ("Role", f"<code>{_e(request.role_arn)}</code>")
        ),
        (
            "Duration",
            f"{_e(human_duration(request.duration))} <span class='muted'>({_e(format_duration(request.duration))})</span>",
        ),
        ("Justification", f'<span class="text">{_e(request.justification)}</span>'),
    ]
    starts = scheduled_window(request)
    if starts:
        rows.insert(3, ("Starts", _e(starts)))
    if request.ticket:
        rows.append(("Ticket", _e(request.ticket)))
    change = extension_change(request)
    if change and request.status == RequestStatus.PENDING:
        rows.append(("Extension", f"{_e(_person(request.principal_arn))} {_e(change)}"))
    rows.append(("Requested", _e(human_time(request.created_at))))
    rows.append(("Approvals", f"{_e(approvals_so_far(request))} needed{_approval_list(request)}"))
    if request.status == RequestStatus.PENDING and request.decided_at is None and request.approval_deadline:
        rows.append(
            ("Times out", f"{_e(human_time(request.approval_deadline))} {_until(request.approval_deadline, now)}")
        )
    elif request.status == RequestStatus.ACTIVE and request.expires_at:
        rows.append(("Access until", _e(human_time(request.expires_at))))
    else:
        rows.append(("Status", _e(status_label(request))))
    rows.append(("Request id", f"<code>{_e(request.id)}</code>"))
    return "<dl>" + "".join(f"<dt>{_e(name)}</dt><dd>{value}</dd>" for name, value in rows) + "</dl>"


def _approval_list(request: AccessRequest) -> str:
    items: Iterable[str] = (
        f"<li>{_e(DECISION_WORDS[a.decision])} by "
        f"{_e(_person(a.approver_arn))} <span class='muted'>via</span> <code>{_e(a.approver_arn)}</code> "
        f"at {_e(human_time(a.at))}" + (f' — <span class="text">{_e(a.comment)}</span>' if a.comment else "") + "</li>"
        for a in request.approvals
    )
    rendered = "".join(items)
    return f'<ul class="approvals">{rendered}</ul>' if rendered else ""


def _until(deadline: datetime, now: datetime) -> str:
    seconds = int((deadline - now).total_seconds())
    if seconds <= 0:
        return '<span class="muted">(now)</span>'
    hours, rest = divmod(seconds, 3600)
    minutes = max(1, rest // 60) if not hours else rest // 60
    left = f"{hours} h {minutes} min" if hours else f"{minutes} min"
    return f'<span class="muted">(in {_e(left)})</span>'
