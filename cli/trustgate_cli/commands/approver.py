"""Approver commands: approvals, approve, deny."""

from __future__ import annotations

import argparse

from trustgate_cli.client import api_path
from trustgate_cli.commands.base import CommandAdder, Context, as_object, print_list
from trustgate_cli.errors import ExitCode
from trustgate_cli.render import APPROVAL_COLUMNS, extension_change, person_of, request_details


def register(commands: CommandAdder) -> None:
    """Add the approver commands."""
    commands.add("approvals", run_approvals, "list pending requests you may decide")
    for decision, handler, help_text in (
        ("approve", run_approve, "approve a pending request"),
        ("deny", run_deny, "deny a pending request"),
    ):
        parser = commands.add(decision, handler, help_text)
        parser.add_argument("id", metavar="ID", help="request id")
        parser.add_argument("--comment", help="shown to the requester and kept in the audit log")


def run_approvals(args: argparse.Namespace, ctx: Context) -> int:
    """GET /approvals: a table of who asks for what, then what approving each extension changes."""
    document = as_object(ctx.client.get("/approvals"), "the approvals")
    items = document.get("items") or []
    code = print_list(ctx, items, APPROVAL_COLUMNS, "no requests are waiting for your decision", document=document)
    extensions = [(item, extension_change(item)) for item in items if extension_change(item)]
    if extensions and not ctx.json:
        ctx.print("\nextensions (the person already has access):")
        width = max(len(str(item.get("id", ""))) for item, _ in extensions)
        for item, change in extensions:
            ctx.print(f"  {item.get('id', '')!s:<{width}}  {person_of(item)} {change}")
    return code


def run_approve(args: argparse.Namespace, ctx: Context) -> int:
    """POST /requests/{id}/approve."""
    return _decide(ctx, args.id, "approve", args.comment)


def run_deny(args: argparse.Namespace, ctx: Context) -> int:
    """POST /requests/{id}/deny."""
    return _decide(ctx, args.id, "deny", args.comment)


def _decide(ctx: Context, request_id: str, decision: str, comment: str | None) -> int:
    body = {"comment": comment} if comment else {}
    request = as_object(ctx.client.post(api_path("requests", request_id, decision), body), "the request")
    if ctx.json:
        ctx.print_json(request)
    else:
        ctx.print(request_details(request))
    return ExitCode.OK
