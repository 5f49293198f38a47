"""Exit codes and the errors the CLI reports as one line on stderr."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What `trustgate` exits with; scripts may rely on these numbers."""

    OK = 0
    API_ERROR = 1
    USAGE = 2
    NOT_AUTHORIZED = 3
    NOT_FOUND = 4
    CONFLICT = 5
    RULE_VIOLATION = 6
    SERVER_ERROR = 7
    WAIT_TIMED_OUT = 8


EXIT_CODE_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "success (with --wait: the request is active)",
    ExitCode.API_ERROR: "the API refused the call (a 4xx not listed below), or the awaited request ended "
    "denied, timed_out, cancelled or failed",
    ExitCode.USAGE: "usage error (bad option or argument)",
    ExitCode.NOT_AUTHORIZED: "not authenticated or not allowed (401/403, no AWS credentials)",
    ExitCode.NOT_FOUND: "not found (404)",
    ExitCode.CONFLICT: "conflict (409/412), e.g. already decided, trust policy full, or rules changed meanwhile",
    ExitCode.RULE_VIOLATION: "rule violation (422), e.g. duration over the role's maximum",
    ExitCode.SERVER_ERROR: "server or network error (5xx, connection refused, timeout, not the API)",
    ExitCode.WAIT_TIMED_OUT: "--wait gave up after --timeout; the request is still pending",
}


def exit_codes_help() -> str:
    """The exit-code table as printed at the end of `trustgate --help`."""
    return "exit codes:\n" + "\n".join(f"  {code.value}  {EXIT_CODE_MEANINGS[code]}" for code in ExitCode)


class CliError(Exception):
    """Anything `trustgate` reports as `trustgate: <code>: <message>` and an exit code.

    `next_step` is the command that helps next (`trustgate list --mine`); `main` fills it in from the error and
    the command when the error does not know it itself (see `trustgate_cli.hints`).
    """

    exit_code: int = ExitCode.API_ERROR
    # A poll that fails this way may simply be tried again (see `request --wait`).
    retryable: bool = False
    status: int | None = None  # the HTTP status, for an answer from the API
    # A multi-role request's refusal (`roles_refused`): each refusing role's own {role, status, code, message}.
    roles: list[dict[str, object]] | None = None

    def __init__(self, code: str, message: str, next_step: str = "") -> None:
        # One line on stderr, whatever the server put in its message.
        self.code = code
        self.message = " ".join(message.split())
        self.next_step = next_step
        super().__init__(f"{self.code}: {self.message}")

    def line(self) -> str:
        """The one line on stderr: `trustgate: <code>: <message>; try: <next step>`."""
        return f"trustgate: {self.code}: {self.message}" + (f"; try: {self.next_step}" if self.next_step else "")

    def detail_lines(self) -> list[str]:
        """The lines stderr shows under `line()`: for `roles_refused`, each refusing role's reason
        (`  PumpBilling: duration_too_long: ...`); none for any other error."""
        return [
            f"  {_name_of(role.get('role'))}: {role.get('code', '')}: {' '.join(str(role.get('message', '')).split())}"
            for role in self.roles or []
        ]

    def document(self) -> dict[str, object]:
        """The error as `--output json` prints it on stdout."""
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.roles:
            error["roles"] = self.roles
        if self.next_step:
            error["next"] = self.next_step
        if self.status is not None:
            error["status"] = self.status
        error["exit_code"] = int(self.exit_code)
        return {"error": error}


class ApiError(CliError):
    """The API answered with an HTTP error status and (usually) its `{"error": {code, message}}` body; `roles`: the
    body's `error.roles`, a multi-role request's refusal by each role."""

    def __init__(self, status: int, code: str, message: str, roles: list[dict[str, object]] | None = None) -> None:
        super().__init__(code, message)
        self.roles = roles or None
        self.status = status
        self.exit_code = exit_code_for_status(status)
        self.retryable = status == 429 or status >= 500


class TransportError(CliError):
    """No usable HTTP answer: connection refused, timeout, redirect, or a body that is not the API's JSON."""

    exit_code = ExitCode.SERVER_ERROR
    retryable = True


class CredentialsError(CliError):
    """No AWS credentials to sign with, so nothing is sent."""

    exit_code = ExitCode.NOT_AUTHORIZED


class NotFoundError(CliError):
    """Something the CLI looked up itself (not a 404 from the API) does not exist."""

    exit_code = ExitCode.NOT_FOUND


class UsageError(CliError):
    """A mistake in the command line that argparse alone cannot see."""

    exit_code = ExitCode.USAGE


class WaitTimedOutError(CliError):
    """`--wait` reached `--timeout` while the request was still pending."""

    exit_code = ExitCode.WAIT_TIMED_OUT


class RequestEndedError(CliError):
    """The awaited request left `pending` without becoming `active` (denied, timed_out, cancelled, failed)."""

    exit_code = ExitCode.API_ERROR


def exit_code_for_status(status: int) -> int:
    """Map an HTTP error status to the CLI's exit code."""
    if status in (401, 403):
        return ExitCode.NOT_AUTHORIZED
    if status == 404:
        return ExitCode.NOT_FOUND
    if status in (409, 412):  # 412: what was read changed meanwhile (If-Match)
        return ExitCode.CONFLICT
    if status == 422:
        return ExitCode.RULE_VIOLATION
    if status >= 500:
        return ExitCode.SERVER_ERROR
    if 400 <= status < 500:
        return ExitCode.API_ERROR
    # A 1xx/3xx reaching here is not an answer the API gives: treat as the endpoint misbehaving.
    return ExitCode.SERVER_ERROR


def _name_of(role: object) -> str:
    """A role as the API names it in a refusal (name, `path/name` or ARN) by its bare name, as
    `trustgate_cli.arns.role_name` does (which imports this module)."""
    return str(role or "?").rsplit("/", 1)[-1]
