"""Admin commands: role, audit, sync (and `roles --managed`, with the requester's `roles`)."""

from __future__ import annotations

import argparse
from datetime import datetime

from trustgate_cli.client import api_path, next_link_query
from trustgate_cli.commands.base import (
    CommandAdder,
    Context,
    as_object,
    collect_pages,
    positive_int,
    print_list,
)
from trustgate_cli.durations import DurationError, to_iso8601
from trustgate_cli.errors import ExitCode, TransportError
from trustgate_cli.render import (
    AUDIT_COLUMNS,
    REQUEST_COLUMNS,
    capacity_of,
    json_text,
    key_values,
    table,
)

CSV = "text/csv"
AUDIT_PAGE_MAX = 200  # the API's largest page: fewest round trips for an export


def register(commands: CommandAdder) -> None:
    """Add the admin commands (`roles --managed` is with the requester's `roles`)."""
    parser = commands.add(
        "role",
        run_role,
        "show a role: mode, live trust policy, capacity, active grants",
        examples=["role PumpCustomerAccess"],
    )
    parser.add_argument("role", metavar="ROLE", help="role name or ARN")

    parser = commands.add(
        "audit",
        run_audit,
        "show the audit log",
        examples=[
            "audit --role PumpCustomerAccess --since 1h",
            "audit --since 2026-11-26T00:00:00Z --limit 100",
            "audit --since 30d --output csv",
        ],
        epilog="--output csv writes the API's CSV (a header row, one event per row, before/after/detail as JSON "
        "text), every page of it, for a spreadsheet or an archive: redirect it to a file (> audit.csv).",
    )
    parser.set_defaults(csv_output=True)
    parser.add_argument("--role", metavar="ROLE", help="role name or ARN")
    parser.add_argument(
        "--since", type=time_arg, metavar="T", help="RFC 3339 time, or an age like 1h or 7d (on TrustGate's clock)"
    )
    parser.add_argument("--until", type=time_arg, metavar="T", help="RFC 3339 time, or an age like 1h")
    parser.add_argument("--actor", metavar="ARN", help="only events by this principal")
    parser.add_argument("--limit", type=positive_int, metavar="N", help="show at most N events")

    parser = commands.add(
        "sync",
        run_sync,
        "re-render the role's trust policy from its grants now",
        examples=["sync PumpCustomerAccess"],
    )
    parser.add_argument("role", metavar="ROLE", help="role name or ARN")


def time_arg(text: str) -> str:
    """argparse type: an RFC 3339 time as given, or an age (`24h`, `7d`) as ISO 8601 (`PT24H`, `P7D`).

    An age is sent as it is, and TrustGate counts it back from its own clock: `--since 1h` means the last hour
    of the stack's time, also after the local stack's clock was moved on (`/_local/advance`).
    """
    try:
        return to_iso8601(text)
    except DurationError:
        try:
            datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not an RFC 3339 time (2026-11-26T10:00:00Z) or an age (1h, 24h, 7d)"
            ) from None
        return text


def run_role(args: argparse.Namespace, ctx: Context) -> int:
    """GET /roles/{role}."""
    role = as_object(ctx.client.get(api_path("roles", args.role)), "the role")
    if ctx.json:
        ctx.print_json(role)
        return ExitCode.OK
    ctx.print(
        key_values(
            [
                ("role", str(role.get("role_arn", ""))),
                ("mode", str(role.get("mode") or "-")),
                ("capacity", capacity_of(role)),
            ]
        )
    )
    ctx.print("\ntrust policy:")
    ctx.print(json_text(role.get("trust_policy")))
    grants = role.get("active_grants") or []
    ctx.print("\nactive grants:")
    ctx.print(table(grants, REQUEST_COLUMNS) if grants else "none")
    return ExitCode.OK


def run_audit(args: argparse.Namespace, ctx: Context) -> int:
    """GET /audit, following the `next` cursor up to --limit events."""
    # --limit is applied here, not sent: the API caps its page size, and a page is all it takes to stop.
    query = {"role": args.role, "since": args.since, "until": args.until, "actor": args.actor}
    if ctx.output == "csv":
        return _audit_csv(ctx, query, args.limit)
    items, more = collect_pages(ctx, "/audit", query, args.limit)
    note = f"showing the first {args.limit} events; raise --limit or narrow --since/--until for more"
    return print_list(ctx, items, AUDIT_COLUMNS, "no audit events", cut_short=note if more else None)


def _audit_csv(ctx: Context, query: dict[str, str | None], limit: int | None) -> int:
    """Every CSV page of GET /audit as one CSV: the header row once, pages joined in order, up to `limit` rows."""
    page_query: dict[str, str] | None = {
        **{k: v for k, v in query.items() if v is not None},
        "format": "csv",
        "limit": str(AUDIT_PAGE_MAX),
    }
    written, cursors_seen = 0, set()
    while page_query is not None:
        text, headers = ctx.client.get_text("/audit", page_query, CSV)
        # Rows end in CRLF, and no cell holds one: the JSON columns escape line breaks, the others have none.
        lines = [line + "\r\n" for line in text.split("\r\n")[:-1]]
        if not lines:
            raise TransportError("invalid_response", "/audit answered CSV without its header row")
        if not ctx.wrote_output:
            ctx.out.write(lines[0])
            ctx.wrote_output = True
        rows = lines[1:] if limit is None else lines[1 : 1 + limit - written]
        ctx.out.write("".join(rows))
        written += len(rows)
        page_query = next_link_query(headers)
        if page_query is None:
            break
        if limit is not None and written >= limit:
            ctx.note(f"showing the first {limit} events; raise --limit or narrow --since/--until for more")
            break
        if page_query.get("next") in cursors_seen:  # a cursor that repeats would loop forever
            raise TransportError("invalid_response", "/audit returned the same next link twice")
        cursors_seen.add(page_query.get("next"))
    return ExitCode.OK


def run_sync(args: argparse.Namespace, ctx: Context) -> int:
    """POST /roles/{role}/sync."""
    result = as_object(ctx.client.post(api_path("roles", args.role, "sync")), "the sync result")
    if ctx.json:
        ctx.print_json(result)
    elif result.get("changed"):
        ctx.print("trust policy rewritten to match the grants:")
        ctx.print(json_text(result.get("trust_policy")))
    else:
        ctx.print("trust policy already matches the grants; nothing changed")
    if not ctx.json:
        ctx.print(f"capacity: {capacity_of(result)}")
    return ExitCode.OK
