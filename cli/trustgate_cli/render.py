"""Plain-text output: aligned tables, request details, JSON documents and unified diffs. No colours, no deps."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from trustgate_cli.arns import role_name
from trustgate_cli.durations import DurationError, duration_in_words, in_words, parse_duration

UTC = timezone.utc  # datetime.UTC is Python 3.11+; the CLI runs on 3.10

Row = dict[str, Any]
Column = tuple[str, Callable[[Row], str]]


def json_text(document: Any) -> str:
    """The API's JSON document, indented, keys in the API's order, for `--output json` and policies."""
    return json.dumps(document, indent=2, ensure_ascii=False)


def table(rows: Iterable[Row], columns: Sequence[Column]) -> str:
    """Left-aligned columns separated by two spaces, headed by the column titles."""
    cells = [[title for title, _ in columns]]
    cells += [[_one_line(cell(row)) for _, cell in columns] for row in rows]
    widths = [max(len(line[index]) for line in cells) for index in range(len(columns))]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip() for line in cells
    )


def key_values(pairs: Iterable[tuple[str, str]]) -> str:
    """`key: value` lines with the values aligned; pairs with an empty value are left out."""
    shown = [(key, value) for key, value in pairs if value]
    width = max((len(key) for key, _ in shown), default=0) + 1
    return "\n".join(f"{key + ':':<{width}} {_one_line(value)}" for key, value in shown)


def short_principal(arn: str) -> str:
    """`arn:aws:sts::111122223333:assumed-role/R/alice` -> `111122223333:assumed-role/R/alice` (still unique)."""
    parts = arn.split(":", 5)
    return ":".join(parts[4:]) if len(parts) == 6 and parts[0] == "arn" else arn


def person_of(row: Row) -> str:
    """Who asked, as a person (`alice (IAM user, 111122223333)`); the short ARN from a server that does not say."""
    return str(row.get("person") or short_principal(str(row.get("principal_arn", ""))))


def approver_of(approval: Row) -> str:
    """Who decided, as a person with the ARN they used: `bob (IAM user, 111122223333) via arn:…:user/bob`."""
    arn = str(approval.get("approver_arn", ""))
    person = approval.get("person")
    return f"{person} via {arn}" if person else short_principal(arn)


def human_time(moment: datetime) -> str:
    """`2026-11-26 10:00 UTC`, as TrustGate's messages write a time for people (minutes, never rounded up)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def parse_time(text: object) -> datetime | None:
    """An RFC 3339 time from the API (`2026-11-26T10:00:00Z`), or None."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def time_text(text: object) -> str:
    """The API's RFC 3339 time as people read it (`2026-11-26 10:00 UTC`); anything unreadable as given."""
    moment = parse_time(text)
    return human_time(moment) if moment else ("" if text is None else str(text))


def clock_time(moment: datetime, now: datetime) -> str:
    """`12:35 UTC` on the same (UTC) day as `now`, else `2026-11-27 12:35 UTC`."""
    same_day = moment.astimezone(UTC).date() == now.astimezone(UTC).date()
    return moment.astimezone(UTC).strftime("%H:%M UTC") if same_day else human_time(moment)


def relative(moment: datetime, now: datetime) -> str:
    """How far `moment` is from `now`: `in 52 min`, `2 hours 5 min ago`, `in 3 days 2 hours`."""
    seconds = (moment - now).total_seconds()
    if abs(seconds) < 60:
        return "in less than a minute" if seconds > 0 else "less than a minute ago"
    minutes = round(abs(seconds) / 60)  # to the nearest minute: the clock time beside it is exact
    span = timedelta(minutes=minutes if minutes < 24 * 60 else minutes - minutes % 60)  # days: to the hour
    return f"in {in_words(span)}" if seconds > 0 else f"{in_words(span)} ago"


def when(text: object, now: datetime) -> str:
    """The API's time relative to `now` and on the clock: `in 52 min (12:35 UTC)`; '' without one."""
    moment = parse_time(text)
    return f"{relative(moment, now)} ({clock_time(moment, now)})" if moment else ""


def status_line(request: Row, now: datetime) -> str:
    """The request's status and what it means now: `active; expires in 52 min (12:35 UTC)`."""
    status = str(request.get("status", ""))
    expires, deadline = parse_time(request.get("expires_at")), request.get("approval_deadline")
    if status == "active" and expires is not None:
        ending = "ends now" if expires <= now else "expires " + relative(expires, now)
        return f"active; {ending} ({clock_time(expires, now)})"
    if status == "expired" and expires is not None:
        return f"expired {relative(expires, now)} ({clock_time(expires, now)})"
    start = parse_time(request.get("start_at"))
    if status == "scheduled" and start is not None:
        return f"scheduled; begins {relative(start, now)} ({clock_time(start, now)})"
    if status == "pending" and request.get("decided_at"):  # the last approval is in: the grant is being made
        return (
            "pending; break-glass, granting access"
            if request.get("break_glass")
            else "pending; approved, granting access"
        )
    if status == "pending" and parse_time(deadline):
        return f"pending; times out {when(deadline, now)} unless approved"
    return status


def extension_change(request: Row) -> str:
    """For a request made while the person has access (`covered_until`): what approving it changes, or ''.

    The wording is the server's (`trustgate.messages.extension_change`), so the CLI, the approval page and
    the approvers' email say the same thing.
    """
    covered_until = parse_time(request.get("covered_until"))
    if covered_until is None:
        return ""
    try:
        moved = covered_until + parse_duration(str(request.get("duration", "")))
    except DurationError:
        return f"has access until {human_time(covered_until)}"
    return f"has access until {human_time(covered_until)}; approving moves the end to {human_time(moved)}"


def way_in_lines(access: Row) -> list[str]:
    """The way into a granted role from a request's `access`, line for line as the "granted" email writes it.

    Mirrors `trustgate.messages.way_in_lines`: the session name is pinned by the trust policy, so the command
    and the console are only shown with it.
    """
    lines = [
        f"Session name:  {access.get('session_name', '')} (the role only accepts this name for you)",
        f"Console (Switch Role): {access.get('console_url', '')}",
        f"CLI: {access.get('assume_role_command', '')}",
    ]
    if access.get("mfa_required"):
        lines.append("MFA is required: sign in with MFA, or pass --serial-number and --token-code as shown.")
    return lines


def role_arns(request: Row) -> list[str]:
    """Every role a request asks for: a multi-role request's `roles` (the first is its own `role_arn`), else its one
    `role_arn`."""
    roles = request.get("roles")
    several = [str(arn) for arn in roles if arn] if isinstance(roles, list) else []
    return several or [str(request.get("role_arn", ""))]


def roles_named(request: Row) -> str:
    """The role a request asks for, or each role of a multi-role request: `RoleA, RoleB` (as the server's
    `trustgate.messages.roles_named` writes it)."""
    return ", ".join(role_name(arn) for arn in role_arns(request))


def role_cell(request: Row) -> str:
    """A list's ROLE: the role's name, and how many more a multi-role request asks for (`RoleA +1`)."""
    more = len(role_arns(request)) - 1
    return role_name(str(request.get("role_arn", ""))) + (f" +{more}" if more > 0 else "")


def roles_line(request: Row, parts: Sequence[Row] = ()) -> str:
    """A multi-role request's roles, each other role with its own request (`parts`) and, when `parts` holds that
    request as fetched, its status: `RoleA, RoleB (req-2, active)`; '' for a request of one role."""
    arns = role_arns(request)
    if len(arns) < 2:
        return ""
    ids = [str(part_id) for part_id in request.get("parts") or []]
    fetched = {str(part.get("id")): part for part in parts}
    shown = [role_name(arns[0])]
    for index, arn in enumerate(arns[1:]):
        part_id = ids[index] if index < len(ids) else ""
        status = str(fetched[part_id].get("status") or "") if part_id in fetched else ""
        about = ", ".join(text for text in (part_id, status) if text)
        shown.append(role_name(arn) + (f" ({about})" if about else ""))
    return ", ".join(shown)


def capacity(used: int, quota: int) -> str:
    """Trust-policy size against its quota, e.g. `1234 / 2048 characters (60%)`."""
    percent = round(100 * used / quota) if quota else 0
    return f"{used} / {quota} characters ({percent}%)"


def approvals_count(request: Row) -> str:
    """`approvals given / approvals required`, e.g. `1/2`."""
    given = sum(1 for approval in request.get("approvals") or [] if approval.get("decision") == "approve")
    return f"{given}/{request.get('required_approvals', 1)}"


def _text(key: str) -> Callable[[Row], str]:
    return lambda row: "" if row.get(key) is None else str(row[key])


def capacity_of(document: Row) -> str:
    """The capacity of a role or sync answer (`trust_policy_chars` of `trust_policy_quota`), or '-'."""
    used, quota = document.get("trust_policy_chars"), document.get("trust_policy_quota")
    return capacity(used, quota) if isinstance(used, int) and isinstance(quota, int) else "-"


def break_glass_state(request: Row) -> str:
    """For a break-glass request, whether an approver reviewed it: `yes; review pending`, or `yes; reviewed ok by
    bob (IAM user, 111122223333) at 2026-11-26 12:00 UTC: <comment>`; '' for a request that went through approval."""
    if not request.get("break_glass"):
        return ""
    review = request.get("review")
    if not isinstance(review, dict):
        return "yes; review pending"
    reviewer = review.get("person") or short_principal(str(review.get("reviewer_arn", "")))
    at = f" at {time_text(review['at'])}" if review.get("at") else ""
    comment = f": {review['comment']}" if review.get("comment") else ""
    return f"yes; reviewed {review.get('verdict', '?')} by {reviewer}{at}{comment}"


def status_cell(request: Row) -> str:
    """A list's STATUS: the status, marked when break-glass (`active (break-glass, unreviewed)`)."""
    status = "" if request.get("status") is None else str(request["status"])
    if not request.get("break_glass"):
        return status
    review = request.get("review")
    verdict = f"reviewed {review.get('verdict', '?')}" if isinstance(review, dict) else "unreviewed"
    return f"{status} (break-glass, {verdict})"


REQUEST_COLUMNS: Sequence[Column] = (
    ("ID", _text("id")),
    ("ROLE", role_cell),
    ("PRINCIPAL", lambda row: short_principal(str(row.get("principal_arn", "")))),
    ("STATUS", status_cell),
    ("DURATION", lambda row: duration_in_words(row.get("duration"))),
    ("CREATED", lambda row: time_text(row.get("created_at"))),
    ("EXPIRES", lambda row: time_text(row.get("expires_at"))),
)


def approval_columns(now: datetime) -> Sequence[Column]:
    """`trustgate approvals`: who asks for what, and by when it must be decided (it times out then)."""
    return (
        ("ID", _text("id")),
        ("ROLE", roles_named),  # a multi-role request is listed once, with every role
        ("PERSON", person_of),
        ("DURATION", lambda row: duration_in_words(row.get("duration"))),
        ("APPROVALS", approvals_count),
        ("DEADLINE", lambda row: when(row.get("approval_deadline"), now) or "-"),
        ("JUSTIFICATION", lambda row: _truncate(str(row.get("justification", "")), 50)),
    )


ROLE_COLUMNS: Sequence[Column] = (
    ("ROLE", lambda row: role_name(str(row.get("role_arn", "")))),
    ("ACCOUNT", lambda row: _account(str(row.get("role_arn", "")))),
    ("MODE", lambda row: str(row.get("mode") or "-")),
    ("ACTIVE", _text("active_grants")),
    ("TRUST POLICY", capacity_of),
)

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def approval_needed(role: Row) -> str:
    """Whether asking for a role needs approval: `1 approver`, `no (approved automatically)`, or when not; and
    how long the caller may take it at once without approval (`break-glass up to 1 hour`) where its rule names them."""
    break_glass = role.get("break_glass_max_duration")
    emergency = f"; break-glass up to {duration_in_words(break_glass)}" if break_glass else ""
    if role.get("needs_approval") is False:
        return "no (approved automatically)" + emergency
    count = role.get("required_approvals", 1)
    text = f"{count} approver" + ("" if count == 1 else "s")
    rules = [rule for rule in role.get("auto_approve") or [] if isinstance(rule, dict)]
    return text + (f"; none {' or '.join(_auto_rule(rule) for rule in rules)}" if rules else "") + emergency


def _auto_rule(rule: Row) -> str:
    """When an auto-approve rule decides: `up to 1 hour on Mon-Fri, 09:00-17:00 UTC`."""
    parts = [f"up to {duration_in_words(rule['max_duration'])}"] if rule.get("max_duration") else []
    days = [day for day in rule.get("weekdays") or [] if isinstance(day, int) and 0 <= day <= 6]
    if days:
        parts.append("on " + ", ".join(_WEEKDAYS[day] for day in sorted(days)))
    hours = rule.get("hours_utc")
    if isinstance(hours, list) and len(hours) == 2:
        parts.append(f"{hours[0]:02}:00-{hours[1]:02}:00 UTC")
    return " ".join(parts) or "always"


def requirements(role: Row) -> str:
    """What a request for the role must carry besides a reason: a ticket, MFA when using it."""
    needs = [f"--ticket matching {role['ticket_pattern']}"] if role.get("ticket_pattern") else []
    needs += ["MFA to use it"] if role.get("require_mfa") else []
    return ", ".join(needs) or "-"


REQUESTABLE_COLUMNS: Sequence[Column] = (
    ("ROLE", lambda row: str(row.get("role_name") or role_name(str(row.get("role_arn", ""))))),
    ("ACCOUNT", lambda row: str(row.get("account") or _account(str(row.get("role_arn", ""))))),
    ("LONGEST", lambda row: duration_in_words(row.get("max_duration"))),
    ("DEFAULT", lambda row: duration_in_words(row.get("default_duration"))),
    ("APPROVAL", approval_needed),
    ("REQUIRES", requirements),
)

AUDIT_COLUMNS: Sequence[Column] = (
    ("AT", _text("at")),
    ("ACTOR", lambda row: short_principal(str(row.get("actor", "")))),
    ("ACTION", _text("action")),
    ("ROLE", lambda row: role_name(str(row.get("role_arn") or ""))),
    ("REQUEST", _text("request_id")),
)


def request_details(request: Row, now: datetime | None = None, parts: Sequence[Row] = ()) -> str:
    """One request as `key: value` lines, the way `status ID` and every request command print it.

    Times are for people (`2026-11-26 10:00 UTC`), durations in words (`1 hour`), and the status says what it
    means at `now` (TrustGate's clock, see `Context.now`): `active; expires in 52 min (12:35 UTC)`. A multi-role
    request has a `roles:` line (with each other role's request, and its status when `parts` holds it as fetched);
    one of its other roles' requests a `part of:` line naming the request that holds the decision.
    """
    now = now or datetime.now(UTC)
    approvals = "; ".join(
        f"{approval.get('decision')} by {approver_of(approval)} at {time_text(approval.get('at'))}"
        + (f" ({approval['comment']})" if approval.get("comment") else "")
        for approval in request.get("approvals") or []
    )
    pending = request.get("status") == "pending"
    change = extension_change(request) if pending else ""
    # Break-glass went through no approval: its line says so (and how its review went) instead of `0/1`.
    no_approvals = bool(request.get("break_glass")) and not approvals
    return key_values(
        [
            ("id", str(request.get("id", ""))),
            ("role", str(request.get("role_arn", ""))),
            ("roles", roles_line(request, parts)),
            ("part of", str(request.get("part_of") or "")),
            ("person", str(request.get("person") or "")),
            ("principal", str(request.get("principal_arn", ""))),
            ("status", status_line(request, now)),
            ("break-glass", break_glass_state(request)),
            ("reason", str(request.get("reason") or "")),
            ("duration", duration_in_words(request.get("duration", ""))),
            ("scheduled for", time_text(request.get("start_at"))),
            ("justification", str(request.get("justification", ""))),
            ("ticket", str(request.get("ticket") or "")),
            ("created", time_text(request.get("created_at"))),
            ("approve by", time_text(request.get("approval_deadline")) if pending else ""),
            ("decided", time_text(request.get("decided_at"))),
            ("starts", time_text(request.get("starts_at"))),
            ("expires", time_text(request.get("expires_at"))),
            ("extends", str(request.get("extends") or "")),
            ("extension", f"{person_of(request)} {change}" if change else ""),
            (
                "approvals",
                "" if no_approvals else f"{approvals_count(request)}" + (f": {approvals}" if approvals else ""),
            ),
        ]
    )


def unified_diff(before: Any, after: Any, before_label: str, after_label: str) -> str:
    """A unified diff of two JSON documents, pretty-printed so that each statement field is its own line."""
    lines = difflib.unified_diff(
        json_text(before).splitlines(), json_text(after).splitlines(), before_label, after_label, lineterm=""
    )
    return "\n".join(lines)


def _account(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 else ""


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _one_line(text: str) -> str:
    # A newline in a justification would break the columns.
    return " ".join(text.split())
