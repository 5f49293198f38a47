"""Admin-supplied patterns, evaluated in linear time: no pattern can stall the service.

Python's `re` backtracks, so `^(a+)+$` took 16 s against a 29-character ticket and held the function
meanwhile. Every pattern an admin writes is evaluated by RE2 (`google-re2`) instead, whose matching time is
linear in the text whatever the pattern: the `ticket_pattern` regular expression, and the ARN and person
globs (`*`, `?`) of requesters, approvers and admins. What RE2 cannot compile (backreferences, lookaround)
is refused when the policy is saved (422 `invalid_pattern`), with RE2's reason.

Pure: no AWS calls.
"""

from __future__ import annotations

import re
from functools import lru_cache

import re2

MAX_TICKET_PATTERN = 200  # characters of a ticket_pattern regular expression
MAX_ARN_PATTERN = 2048  # characters of an ARN or person glob: IAM's longest ARN
# What an ARN or person glob may contain: the characters of IAM names and ARNs, plus the wildcards `*` and
# `?`. ASCII only, no whitespace or control characters (a trailing newline must not slip through).
_GLOB_CHARS = re.compile(r"[A-Za-z0-9_+=,.@/:*?-]+\Z")


class PatternError(ValueError):
    """A pattern TrustGate refuses to evaluate; the message says why and how to fix it."""


def _options(*, dot_nl: bool = False) -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a refused pattern is the admin's mistake, answered as such, not a log line
    options.dot_nl = dot_nl
    return options


_REGEX_OPTIONS = _options()
_GLOB_OPTIONS = _options(dot_nl=True)  # `*` matches any character, as fnmatch's did


@lru_cache(maxsize=512)
def compile_regex(pattern: str) -> re2._Regexp[str]:
    """`pattern` compiled by RE2, or PatternError saying why it cannot be (too long, or unsupported syntax)."""
    if len(pattern) > MAX_TICKET_PATTERN:
        raise PatternError(f"is {len(pattern)} characters long; at most {MAX_TICKET_PATTERN} are allowed")
    try:
        return re2.compile(pattern, _REGEX_OPTIONS)
    except re2.error as error:
        raise PatternError(
            f"cannot be evaluated in linear time by RE2 ({_reason(error)}); use RE2 syntax: no backreferences "
            "(\\1), lookahead or lookbehind ((?=, (?!, (?<=), and {n} repetitions up to 1000"
        ) from error


def regex_fullmatch(pattern: str, text: str) -> bool:
    """Does the whole of `text` match `pattern`? Linear in `len(text)` (RE2); PatternError if uncompilable."""
    return compile_regex(pattern).fullmatch(text) is not None


def check_glob(pattern: str) -> str:
    """An ARN or person glob TrustGate will evaluate: ASCII name characters and `*`/`?`, bounded length."""
    if not pattern:
        raise PatternError("is empty; name an ARN, a 12-digit account id or a person key (wildcards * and ?)")
    if len(pattern) > MAX_ARN_PATTERN:
        raise PatternError(f"is {len(pattern)} characters long; at most {MAX_ARN_PATTERN} are allowed")
    if not _GLOB_CHARS.match(pattern):
        raise PatternError(
            "may contain only ASCII letters, digits, the characters _+=,.@/:- of IAM names and ARNs, and the "
            "wildcards * and ? (no spaces, line breaks or other characters)"
        )
    return pattern


def glob_matches(text: str, pattern: str) -> bool:
    """Glob match, case-sensitive: `*` any run of characters, `?` one character, everything else literal.

    The glob becomes an RE2 expression, so matching is linear in the text however many `*` the pattern holds
    (fnmatch's backtracking is not). Brackets are literal: IAM's own ARN globs know only `*` and `?`.
    """
    return _glob(pattern).fullmatch(text) is not None


@lru_cache(maxsize=1024)
def _glob(pattern: str) -> re2._Regexp[str]:
    parts: list[str] = []
    for char in pattern:
        if char == "*":
            if parts[-1:] != [".*"]:  # `**` means what `*` means; one `.*` keeps the program small
                parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re2.escape(char))
    return re2.compile("".join(parts), _GLOB_OPTIONS)


def _reason(error: re2.error) -> str:
    detail = error.args[0] if error.args else "invalid pattern"
    return detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
