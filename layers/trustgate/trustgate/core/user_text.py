"""Text people type (justifications, tickets, comments, reasons), made inert before others read it. Pure.

A requester's justification reaches approvers' inboxes and chat channels. Rendered as typed, it could
start a line that looks like TrustGate's own ("Open your approval page: https://…"), carry a link an
approver might click, reverse itself with bidi controls, or hide behind zero-width characters. Here it
becomes one bounded line of visible characters whose links are defanged (`https[:]//evil[.]example`),
so no mail or chat client turns them into something to click.
"""

from __future__ import annotations

import re
import unicodedata

LIMIT = 300  # characters of user text in a message; the API and the approval page keep the whole text

# Letters that render as nothing but are not in a "format" or "separator" category (Hangul fillers,
# the braille blank, the Mongolian vowel separator in older Unicode versions).
_INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e")

_SCHEME = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,30}):/+")
# Anything a mail client could turn into a link, wherever it stands in a word (`x(evil.com/a`, `go=>www.evil.com`):
# www.…, or labels ending in an alphabetic top-level label (host.tld). `e.g.` and `v1.2` are not hosts.
_HOSTLIKE = re.compile(r"(?i)(?<![\w-])(?:www\.[\w-]+(?:\.[\w-]+)*|[\w-]+(?:\.[\w-]+)*\.[a-z]{2,})(?![\w-])")


def _is_spacing(char: str) -> bool:
    """Any kind of space or line break (Unicode Z*, and the control characters Python calls whitespace)."""
    return char.isspace() or unicodedata.category(char)[0] == "Z"


def _is_invisible(char: str) -> bool:
    """Zero-width, format, control, combining, private-use characters and fillers (Unicode C*, M*, …)."""
    return unicodedata.category(char)[0] in "CM" or char in _INVISIBLE_LETTERS


def visible_length(text: str) -> int:
    """Characters a reader sees: a run of spacing of any kind counts as one space, invisible characters
    (`_is_invisible`) not at all, and neither counts at either end."""
    kept = "".join(" " if _is_spacing(char) else "" if _is_invisible(char) else char for char in text)
    return len(" ".join(kept.split()))


def defang(text: str) -> str:
    """Links in user text shown but not clickable: `https://a.example/x` -> `https[:]//a[.]example/x`."""
    text = _SCHEME.sub(lambda match: f"{match.group(1)}[:]//", text)
    text = " ".join(token.replace(".", "[.]") if "[:]//" in token else token for token in text.split(" "))
    return _HOSTLIKE.sub(lambda match: match.group(0).replace(".", "[.]"), text)


def inert(text: str | None, limit: int = LIMIT) -> str:
    """User text as one line of visible characters, links defanged, at most `limit` characters."""
    if not text:
        return ""
    kept = []
    # Compatibility forms first: a full-width dot (U+FF0E) or a ligature reads as its plain form to people.
    for char in unicodedata.normalize("NFKC", text):
        category = unicodedata.category(char)
        if _is_spacing(char) or category == "Cc":
            kept.append(" ")  # newlines, tabs, odd spaces: a justification cannot start a line of ours
        elif category[0] == "C" or char in _INVISIBLE_LETTERS:
            continue  # zero-width, bidi overrides, private use: nothing a reader should not see
        else:
            kept.append(char)
    line = defang(" ".join("".join(kept).split()))
    if len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return line
