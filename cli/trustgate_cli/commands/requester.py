"""Requester commands: roles, request, status, list, cancel, revoke, extend, switch-url."""

from __future__ import annotations

import argparse
import difflib
import shlex
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from trustgate_cli.arns import RoleRef, check_account_id, parse_role_arn, role_name
from trustgate_cli.client import api_path
from trustgate_cli.commands.base import (
    CommandAdder,
    Context,
    JsonObject,
    as_object,
    collect_pages,
    duration_arg,
    positive_int,
    print_list,
)
from trustgate_cli.durations import DURATION_FORMS, DurationError, duration_in_words, to_iso8601
from trustgate_cli.errors import (
    ApiError,
    CliError,
    ExitCode,
    NotFoundError,
    RequestEndedError,
    TransportError,
    UsageError,
    WaitTimedOutError,
)
from trustgate_cli.progress import Progress
from trustgate_cli.render import (
    REQUEST_COLUMNS,
    REQUESTABLE_COLUMNS,
    ROLE_COLUMNS,
    approvals_count,
    key_values,
    request_details,
    role_arns,
    roles_named,
    time_text,
    way_in_lines,
)

STATUSES = ("pending", "scheduled", "active", "expired", "revoked", "denied", "cancelled", "timed_out", "failed")
REVIEW_STATES = ("pending",)
# After a break-glass grant's way in, as its "granted" email ends (trustgate.messages.outcome_for_requester).
BREAK_GLASS_TOLD = "This is break-glass access: the role's approvers were told at once and will review it afterwards."
# The most roles one request may ask for (the API's own limit: trustgate.app.requests.MAX_ROLES).
MAX_ROLES = 10
POLL_INTERVAL_SECONDS = 1.0
# Consecutive failed polls (5xx, 429, network) tolerated before --wait gives up with that error.
MAX_POLL_FAILURES = 3
_ENDED_PHRASES = {
    "denied": "was denied",
    "timed_out": "timed out waiting for approval",
    "cancelled": "was cancelled",
    "failed": "failed",
    "expired": "has already expired",
    "revoked": "was revoked",
}


def register(commands: CommandAdder) -> None:
    """Add the requester commands."""
    parser = commands.add(
        "roles",
        run_roles,
        "list the roles you may request: each one's longest duration and whether it needs approval",
        examples=["roles", "roles --output json", "roles --managed   # admins: the roles you administer"],
    )
    parser.add_argument(
        "--managed", action="store_true", help="admins: the roles you administer, with mode and capacity"
    )

    parser = commands.add(
        "request",
        run_request,
        "ask for time-boxed access to a role, or to several roles with one approval",
        examples=[
            'request PumpCustomerAccess --duration "2 hours" --reason "rotate the CloudTrail bucket key"',
            'request pumpcustomeraccess --duration 30m --reason "read the audit logs" --ticket CHG-1234 --wait',
            'request PumpCustomerAccess --start 2026-12-01T21:00Z --duration 2h --reason "maintenance window"',
            'request PumpCustomerAccess --start +3h --duration 1h --reason "tonight\'s key rotation"',
            'request PumpCustomerAccess --break-glass --duration 30m --reason "INC-4711: payments are down"',
            'request PumpCustomerAccess PumpBilling --duration 2h --reason "CHG-91: migrate the billing hooks" --wait',
        ],
        epilog="With --start the access is scheduled: once approved it waits (status scheduled) and begins at that "
        "time, ending one --duration later; --wait then returns once it is approved. With --break-glass it is "
        "active at once, without approval, where the role's break-glass rule names you: the role's approvers are "
        "told at once and one of them reviews it afterwards (trustgate review). With several roles (up to "
        f"{MAX_ROLES}) it is one request: one approval covers them all, then each role gets its own grant; if any "
        "role refuses, none is asked for, and each refusing role says why. --start and --break-glass apply to one "
        "role at a time. Cancel, revoke or extend the request (revoke and extend also by the ID of any of its roles' "
        "requests) and it acts on every role.",
    )
    parser.add_argument(
        "roles",
        metavar="ROLE",
        nargs="+",
        help="role name (any case) or ARN; 'trustgate roles' lists them; several (up to "
        f"{MAX_ROLES}): one request, one approval for all",
    )
    _add_duration_and_reason(parser, duration_required=False)
    parser.add_argument(
        "--start",
        type=start_arg,
        metavar="WHEN",
        help="begin later: an RFC 3339 time (2026-12-01T21:00Z, or with an offset) or +DURATION from now (+3h, "
        "on TrustGate's clock); at most the deployment's MaxScheduleAhead (7 days by default) ahead",
    )
    parser.add_argument(
        "--break-glass",
        action="store_true",
        help="emergencies only: access at once, without approval, where the role's break-glass rule names you "
        "(trustgate roles shows for how long); its approvers are told and review it afterwards; not with --start",
    )
    parser.add_argument("--ticket", help="change or incident ticket, if the role asks for one")
    parser.add_argument(
        "--idempotency-key", metavar="KEY", help="retrying with the same key and body returns the same request"
    )
    _add_wait(parser)

    parser = commands.add(
        "status",
        run_status,
        "show one request, or all of yours without ID",
        examples=["status", "status 01JD7X4T9Q8W2N5R6S3V1Y0Z9A"],
    )
    parser.add_argument("id", metavar="ID", nargs="?", help="request id")

    parser = commands.add(
        "list",
        run_list,
        "list requests",
        examples=[
            "list --mine --status pending",
            "list --role PumpCustomerAccess --limit 20",
            "list --review pending   # approvers: the break-glass grants awaiting your review",
        ],
    )
    parser.add_argument("--status", choices=STATUSES)
    parser.add_argument("--role", metavar="ROLE", help="role name or ARN")
    parser.add_argument("--mine", action="store_true", help="only requests you made")
    parser.add_argument(
        "--review",
        choices=REVIEW_STATES,
        help="pending: the break-glass grants no approver has reviewed yet, of the roles you approve or "
        "administer (then: trustgate review ID); not with --mine",
    )
    parser.add_argument("--limit", type=positive_int, metavar="N", help="show at most N requests")

    parser = commands.add(
        "cancel",
        run_cancel,
        "cancel your pending or scheduled request",
        examples=["cancel 01JD7X4T9Q8W2N5R6S3V1Y0Z9A"],
    )
    parser.add_argument("id", metavar="ID")

    parser = commands.add(
        "revoke",
        run_revoke,
        "end an active grant now (or a scheduled one before it begins), or (admins) everything one person holds on "
        "a role",
        epilog="'trustgate revoke ID' ends the active grant ID, with the rest of its holder's access to the role. "
        "'trustgate revoke --role ROLE --principal ARN_OR_PERSON' (admins of the role) ends every grant that "
        "person holds on the role and cancels their pending requests, then prints exactly what changed.",
        examples=[
            'revoke 01JD7X4T9Q8W2N5R6S3V1Y0Z9A --reason "done early"',
            'revoke --role PumpCustomerAccess --principal iam:222222222222:alice --reason "left the team"',
        ],
    )
    parser.add_argument("id", metavar="ID", nargs="?", help="id of the active request to revoke")
    parser.add_argument("--role", metavar="ROLE", help="with --principal: the role, by name or ARN")
    parser.add_argument(
        "--principal",
        metavar="ARN_OR_PERSON",
        help="with --role: any ARN of the person (IAM user or role session) or their person key "
        "(iam:ACCOUNT:USER, idc:USER, role:ACCOUNT:ROLE/SESSION)",
    )
    parser.add_argument("--reason", help="why, for the audit log and the person's notification")

    parser = commands.add(
        "extend",
        run_extend,
        "ask for more time on an active grant (a new linked request)",
        examples=['extend 01JD7X4T9Q8W2N5R6S3V1Y0Z9A --duration "30 min" --reason "the rotation takes longer"'],
    )
    parser.add_argument("id", metavar="ID", help="id of the active request to extend")
    _add_duration_and_reason(parser, duration_required=True)
    _add_wait(parser)

    parser = commands.add(
        "switch-url",
        run_switch_url,
        "print the console Switch Role link TrustGate gives for a role you may request or administer",
        examples=["switch-url PumpCustomerAccess", "switch-url arn:aws:iam::111122223333:role/PumpCustomerAccess"],
    )
    parser.add_argument("role", metavar="ROLE_ARN_OR_NAME")
    parser.add_argument("--account", metavar="ID", help="account id, when roles of that name exist in several")
    parser.add_argument("--display-name", metavar="NAME", help="label the console shows (default: role name)")


def start_arg(text: str) -> str:
    """argparse type: `+3h` as ISO 8601 from now (`PT3H`, counted on TrustGate's clock), or an RFC 3339 time with a
    zone (`2026-12-01T21:00Z`, `2026-12-01T22:00+01:00`) as UTC, `2026-12-01T21:00:00Z`."""
    value = text.strip()
    if value.startswith("+"):
        try:
            return to_iso8601(value[1:])
        except DurationError as error:
            raise argparse.ArgumentTypeError(f"{text!r}: {error}") from None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time like 2026-12-01T21:00Z, nor a time from now like +3h"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no zone: add Z for UTC (2026-12-01T21:00Z) or an offset")
    try:
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except OverflowError:
        raise argparse.ArgumentTypeError(f"{text!r} is outside the range of UTC times") from None


def _add_duration_and_reason(parser: argparse.ArgumentParser, *, duration_required: bool) -> None:
    parser.add_argument(
        "--duration",
        required=duration_required,
        type=duration_arg,
        help=DURATION_FORMS + ("" if duration_required else "; default: the role's default duration"),
    )
    parser.add_argument(
        "--reason", "--justification", dest="justification", metavar="TEXT", required=True, help="why you need access"
    )


def _add_wait(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", action="store_true", help="wait until the request is decided (exit 0 if active)")
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="with --wait: give up after SECONDS (exit 8); default: "
        "until the request is decided or its approval window ends",
    )


def run_roles(args: argparse.Namespace, ctx: Context) -> int:
    """GET /requestable-roles: what the caller may request; with --managed, GET /roles (admins)."""
    if args.managed:
        document = as_object(ctx.client.get("/roles"), "the roles")
        return print_list(ctx, document.get("items") or [], ROLE_COLUMNS, "no managed roles", document=document)
    document = as_object(ctx.client.get("/requestable-roles"), "the roles you may request")
    items = [item for item in document.get("items") or [] if isinstance(item, dict)]
    empty = (
        "you may not request any role TrustGate manages; ask an admin of the role to add you to its "
        "requester_accounts or requester_patterns"
    )
    code = print_list(ctx, items, REQUESTABLE_COLUMNS, empty, document=document)
    if items and not ctx.json:
        name = str(items[0].get("role_name") or role_name(str(items[0].get("role_arn", ""))))
        who = f" as {document['person']}" if document.get("person") else ""
        ctx.note(f'you may request these{who}; e.g. trustgate request {name} --duration "1 hour" --reason TEXT')
    return code


def run_request(args: argparse.Namespace, ctx: Context) -> int:
    """POST /requests (`role`, or `roles` for several), then optionally wait for the decision."""
    _check_wait_options(args)
    if args.break_glass and args.start:
        raise UsageError(
            "bad_option", "--break-glass and --start exclude each other: break-glass access begins at once"
        )
    roles: list[str] = args.roles
    if len(roles) > 1:
        _check_several_roles(args)
    # One role is sent as `role`, as to a server that knows no multi-role requests.
    body: JsonObject = {"role": roles[0]} if len(roles) == 1 else {"roles": roles}
    body["justification"] = args.justification
    if args.duration is not None:  # otherwise the role's default_duration applies
        body["duration"] = args.duration
    if args.ticket:
        body["ticket"] = args.ticket
    if args.start:
        body["start_at"] = args.start
    if args.break_glass:
        body["break_glass"] = True
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else None
    created = as_object(ctx.client.post("/requests", body, headers=headers), "the new request")
    return _finish(ctx, created, wait=args.wait, timeout=args.timeout)


def _check_several_roles(args: argparse.Namespace) -> None:
    """A request for several roles: neither scheduled nor break-glass, at most MAX_ROLES, each role once."""
    for option, given in (("--start", args.start), ("--break-glass", args.break_glass)):
        if given:
            raise UsageError(
                "bad_option", f"{option} applies to one role at a time: ask for each role in a request of its own"
            )
    roles: list[str] = args.roles
    if len(roles) > MAX_ROLES:
        raise UsageError(
            "too_many_roles",
            f"at most {MAX_ROLES} roles in one request; you named {len(roles)}: ask for the others in another",
        )
    for index, given in enumerate(roles):
        for earlier in roles[:index]:
            if _same_role(earlier, given):
                twice = f"{given!r} twice" if earlier == given else f"{earlier!r} and {given!r}, the same role"
                raise UsageError("repeated_role", f"you named {twice}: name each role once")


def _same_role(one: str, other: str) -> bool:
    """Do two roles as typed name the same role? By name, in any case (IAM role names are unique in an account
    regardless of case); two ARNs only in the same account."""
    first, second = parse_role_arn(one), parse_role_arn(other)
    if first is not None and second is not None and first.account != second.account:
        return False
    return role_name(one).casefold() == role_name(other).casefold()


def run_extend(args: argparse.Namespace, ctx: Context) -> int:
    """POST /requests/{id}/extend, then optionally wait for the decision on the new request."""
    _check_wait_options(args)
    body = {"duration": args.duration, "justification": args.justification}
    created = as_object(ctx.client.post(api_path("requests", args.id, "extend"), body), "the extension")
    return _finish(ctx, created, wait=args.wait, timeout=args.timeout)


def run_status(args: argparse.Namespace, ctx: Context) -> int:
    """GET /requests/{id}, or GET /requests?mine=true without an id."""
    if args.id is None:
        return _print_requests(ctx, {"mine": True}, limit=None)
    request = as_object(ctx.client.get(api_path("requests", args.id)), "the request")
    # A multi-role request: its other roles' requests too, for their status and their way in.
    parts = [] if ctx.json else _parts_of(ctx, request)
    _show_request(ctx, request, parts=parts)
    return ExitCode.OK


def run_list(args: argparse.Namespace, ctx: Context) -> int:
    """GET /requests with the given filters; with --review pending, the break-glass grants awaiting review."""
    if args.review and args.mine:
        raise UsageError("bad_option", "--review pending lists the grants you review, never your own: leave out --mine")
    query = {"status": args.status, "role": args.role, "mine": True if args.mine else None, "review": args.review}
    if not args.review:
        return _print_requests(ctx, query, limit=args.limit)
    return _print_requests(
        ctx,
        query,
        limit=args.limit,
        empty="no break-glass grants await your review",
        hint="review with: trustgate review ID --ok (or --misuse) --comment TEXT; a review is given once",
    )


def run_cancel(args: argparse.Namespace, ctx: Context) -> int:
    """POST /requests/{id}/cancel."""
    request = as_object(ctx.client.post(api_path("requests", args.id, "cancel")), "the request")
    _show_request(ctx, request, instructions=False)
    _note_every_role(ctx, request, "cancelled")
    return ExitCode.OK


def run_revoke(args: argparse.Namespace, ctx: Context) -> int:
    """POST /requests/{id}/revoke, or POST /roles/{role}/revoke with --role and --principal."""
    by_person = args.role is not None or args.principal is not None
    if args.id is not None and by_person:
        raise UsageError("bad_option", "give a request ID, or --role and --principal; not both")
    if args.id is None and not (args.role and args.principal):
        raise UsageError(
            "bad_option", "give the ID of a grant to revoke, or --role ROLE --principal ARN_OR_PERSON (admins)"
        )
    if by_person:
        return _revoke_person(ctx, args.role, args.principal, args.reason)
    body = {"reason": args.reason} if args.reason else {}
    request = as_object(ctx.client.post(api_path("requests", args.id, "revoke"), body), "the request")
    _show_request(ctx, request, instructions=False)
    _note_every_role(ctx, request, "revoked")
    return ExitCode.OK


def _note_every_role(ctx: Context, request: JsonObject, done: str) -> None:
    """After a cancel or revoke of a multi-role request (or of one of its roles' requests): it acted on every role."""
    if ctx.json:
        return
    if request.get("parts"):
        ctx.note(f"{done} for every role of request {request.get('id')}: {roles_named(request)}")
    elif request.get("part_of"):
        first = request["part_of"]
        ctx.note(f"{done} with every role of request {first}; see: trustgate status {first}")


def _revoke_person(ctx: Context, role: str, principal: str, reason: str | None) -> int:
    """POST /roles/{role}/revoke; print what ended and what was cancelled."""
    body: JsonObject = {"principal": principal}
    if reason:
        body["reason"] = reason
    result = as_object(ctx.client.post(api_path("roles", role, "revoke"), body), "the revocation")
    if ctx.json:
        ctx.print_json(result)
    else:
        ctx.print(revocation_details(result))
    return ExitCode.OK


def revocation_details(result: JsonObject) -> str:
    """What a person revoke changed: the grants that ended (and the end they had), the requests cancelled."""
    ended = [item for item in result.get("ended") or [] if isinstance(item, dict)]
    cancelled = [item for item in result.get("cancelled") or [] if isinstance(item, dict)]
    key = str(result.get("person") or "")
    person = next((str(item["person"]) for item in ended + cancelled if item.get("person")), key)
    ends = sorted(str(item["expires_at"]) for item in ended if item.get("expires_at"))
    reason = next((str(item["reason"]) for item in ended if item.get("reason")), "")
    return key_values(
        [
            ("revoked", f"{person} on {role_name(str(result.get('role_arn', '')))}"),
            ("person key", key if key != person else ""),
            ("grants ended", ", ".join(str(item.get("id", "")) for item in ended) or "none"),
            ("had access until", time_text(result.get("was_until")) if ended else ""),
            ("access ended at", time_text(ends[-1]) if ends else ""),
            ("cancelled", ", ".join(_cancelled(item) for item in cancelled) or "none"),
            ("reason", reason),
        ]
    )


def _cancelled(request: JsonObject) -> str:
    what = f"pending extension of {request['extends']}" if request.get("extends") else "pending request"
    return f"{request.get('id', '')} ({what}, {duration_in_words(request.get('duration', '?'))})"


def run_switch_url(args: argparse.Namespace, ctx: Context) -> int:
    """The server's Switch Role link for a role the caller may request or administer (GET /requestable-roles,
    GET /roles): TrustGate knows each partition's console and how a role's path goes into the link."""
    if ":" in args.role and parse_role_arn(args.role) is None:
        raise UsageError("bad_role", f"{args.role!r} is not a role ARN like arn:aws:iam::111122223333:role/Name")
    account = check_account_id(args.account) if args.account else None
    role, url = _find_role(ctx, args.role, account)
    if args.display_name:
        url = with_display_name(url, args.display_name)
    if ctx.json:
        ctx.print_json({"url": url, "role_arn": role.arn, "account": role.account, "role_name": role.name})
    else:
        ctx.print(url)
    return ExitCode.OK


def _find_role(ctx: Context, given: str, account: str | None) -> tuple[RoleRef, str]:
    """The role `given` names (its ARN, or its name in any case, as IAM names go) among those the caller may
    request, else among those they administer, with the server's Switch Role link for it."""
    candidates = [(ref, url) for ref, url in _roles_for_lookup(ctx) if account is None or ref.account == account]
    for exact in (True, False):
        matches = [(ref, url) for ref, url in candidates if _names(given, ref, exact=exact)]
        if len({ref.arn for ref, _ in matches}) > 1:
            accounts = ", ".join(sorted({ref.account for ref, _ in matches}))
            raise UsageError("ambiguous_role", f"roles named {given!r} exist in accounts {accounts}; pass --account")
        if matches:
            ref, url = matches[0]
            if url is None:
                raise TransportError(
                    "invalid_response", f"the API gave no Switch Role link for {ref.arn}: it is older than this CLI"
                )
            return ref, url
    names = sorted({ref.name for ref, _ in candidates})
    close = difflib.get_close_matches(given.casefold(), [known.casefold() for known in names], n=1)
    guess = next((f"did you mean {known}? " for known in names if close and known.casefold() == close[0]), "")
    where = f" in account {account}" if account else ""
    raise NotFoundError(
        "not_found",
        f"no role you may request or administer{where} is named {given!r}; {guess}"
        + (f"roles: {', '.join(names)}" if names else "you may request none"),
    )


def _names(given: str, role: RoleRef, *, exact: bool) -> bool:
    """Does `given` name `role`: its name, `path/name` or ARN?"""
    forms = (role.name, role.path_name, role.arn)
    if exact:
        return given in forms
    return given.casefold() in {form.casefold() for form in forms}


def with_display_name(url: str, display_name: str) -> str:
    """The server's Switch Role link with another label for the console to show (its `displayName`); every other
    part as the server wrote it."""
    base, _, query = url.partition("?")
    fields = [(key, value) for key, value in parse_qsl(query, keep_blank_values=True) if key != "displayName"]
    return f"{base}?{urlencode([*fields, ('displayName', display_name)], quote_via=quote, safe='/')}"


def _roles_for_lookup(ctx: Context) -> list[tuple[RoleRef, str | None]]:
    """The roles the caller may request (with the server's link), then those they administer (GET /roles)."""
    found: list[tuple[RoleRef, str | None]] = []
    documents = [as_object(ctx.client.get("/requestable-roles"), "the roles you may request")]
    try:
        documents.append(as_object(ctx.client.get("/roles"), "the roles"))
    except ApiError as error:
        if error.status != 403:  # 403: administers none, which is the usual case
            raise
    for document in documents:
        for item in document.get("items") or []:
            ref = parse_role_arn(str(item.get("role_arn", ""))) if isinstance(item, dict) else None
            if ref is not None and ref.arn not in {known.arn for known, _ in found}:
                found.append((ref, str(item["switch_url"]) if item.get("switch_url") else None))
    return found


def _print_requests(
    ctx: Context, query: dict[str, Any], limit: int | None, *, empty: str = "no requests", hint: str = ""
) -> int:
    """A table of the requests GET /requests lists for `query`, then `hint` on stderr when there are any."""
    items, more = collect_pages(ctx, "/requests", query, limit)
    note = f"showing the first {limit}; raise --limit or filter with --status/--role for the rest"
    code = print_list(ctx, items, REQUEST_COLUMNS, empty, cut_short=note if more else None)
    if items and hint and not ctx.json:
        ctx.note(hint)
    return code


def _check_wait_options(args: argparse.Namespace) -> None:
    if args.timeout is not None and not args.wait:
        raise UsageError("bad_option", "--timeout only applies with --wait")
    if args.timeout is not None and args.timeout < 0:
        raise UsageError("bad_option", "--timeout must be zero or more seconds")


def _finish(ctx: Context, request: JsonObject, *, wait: bool, timeout: float | None) -> int:
    """Print a request just made; with --wait first poll until it leaves `pending`. An active multi-role request:
    each other role's request as well (with --wait, once it too left `pending`), for its way in."""
    deadline = None if timeout is None else time.monotonic() + timeout
    if wait:
        request = _wait_for_decision(ctx, request, timeout, deadline)
    status = request.get("status")
    fetch = status == "active" and (wait or not ctx.json)  # with --wait, every role's grant is waited for
    parts = _parts_of(ctx, request, wait=wait, timeout=timeout, deadline=deadline) if fetch else []
    several = len(role_arns(request)) > 1
    _show_request(ctx, request, parts=parts, summary=_one_approval(request) if several else "")
    if request.get("break_glass") and status in ("pending", "active") and not ctx.json:
        ctx.print()
        ctx.print(BREAK_GLASS_TOLD)
    if status == "scheduled":  # approved: it begins at its start without anyone doing anything
        if not ctx.json:
            ctx.note(f"approved; it begins by itself (cancel: trustgate cancel {request.get('id')})")
        return ExitCode.OK
    if not wait:
        if status == "pending" and not ctx.json:
            request_id = request.get("id")
            if request.get("break_glass"):  # nothing to approve: the grant is being made
                ctx.note(f"granting; check with: trustgate status {request_id}")
            else:
                ctx.note(
                    f"waiting for approval; check with: trustgate status {request_id} "
                    f"(cancel: trustgate cancel {request_id})"
                )
        return ExitCode.OK
    ended = next((item for item in [request, *parts] if item.get("status") != "active"), None)
    if ended is not None:
        ended_status = str(ended.get("status"))
        phrase = _ENDED_PHRASES.get(ended_status, f"is {ended_status}")
        reason = _ended_reason(ended)
        role = f" ({role_name(str(ended.get('role_arn', '')))}, of {request.get('id')})" if ended is not request else ""
        raise RequestEndedError(
            ended_status,
            f"request {ended.get('id')}{role} {phrase}" + (f": {reason}" if reason else ""),
            f"trustgate status {request.get('id')}",
        )
    return ExitCode.OK


def _one_approval(request: JsonObject) -> str:
    """The line after a multi-role request just made: every role, and that one approval covers them all."""
    return (
        f"One request for {len(role_arns(request))} roles ({roles_named(request)}): one approval covers them all; "
        "each role gets its own grant."
    )


def _parts_of(
    ctx: Context,
    request: JsonObject,
    *,
    wait: bool = False,
    timeout: float | None = None,
    deadline: float | None = None,
) -> list[JsonObject]:
    """The other roles' requests of a multi-role request (`parts`), each as GET /requests/{id} answers it; with
    `wait`, once each left `pending` (the first role's grant comes a moment before the others'). [] for one role."""
    parts = []
    for part_id in request.get("parts") or []:
        part = as_object(ctx.client.get(api_path("requests", str(part_id))), "the request")
        parts.append(_wait_for_decision(ctx, part, timeout, deadline) if wait else part)
    return parts


def _wait_for_decision(
    ctx: Context, request: JsonObject, timeout: float | None, deadline: float | None = None
) -> JsonObject:
    """Poll GET /requests/{id} about every POLL_INTERVAL_SECONDS until the status leaves `pending` (at most until
    `deadline`, a `time.monotonic()`, else `timeout` seconds from now)."""
    request_id = request.get("id")
    if not isinstance(request_id, str) or not request_id:
        raise TransportError("invalid_response", "the API answered a request without an 'id'; cannot wait for it")
    progress = Progress(ctx.err, live=ctx.err.isatty())
    if deadline is None and timeout is not None:
        deadline = time.monotonic() + timeout
    failures = 0
    try:
        while request.get("status") == "pending":
            progress.show(_waiting_for(request, request_id))
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise WaitTimedOutError(
                    "wait_timed_out",
                    f"request {request_id} is still pending after {timeout:g} s; "
                    f"check later with: trustgate status {request_id}",
                )
            progress.pause(POLL_INTERVAL_SECONDS if left is None else min(POLL_INTERVAL_SECONDS, left))
            try:
                request = as_object(ctx.client.get(api_path("requests", request_id)), "the request")
                failures = 0
            except CliError as error:
                # A blip in a long wait is not worth failing for; a lasting outage is.
                failures += 1
                if not error.retryable or failures > MAX_POLL_FAILURES:
                    raise
    except KeyboardInterrupt:
        progress.close()
        ctx.note(f"stopped waiting; request {request_id} is still pending; check with: trustgate status {request_id}")
        raise
    finally:
        progress.close()
    return request


def _waiting_for(request: JsonObject, request_id: str) -> str:
    """What --wait shows while `request` is pending."""
    if request.get("break_glass"):
        return f"granting break-glass access {request_id}"
    if request.get("part_of"):  # decided with the request it is part of: its grant follows
        return f"granting {role_name(str(request.get('role_arn', '')))} ({request_id}, of {request['part_of']})"
    return f"waiting for approval of {request_id}: {approvals_count(request)} approvals"


def _ended_reason(request: JsonObject) -> str:
    """Why a request ended without access: its `reason`, else the deniers' comments."""
    if request.get("reason"):
        return str(request["reason"])
    comments = [
        str(approval["comment"])
        for approval in request.get("approvals") or []
        if approval.get("decision") == "deny" and approval.get("comment")
    ]
    return "; ".join(comments)


def _show_request(
    ctx: Context,
    request: JsonObject,
    *,
    instructions: bool = True,
    parts: Sequence[JsonObject] = (),
    summary: str = "",
) -> None:
    """Print one request (then `summary`); when it is an active grant (and `instructions`), also how to use it.

    `parts`: a multi-role request's other roles' requests as fetched; their status goes in the `roles:` line, and
    the way in of each active one follows, each headed by its role.
    """
    if ctx.json:
        ctx.print_json(request)
        return
    ctx.print(request_details(request, ctx.now(), parts))
    if summary:
        ctx.print()
        ctx.print(summary)
    if not instructions:
        return
    for grant in [request, *parts] if request.get("status") == "active" else []:
        way_in = access_instructions(grant, ctx.profile) if grant.get("status") == "active" else ""
        if way_in:
            ctx.print()
            if parts:
                ctx.print(f"{role_name(str(grant.get('role_arn', '')))} ({grant.get('id')}):")
            ctx.print(way_in)


def access_instructions(request: JsonObject, profile: str | None) -> str:
    """How to use an active grant: the server's `access` (the session name it pins, the console link and the
    `aws sts assume-role` command), line for line as the "granted" email shows it; nothing without it."""
    access = request.get("access")
    if not isinstance(access, dict):
        return ""
    lines = way_in_lines(access)
    if profile:
        # The grant names the identity behind the profile these credentials came from.
        lines.append(f"Add --profile {shlex.quote(profile)} to the CLI command to assume from this same profile.")
    return "\n".join(lines)
