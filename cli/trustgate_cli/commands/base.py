"""What every command gets (the Context) and how command modules add their sub-parsers (CommandAdder)."""

from __future__ import annotations

import argparse
import shutil
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TextIO

from trustgate_cli.client import ApiClient
from trustgate_cli.durations import DurationError, to_iso8601
from trustgate_cli.errors import ExitCode, TransportError
from trustgate_cli.render import Column, json_text, table

JsonObject = dict[str, Any]


@dataclass
class Context:
    """The output settings and a lazily built API client (a usage error needs neither endpoint nor credentials)."""

    output: str
    out: TextIO
    err: TextIO
    profile: str | None
    make_client: Callable[[], ApiClient]
    _client: ApiClient | None = field(default=None, init=False)
    wrote_output: bool = field(default=False, init=False)  # stdout holds the command's answer already

    @property
    def client(self) -> ApiClient:
        """The signed API client, built on first use."""
        if self._client is None:
            self._client = self.make_client()
        return self._client

    def now(self) -> datetime:
        """TrustGate's time now (its answers' `Date`), so "expires in 52 min" is right even when the local
        stack's clock was moved; this machine's clock before any answer."""
        server_now = self._client.now() if self._client is not None else None
        return server_now or datetime.now(timezone.utc)

    @property
    def json(self) -> bool:
        """Whether `--output json` was asked for."""
        return self.output == "json"

    def print(self, text: str = "") -> None:
        """Write a line to stdout."""
        self.out.write(text + "\n")
        self.wrote_output = True

    def print_json(self, document: Any) -> None:
        """Write the API's document to stdout as JSON."""
        self.print(json_text(document))

    def note(self, text: str) -> None:
        """Write a hint to stderr, where it never mixes with output a script parses."""
        self.err.write(text + "\n")


Handler = Callable[[argparse.Namespace, Context], int]


class CommandAdder:
    """Adds sub-commands to a sub-parser group, each with the global options and its handler attached."""

    def __init__(
        self,
        subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
        parents: list[argparse.ArgumentParser],
        prefix: str = "",
    ):
        self._subparsers = subparsers
        self._parents = parents
        self._prefix = prefix  # `policy ` for the commands of a group

    def add(
        self, name: str, handler: Handler, help_text: str, *, examples: Sequence[str], epilog: str | None = None
    ) -> argparse.ArgumentParser:
        """A sub-command `name` run by `handler`, its `--help` ending with `examples` (command lines without the
        leading `trustgate`); returns its parser for the command's own arguments."""
        command = f"{self._prefix}{name}"
        parser = self._subparsers.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=_epilog(epilog, examples, command),
            parents=self._parents,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.set_defaults(handler=handler, command_name=command)
        return parser

    def group(self, name: str, help_text: str, *, examples: Sequence[str]) -> CommandAdder:
        """A command with sub-commands of its own, e.g. `policy show|set`."""
        parser = self._subparsers.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=_epilog(None, examples, name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.set_defaults(command_name=name)
        subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
        return CommandAdder(subparsers, self._parents, prefix=f"{self._prefix}{name} ")


def _epilog(text: str | None, examples: Sequence[str], command: str) -> str:
    """A command's epilog: its explanation wrapped to the terminal, then its examples as typed."""
    if not examples:
        raise ValueError(f"'trustgate {command} --help' needs an example")
    width = min(shutil.get_terminal_size().columns, 100) - 2
    lines = [textwrap.fill(text, width), ""] if text else []
    lines.append("example:" if len(examples) == 1 else "examples:")
    lines += [f"  trustgate {example}" for example in examples]
    return "\n".join(lines)


def as_object(document: Any, what: str) -> JsonObject:
    """The API's answer as a JSON object, or a TransportError when it is something else."""
    if not isinstance(document, dict):
        raise TransportError("invalid_response", f"expected a JSON object for {what}, got {type(document).__name__}")
    return document


def collect_pages(
    ctx: Context, path: str, query: Mapping[str, str | int | bool | None], limit: int | None = None
) -> tuple[list[JsonObject], bool]:
    """All `items` of a paginated list, following `next`; stops at `limit`. Returns (items, more_left)."""
    items: list[JsonObject] = []
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        page = as_object(ctx.client.get(path, {**query, "next": cursor}), path)
        items.extend(page.get("items") or [])
        cursor = page.get("next") or None
        if limit is not None and len(items) >= limit:
            return items[:limit], len(items) > limit or cursor is not None
        if cursor is None:
            return items, False
        if cursor in seen:
            # A cursor that repeats would loop forever.
            raise TransportError("invalid_response", f"{path} returned the same 'next' cursor twice")
        seen.add(cursor)


def print_list(
    ctx: Context,
    items: list[JsonObject],
    columns: Sequence[Column],
    empty: str,
    *,
    document: JsonObject | None = None,
    cut_short: str | None = None,
) -> int:
    """A list answer: JSON (the API's `document`, or the collected items) or a table, with a note if cut short."""
    if ctx.json:
        ctx.print_json(document if document is not None else {"items": items})
        return ExitCode.OK
    ctx.print(table(items, columns) if items else empty)
    if cut_short:
        ctx.note(cut_short)
    return ExitCode.OK


def duration_arg(text: str) -> str:
    """argparse type: a duration (`2 hours`, `1h30m`, `90`, `PT1H`) as ISO 8601."""
    try:
        return to_iso8601(text)
    except DurationError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)
