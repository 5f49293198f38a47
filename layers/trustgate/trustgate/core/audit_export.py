"""The audit trail as CSV (RFC 4180): one event per row, its JSON parts as JSON text in their own columns."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from typing import Any

from trustgate.core.clock import to_rfc3339
from trustgate.core.models import AuditEvent

CSV_MEDIA_TYPE = "text/csv"
COLUMNS = ("id", "at", "actor", "action", "role_arn", "request_id", "before", "after", "detail")
# A spreadsheet runs a cell that begins with one of these as a formula (OWASP "CSV injection"). No column
# TrustGate writes begins so (ids, times, ARNs, action names, JSON objects), but a cell that ever did is
# written with a leading apostrophe, so opening an export can never run anything.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def audit_csv(events: Iterable[AuditEvent]) -> str:
    """A header row, then one row per event in the order given; CRLF line ends, as RFC 4180 has them."""
    import csv  # only GET /audit as CSV needs it: not on every cold start

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows([_inert(cell) for cell in _row(event)] for event in events)
    return out.getvalue()


def _row(event: AuditEvent) -> tuple[str, ...]:
    return (
        event.id,
        to_rfc3339(event.at),
        event.actor,
        event.action,
        event.role_arn or "",
        event.request_id or "",
        _json_cell(event.before),
        _json_cell(event.after),
        _json_cell(event.detail or None),
    )


def _json_cell(value: dict[str, Any] | None) -> str:
    """Compact JSON with sorted keys (one event always exports the same text); empty for none."""
    return "" if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _inert(cell: str) -> str:
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


def prefers_csv(format_asked: str | None, accept: str | None) -> bool:
    """CSV when `?format=csv`, or when no format is asked and `Accept` ranks text/csv above application/json.

    `?format=` wins over `Accept` (a link can carry it; a browser's Accept cannot be set)."""
    if format_asked is not None:
        return format_asked == "csv"
    ranks = _accept_ranks(accept or "")
    return ranks.get(CSV_MEDIA_TYPE, 0.0) > max(ranks.get("application/json", 0.0), 0.0)


def _accept_ranks(accept: str) -> dict[str, float]:
    """media type -> q from an Accept header (RFC 9110 12.5.1); unparsable q values count as 0."""
    ranks: dict[str, float] = {}
    for part in accept.split(","):
        media, *parameters = (piece.strip() for piece in part.split(";"))
        if not media:
            continue
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranks[media.lower()] = max(ranks.get(media.lower(), 0.0), quality)
    return ranks
