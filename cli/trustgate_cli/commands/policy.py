"""Admin commands on a role's rules: `policy show ROLE` and `policy set ROLE …` (a dry run shows the diff)."""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustgate_cli.client import api_path
from trustgate_cli.commands.base import CommandAdder, Context, JsonObject, as_object, duration_arg, positive_int
from trustgate_cli.errors import ExitCode, UsageError
from trustgate_cli.render import REQUEST_COLUMNS, key_values, table, unified_diff

# What GET /roles/{role}/policy adds for reading (the values in effect, the version); PUT takes a plain RolePolicy.
READ_ONLY_KEYS = frozenset({"effective", "version"})


def csv_list(text: str) -> list[str]:
    """argparse type: `a,b, c` -> ['a', 'b', 'c']; an empty string clears the list."""
    return [item.strip() for item in text.split(",") if item.strip()]


def account_list(text: str) -> list[str]:
    """argparse type: comma-separated 12-digit account ids."""
    accounts = csv_list(text)
    for account in accounts:
        if not (len(account) == 12 and account.isdigit()):
            raise argparse.ArgumentTypeError(f"account id {account!r} is not 12 digits")
    return accounts


def cidr_list(text: str) -> list[str]:
    """argparse type: comma-separated IP ranges in CIDR form."""
    ranges = csv_list(text)
    for cidr in ranges:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{cidr!r} is not an IP range like 203.0.113.0/24") from None
    return ranges


def non_negative_int(text: str) -> int:
    """argparse type: a whole number, zero or more."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(text)


@dataclass(frozen=True)
class PolicyFlag:
    """One `policy set` option and the RolePolicy field it replaces."""

    flag: str
    field: str
    help: str
    type: Callable[[str], Any] | None = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    boolean: bool = False


# Every option replaces its whole field; lists are comma-separated and '' empties them.
POLICY_FLAGS: tuple[PolicyFlag, ...] = (
    PolicyFlag("--mode", "mode", "standing access", choices=("organization", "accounts", "none")),
    PolicyFlag(
        "--standing-principals", "standing_principals", "ARNs with standing access (mode accounts)", csv_list, "A,B"
    ),
    PolicyFlag("--requester-accounts", "requester_accounts", "account ids that may request", account_list, "ID,ID"),
    PolicyFlag(
        "--requester-patterns", "requester_patterns", "principal ARN patterns that may request", csv_list, "A,B"
    ),
    PolicyFlag("--approvers", "approvers", "approver ARN patterns", csv_list, "A,B"),
    PolicyFlag("--required-approvals", "required_approvals", "approvals needed (N of M)", positive_int, "N"),
    PolicyFlag("--allow-self-approval", "allow_self_approval", "may requesters approve themselves", boolean=True),
    PolicyFlag("--default-duration", "default_duration", "duration when none is asked for", duration_arg, "DURATION"),
    PolicyFlag("--max-duration", "max_duration", "longest grant, e.g. 2h", duration_arg, "DURATION"),
    PolicyFlag(
        "--approval-window", "approval_window", "how long a request waits for approval", duration_arg, "DURATION"
    ),
    PolicyFlag(
        "--justification-min-length", "justification_min_length", "shortest justification", non_negative_int, "N"
    ),
    PolicyFlag("--ticket-pattern", "ticket_pattern", "RE2 regex the whole ticket must match", metavar="REGEX"),
    PolicyFlag("--require-mfa", "require_mfa", "require MFA on the assume (aws:MultiFactorAuthPresent)", boolean=True),
    PolicyFlag(
        "--source-ip-ranges", "source_ip_ranges", "CIDR ranges the assume must come from", cidr_list, "CIDR,CIDR"
    ),
    PolicyFlag(
        "--adopt", "adopt_statements", "Sids of hand-written statements to manage as the baseline", csv_list, "SID,SID"
    ),
    PolicyFlag("--notify", "notify", "notification targets", csv_list, "A,B"),
    PolicyFlag("--admins", "admins", "ARN patterns of this role's admins", csv_list, "A,B"),
)


def register(commands: CommandAdder) -> None:
    """Add `policy show` and `policy set`."""
    policy = commands.group(
        "policy",
        "show or change a role's access rules",
        examples=["policy show PumpCustomerAccess", "policy set PumpCustomerAccess --max-duration 2h --dry-run"],
    )

    parser = policy.add(
        "show", run_show, "show a role's access rules (RolePolicy)", examples=["policy show PumpCustomerAccess"]
    )
    parser.add_argument("role", metavar="ROLE", help="role name or ARN")

    parser = policy.add(
        "set",
        run_set,
        "change a role's access rules and print the trust-policy diff",
        epilog="The current rules are read first; the --file document is laid over them (a null value "
        "removes a field, so the deploy ceiling's default applies), then each option replaces its field. "
        "The change is sent with If-Match: if someone changed the rules since they were read, nothing is "
        "changed (exit 5, precondition_failed) and you run the command again.",
        examples=[
            "policy set PumpCustomerAccess --dry-run --mode none --adopt PumpOrganizationAccess --require-mfa",
            "policy set PumpCustomerAccess --file policy.json",
        ],
    )
    parser.add_argument("role", metavar="ROLE", help="role name or ARN")
    parser.add_argument("--file", metavar="FILE", help="RolePolicy JSON to apply ('-' reads stdin)")
    parser.add_argument("--dry-run", action="store_true", help="show what would change; change nothing")
    for option in POLICY_FLAGS:
        dest = f"set_{option.field}"
        if option.boolean:
            parser.add_argument(option.flag, dest=dest, action=argparse.BooleanOptionalAction, help=option.help)
        else:
            parser.add_argument(
                option.flag,
                dest=dest,
                type=option.type or str,
                metavar=option.metavar,
                choices=option.choices,
                help=option.help,
            )


def run_show(args: argparse.Namespace, ctx: Context) -> int:
    """GET /roles/{role}/policy."""
    policy = as_object(ctx.client.get(api_path("roles", args.role, "policy")), "the policy")
    if ctx.json:
        ctx.print_json(policy)
        return ExitCode.OK
    ctx.print(key_values((key, _cell(value)) for key, value in policy.items() if key not in READ_ONLY_KEYS))
    effective = policy.get("effective")
    if isinstance(effective, dict):
        ctx.print("\nin effect (unset fields take the deploy ceiling's defaults):")
        ctx.print(key_values((key, _cell(value)) for key, value in effective.items()))
    return ExitCode.OK


def run_set(args: argparse.Namespace, ctx: Context) -> int:
    """GET the policy, lay --file and the options over it, PUT it (?dry_run=true), print the diff."""
    changes = _read_file(args.file) if args.file else {}
    for option in POLICY_FLAGS:
        value = getattr(args, f"set_{option.field}")
        if value is not None:
            changes[option.field] = value
    if not changes:
        raise UsageError("nothing_to_change", "pass --file or at least one option, e.g. --require-mfa")
    path = api_path("roles", args.role, "policy")
    current = as_object(ctx.client.get(path), "the policy")
    policy = merge_policy({key: value for key, value in current.items() if key not in READ_ONLY_KEYS}, changes)
    # If-Match: the change applies only to the version it was made from, so a concurrent change is never lost.
    version = current.get("version")
    headers = {"If-Match": f'"{version}"'} if isinstance(version, int) and not isinstance(version, bool) else None
    result = as_object(
        ctx.client.put(path, policy, query={"dry_run": True} if args.dry_run else None, headers=headers),
        "the policy change",
    )
    if ctx.json:
        ctx.print_json(result)
        return ExitCode.OK
    dry_run = bool(result.get("dry_run", args.dry_run))
    ctx.print(
        "dry run: nothing was changed; this is what would happen" if dry_run else f"updated the rules of {args.role}"
    )
    diff = unified_diff(
        result.get("trust_policy_before"),
        result.get("trust_policy_after"),
        "trust policy before",
        "trust policy after",
    )
    ctx.print(diff if diff else "trust policy unchanged")
    revoked = result.get("revoked_requests") or []
    ctx.print(f"\n{'would revoke' if dry_run else 'revoked'} {len(revoked)} grant(s) that no longer conform")
    if revoked:
        # Request objects per the API; a bare id is shown as one too.
        rows = [item if isinstance(item, dict) else {"id": item} for item in revoked]
        ctx.print(table(rows, REQUEST_COLUMNS))
    return ExitCode.OK


def merge_policy(current: JsonObject, changes: JsonObject) -> JsonObject:
    """`current` with each key of `changes` replacing it; a None value removes the key (the ceiling's default)."""
    merged = {**current, **changes}
    return {key: value for key, value in merged.items() if value is not None}


def _read_file(name: str) -> JsonObject:
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        document = json.loads(text)
    except OSError as error:
        raise UsageError("bad_file", f"cannot read {name}: {error.strerror}") from error
    except ValueError as error:
        raise UsageError("bad_file", f"{name} is not JSON: {error}") from error
    if not isinstance(document, dict):
        raise UsageError("bad_file", f"{name} must hold a JSON object (a RolePolicy)")
    return document


def _cell(value: Any) -> str:
    if value is None or value == []:
        return "-"
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return ", ".join(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return json.dumps(value) if isinstance(value, bool) else str(value)
