"""`trustgate`: ask for, decide and administer just-in-time access to AWS IAM roles.

Every request is SigV4-signed (service `execute-api`) with the standard AWS credential chain
(--profile, environment, SSO). Output is aligned text, or with `--output json` the API's own JSON
document on stdout (lists that span pages are printed as one `{"items": [...]}`); progress and
errors go to stderr, an error as one line that ends with what to try next:
`trustgate: <code>: <message>; try: <next command>` (a multi-role request's `roles_refused` is followed
by one `  <role>: <code>: <message>` line per refusing role). With `--output json` an error is also a
JSON object on stdout: `{"error": {"code", "message", "next", "status", "exit_code"}}` (and `roles`,
the API's own list, for `roles_refused`).

Exit codes:
  0  success (with --wait: the request is active)
  1  the API refused the call (a 4xx not listed below), or the awaited request ended denied, timed_out, cancelled or failed
  2  usage error (bad option or argument)
  3  not authenticated or not allowed (401/403, no AWS credentials)
  4  not found (404)
  5  conflict (409/412), e.g. already decided, trust policy full, or rules changed meanwhile
  6  rule violation (422), e.g. duration over the role's maximum
  7  server or network error (5xx, connection refused, timeout, not the API)
  8  --wait gave up after --timeout; the request is still pending
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from trustgate_cli import __version__
from trustgate_cli.client import ENDPOINT_ENV, ApiClient, load_session, resolve_region
from trustgate_cli.commands import admin, approver, policy, requester
from trustgate_cli.commands.base import CommandAdder, Context
from trustgate_cli.errors import CliError, ExitCode, UsageError, exit_codes_help
from trustgate_cli.hints import next_step
from trustgate_cli.render import json_text

EXAMPLES = """examples:
  trustgate roles                          # what you may request, for how long, whether it needs approval
  trustgate request PumpCustomerAccess --duration "2 hours" --reason "rotate the CloudTrail key" --wait
  trustgate status                         # your requests; 'trustgate status ID' for one
  trustgate --profile approver approvals   # what waits for your decision, and until when"""

# The sub-parser registry: each entry adds one family of commands. A new family is a module with a
# `register(commands: CommandAdder)` function, listed here.
COMMAND_GROUPS: tuple[Callable[[CommandAdder], None], ...] = (
    requester.register,
    approver.register,
    admin.register,
    policy.register,
)


def _add_global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    # On sub-commands the defaults are suppressed, so `trustgate status --output json` works and
    # does not reset what was given before the command.
    def default(value: str | None) -> str | None:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("global options")
    group.add_argument("--profile", default=default(None), help="AWS profile (default: the standard credential chain)")
    group.add_argument(
        "--region",
        default=default(None),
        help="SigV4 signing region (default: the execute-api endpoint's region, else the profile's, else us-east-1)",
    )
    group.add_argument(
        "--endpoint",
        default=default(None),
        help=f"API base URL incl. stage, e.g. https://abc123.execute-api.us-east-1.amazonaws.com/prod "
        f"or http://127.0.0.1:3000 (default: ${ENDPOINT_ENV})",
    )
    group.add_argument(
        "--output",
        choices=("table", "json", "csv"),
        default=default("table"),
        help="table (default), the API's JSON, or csv (audit only)",
    )


class _Parser(argparse.ArgumentParser):
    """argparse that remembers its usage error, so `--output json` can print it as a JSON error too."""

    usage_error: tuple[str, str] | None = None  # the message, and the command whose --help explains it

    def error(self, message: str) -> NoReturn:
        _Parser.usage_error = (message, self.prog)
        self.print_usage(sys.stderr)
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}; try: {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: global options, then one sub-command from COMMAND_GROUPS."""
    parser: argparse.ArgumentParser = _Parser(
        prog="trustgate",
        description="Ask for, decide and administer just-in-time access to AWS IAM roles.",
        epilog=f"{EXAMPLES}\n\n{exit_codes_help()}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"trustgate {__version__}")
    _add_global_options(parser, suppress=False)
    shared = _Parser(add_help=False)
    _add_global_options(shared, suppress=True)
    commands = CommandAdder(parser.add_subparsers(title="commands", metavar="COMMAND", required=True), [shared])
    for register in COMMAND_GROUPS:
        register(commands)
    return parser


def _client_factory(args: argparse.Namespace) -> Callable[[], ApiClient]:
    def make() -> ApiClient:
        endpoint = args.endpoint or os.environ.get(ENDPOINT_ENV)
        if not endpoint:
            raise UsageError("no_endpoint", f"pass --endpoint or set {ENDPOINT_ENV} (e.g. http://127.0.0.1:3000)")
        credentials, profile_region = load_session(args.profile or None)
        return ApiClient(endpoint, resolve_region(args.region, endpoint, profile_region), credentials)

    return make


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `trustgate` command and return its exit code (see the module docstring)."""
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    _Parser.usage_error = None
    try:
        args = parser.parse_args(words)
    except SystemExit as stop:  # argparse: 2 after a usage error, 0 after --help/--version
        code = stop.code if isinstance(stop.code, int) else ExitCode.USAGE
        if code and _Parser.usage_error and _wants_json(words):
            message, command = _Parser.usage_error
            error = UsageError("usage", message, f"{command} --help")
            sys.stdout.write(json_text(error.document()) + "\n")
        return code
    ctx = Context(
        output=args.output,
        out=sys.stdout,
        err=sys.stderr,
        profile=args.profile or None,
        make_client=_client_factory(args),
    )
    try:
        if args.output == "csv" and not getattr(args, "csv_output", False):
            raise UsageError("usage", "--output csv is for 'trustgate audit' only; use --output table or json")
        result: int = args.handler(args, ctx)
    except CliError as error:
        error.next_step = next_step(error, args)
        if ctx.json and not ctx.wrote_output:  # a script reads stdout: the error is a JSON object there
            ctx.print_json(error.document())  # (after `request --wait`, the request it printed says how it ended)
        sys.stdout.flush()
        sys.stderr.write("".join(line + "\n" for line in [error.line(), *error.detail_lines()]))
        return error.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("trustgate: interrupted\n")
        return 130
    return result


def _wants_json(words: list[str]) -> bool:
    """Did the command line ask for `--output json` (before argparse could say so)?"""
    pairs = zip(words, [*words[1:], ""], strict=True)
    return any(word == "--output=json" or (word == "--output" and following == "json") for word, following in pairs)
