"""Approver commands: approvals, approve, deny, review."""

from __future__ import annotations

import argparse
import time

from trustgate_cli.arns import role_name
from trustgate_cli.client import api_path
from trustgate_cli.commands.base import CommandAdder, Context, JsonObject, as_object, print_list
from trustgate_cli.errors import CliError, ExitCode
from trustgate_cli.render import (
    approval_columns,
    approvals_count,
    extension_change,
    person_of,
    request_details,
    roles_named,
    when,
)

# After the last needed approval TrustGate grants in the background (seconds on AWS); wait this long for it.
GRANT_WAIT_SECONDS = 15.0
POLL_INTERVAL_SECONDS = 0.5


def register(commands: CommandAdder) -> None:
    """Add the approver commands."""
    commands.add(
        "approvals",
        run_approvals,
        "list pending requests you may decide, each with its deadline",
        examples=["approvals", "--profile approver approvals --output json"],
    )
    for decision, handler, help_text, example in (
        ("approve", run_approve, "approve a pending request", 'approve 01JD7X4T9Q8W2N5R6S3V1Y0Z9A --comment "ok"'),
        (
            "deny",
            run_deny,
            "deny a pending request",
            'deny 01JD7X4T9Q8W2N5R6S3V1Y0Z9A --comment "not during the freeze"',
        ),
    ):
        parser = commands.add(decision, handler, help_text, examples=[example])
        parser.add_argument("id", metavar="ID", help="request id")
        parser.add_argument("--comment", help="shown to the requester and kept in the audit log")

    parser = commands.add(
        "review",
        run_review,
        "give your verdict on a break-glass grant after the fact (approvers of the role; never your own)",
        examples=[
            'review 01JD7X4T9Q8W2N5R6S3V1Y0Z9A --ok --comment "INC-4711: payments were down"',
            'review 01JD7X4T9Q8W2N5R6S3V1Y0Z9A --misuse --comment "no incident; ask for approval next time"',
        ],
        epilog="Break-glass access is granted at once, without approval; an approver of the role (anyone but the "
        "person who took it) reviews each use once, whatever became of the grant. 'trustgate list --review "
        "pending' lists those awaiting your review.",
    )
    parser.add_argument("id", metavar="ID", help="id of the break-glass request")
    verdict = parser.add_mutually_exclusive_group(required=True)
    verdict.add_argument(
        "--ok", dest="verdict", action="store_const", const="ok", help="the use was justified (one of --ok, --misuse)"
    )
    verdict.add_argument(
        "--misuse",
        dest="verdict",
        action="store_const",
        const="misuse",
        help="the use was not justified (adds one to the BreakGlassMisuse metric; one of --ok, --misuse)",
    )
    parser.add_argument(
        "--comment",
        metavar="TEXT",
        help="why (at most 1000 characters): shown to the requester and kept in the audit log",
    )


def run_approvals(args: argparse.Namespace, ctx: Context) -> int:
    """GET /approvals: who asks for what and until when it can be decided, then what each extension changes."""
    document = as_object(ctx.client.get("/approvals"), "the approvals")
    items = document.get("items") or []
    columns = approval_columns(ctx.now())
    code = print_list(ctx, items, columns, "no requests are waiting for your decision", document=document)
    extensions = [(item, extension_change(item)) for item in items if extension_change(item)]
    if extensions and not ctx.json:
        ctx.print("\nextensions (the person already has access):")
        width = max(len(str(item.get("id", ""))) for item, _ in extensions)
        for item, change in extensions:
            ctx.print(f"  {item.get('id', '')!s:<{width}}  {person_of(item)} {change}")
    if items and not ctx.json:
        ctx.note("decide with: trustgate approve ID (or deny ID) --comment TEXT; undecided requests time out")
    return code


def run_approve(args: argparse.Namespace, ctx: Context) -> int:
    """POST /requests/{id}/approve; after the last needed approval, wait briefly for the grant."""
    request = _decide(ctx, args.id, "approve", args.comment)
    status = request.get("status")
    if status == "pending" and not _last_approval_in(request):
        if not ctx.json:
            ctx.print(f"approved ({approvals_count(request)} approvals); {_still_needed(request, ctx)}")
            ctx.print(request_details(request, ctx.now()))
        else:
            ctx.print_json(request)
        return ExitCode.OK
    if status == "pending":
        if not ctx.json:
            ctx.print("approved; scheduling…" if request.get("start_at") else "approved; granting…")
        request = _wait_for_grant(ctx, request)
    if ctx.json:
        ctx.print_json(request)
        return ExitCode.OK
    ctx.print(_outcome(request, ctx))
    ctx.print(request_details(request, ctx.now()))
    return ExitCode.OK


def run_deny(args: argparse.Namespace, ctx: Context) -> int:
    """POST /requests/{id}/deny."""
    request = _decide(ctx, args.id, "deny", args.comment)
    if ctx.json:
        ctx.print_json(request)
    else:
        ctx.print(f"denied; {person_of(request)} is told, and nothing was granted")
        ctx.print(request_details(request, ctx.now()))
    return ExitCode.OK


def run_review(args: argparse.Namespace, ctx: Context) -> int:
    """POST /requests/{id}/review: the verdict on a break-glass grant, then the request as `status` shows it."""
    body = {"verdict": args.verdict} | ({"comment": args.comment} if args.comment else {})
    request = as_object(ctx.client.post(api_path("requests", args.id, "review"), body), "the request")
    if ctx.json:
        ctx.print_json(request)
        return ExitCode.OK
    ctx.print(_review_outcome(request, args.verdict))
    ctx.print(request_details(request, ctx.now()))
    return ExitCode.OK


def _review_outcome(request: JsonObject, verdict: str) -> str:
    """The verdict in one line, as the server recorded it (else as given)."""
    review = request.get("review")
    verdict = str(review.get("verdict") or verdict) if isinstance(review, dict) else verdict
    use = f"the break-glass use of {role_name(str(request.get('role_arn', '')))} by {person_of(request)}"
    judged = "justified" if verdict == "ok" else "not justified"
    return f"reviewed {verdict}: {use} was {judged}; they and the team are told"


def _decide(ctx: Context, request_id: str, decision: str, comment: str | None) -> JsonObject:
    body = {"comment": comment} if comment else {}
    return as_object(ctx.client.post(api_path("requests", request_id, decision), body), "the request")


def _last_approval_in(request: JsonObject) -> bool:
    """Did this approval complete the quorum? TrustGate then sets `decided_at` and grants in the background."""
    given = sum(1 for approval in request.get("approvals") or [] if approval.get("decision") == "approve")
    return bool(request.get("decided_at")) or given >= int(request.get("required_approvals") or 1)


def _still_needed(request: JsonObject, ctx: Context) -> str:
    given = sum(1 for approval in request.get("approvals") or [] if approval.get("decision") == "approve")
    missing = max(int(request.get("required_approvals") or 1) - given, 1)
    deadline = when(request.get("approval_deadline"), ctx.now())
    return f"waiting for {missing} more approval{'' if missing == 1 else 's'}" + (
        f"; it times out {deadline}" if deadline else ""
    )


def _wait_for_grant(ctx: Context, request: JsonObject) -> JsonObject:
    """Poll GET /requests/{id} for up to GRANT_WAIT_SECONDS while the approved request is being granted."""
    deadline = time.monotonic() + GRANT_WAIT_SECONDS
    while request.get("status") == "pending" and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL_SECONDS)
        try:
            request = as_object(ctx.client.get(api_path("requests", str(request.get("id", "")))), "the request")
        except CliError as error:
            if not error.retryable:
                raise
    return request


def _outcome(request: JsonObject, ctx: Context) -> str:
    """What the approval led to, in one line."""
    status, request_id = request.get("status"), request.get("id")
    role = roles_named(request)  # a multi-role request: every role, each granted its own access
    if status == "active":
        until = when(request.get("expires_at"), ctx.now())
        return f"granted: {person_of(request)} has access to {role}" + (f", expiring {until}" if until else "")
    if status == "scheduled":
        begins = when(request.get("start_at"), ctx.now())
        return f"scheduled: {person_of(request)} gets access to {role} {begins}; nothing is granted before then"
    if status == "pending":
        return f"still granting; check with: trustgate status {request_id}"
    reason = f": {request['reason']}" if request.get("reason") else ""
    return f"not granted: request {request_id} is {status}{reason}"
