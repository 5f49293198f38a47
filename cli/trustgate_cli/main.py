"""`trustgate`: ask for, decide and administer just-in-time access to AWS IAM roles.

Every request is SigV4-signed (service `execute-api`) with the standard AWS credential chain
(--profile, environment, SSO). Output is aligned text, or with `--output json` the API's own JSON
document on stdout (lists that span pages are printed as one `{"items": [...]}`); progress and
errors go to stderr, an error as one line: `trustgate: <code>: <message>`.

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

from trustgate_cli import __version__
from trustgate_cli.client import ApiClient, load_session, resolve_region
from trustgate_cli.commands import admin, approver, policy, requester
from trustgate_cli.commands.base import CommandAdder, Context
from trustgate_cli.errors import CliError, ExitCode, UsageError, exit_codes_help

ENDPOINT_ENV = "TRUSTGATE_ENDPOINT"

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
        "--output", choices=("table", "json"), default=default("table"), help="table (default) or the API's JSON"
    )


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: global options, then one sub-command from COMMAND_GROUPS."""
    parser = argparse.ArgumentParser(
        prog="trustgate",
        description="Ask for, decide and administer just-in-time access to AWS IAM roles.",
        epilog=exit_codes_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"trustgate {__version__}")
    _add_global_options(parser, suppress=False)
    shared = argparse.ArgumentParser(add_help=False)
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
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # argparse: 2 after a usage error, 0 after --help/--version
        return stop.code if isinstance(stop.code, int) else ExitCode.USAGE
    ctx = Context(
        output=args.output,
        out=sys.stdout,
        err=sys.stderr,
        profile=args.profile or None,
        make_client=_client_factory(args),
    )
    try:
        code: int = args.handler(args, ctx)
    except CliError as error:
        sys.stdout.flush()
        sys.stderr.write(f"trustgate: {error.code}: {error.message}\n")
        return error.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("trustgate: interrupted\n")
        return 130
    return code
