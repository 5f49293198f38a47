"""Plain-text output: aligned tables, request details, JSON documents and unified diffs. No colours, no deps."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from trustgate_cli.arns import role_name
from trustgate_cli.durations import DurationError, parse_duration

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


def _parse_time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def extension_change(request: Row) -> str:
    """For a request made while the person has access (`covered_until`): what approving it changes, or ''.

    The wording is the server's (`trustgate.messages.extension_change`), so the CLI, the approval page and
    the approvers' email say the same thing.
    """
    covered_until = _parse_time(request.get("covered_until"))
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


REQUEST_COLUMNS: Sequence[Column] = (
    ("ID", _text("id")),
    ("ROLE", lambda row: role_name(str(row.get("role_arn", "")))),
    ("PRINCIPAL", lambda row: short_principal(str(row.get("principal_arn", "")))),
    ("STATUS", _text("status")),
    ("DURATION", _text("duration")),
    ("CREATED", _text("created_at")),
    ("EXPIRES", _text("expires_at")),
)

APPROVAL_COLUMNS: Sequence[Column] = (
    ("ID", _text("id")),
    ("ROLE", lambda row: role_name(str(row.get("role_arn", "")))),
    ("PERSON", person_of),
    ("DURATION", _text("duration")),
    ("APPROVALS", approvals_count),
    ("CREATED", _text("created_at")),
    ("JUSTIFICATION", lambda row: _truncate(str(row.get("justification", "")), 50)),
)

ROLE_COLUMNS: Sequence[Column] = (
    ("ROLE", lambda row: role_name(str(row.get("role_arn", "")))),
    ("ACCOUNT", lambda row: _account(str(row.get("role_arn", "")))),
    ("MODE", lambda row: str(row.get("mode") or "-")),
    ("ACTIVE", _text("active_grants")),
    ("TRUST POLICY", capacity_of),
)

AUDIT_COLUMNS: Sequence[Column] = (
    ("AT", _text("at")),
    ("ACTOR", lambda row: short_principal(str(row.get("actor", "")))),
    ("ACTION", _text("action")),
    ("ROLE", lambda row: role_name(str(row.get("role_arn") or ""))),
    ("REQUEST", _text("request_id")),
)


def request_details(request: Row) -> str:
    """One request as `key: value` lines, the way `status ID` and every request command print it."""
    approvals = "; ".join(
        f"{approval.get('decision')} by {approver_of(approval)} at {approval.get('at')}"
        + (f" ({approval['comment']})" if approval.get("comment") else "")
        for approval in request.get("approvals") or []
    )
    change = extension_change(request) if request.get("status") == "pending" else ""
    return key_values(
        [
            ("id", str(request.get("id", ""))),
            ("role", str(request.get("role_arn", ""))),
            ("person", str(request.get("person") or "")),
            ("principal", str(request.get("principal_arn", ""))),
            ("status", str(request.get("status", ""))),
            ("reason", str(request.get("reason") or "")),
            ("duration", str(request.get("duration", ""))),
            ("justification", str(request.get("justification", ""))),
            ("ticket", str(request.get("ticket") or "")),
            ("created", str(request.get("created_at") or "")),
            ("approve by", str(request.get("approval_deadline") or "") if request.get("status") == "pending" else ""),
            ("decided", str(request.get("decided_at") or "")),
            ("starts", str(request.get("starts_at") or "")),
            ("expires", str(request.get("expires_at") or "")),
            ("extends", str(request.get("extends") or "")),
            ("extension", f"{person_of(request)} {change}" if change else ""),
            ("approvals", f"{approvals_count(request)}" + (f": {approvals}" if approvals else "")),
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
