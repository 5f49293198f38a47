"""The shape every measure reports in: rows of (measure, value, baseline, ratio, goal, met?), plus notes."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Row:
    """One figure beside its baseline. `met` is None where the row has no goal of its own."""

    section: str
    measure: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    goal: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": None if self.ratio is None else round(self.ratio, 3)}


@dataclass
class Section:
    """What one measure module returns: its rows and anything worth keeping beside them (breakdowns, profiles)."""

    name: str
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, measure: str, value: float, unit: str, **extra: Any) -> Row:
        row = Row(self.name, measure, value, unit, **extra)
        self.rows.append(row)
        return row


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: p99 of 20 samples is the largest, which is what 20 samples can say."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def table(rows: Iterable[Row]) -> str:
    """A plain-text table; the same columns as docs/performance.md's."""
    header = ("measure", "value", "baseline", "ratio", "goal", "met?")
    lines: list[tuple[str, ...]] = [header]
    for row in rows:
        met = "-" if row.met is None else ("yes" if row.met else "NO")
        baseline = f"{_number(row.baseline)} {row.unit} ({row.baseline_label})" if row.baseline is not None else "-"
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
        lines.append(
            (f"{row.section}: {row.measure}", f"{_number(row.value)} {row.unit}", baseline, ratio, row.goal or "-", met)
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rendered = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in lines]
    rendered.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(rendered)


def markdown(rows: Iterable[Row]) -> str:
    """The table as Markdown, for docs/performance.md (with the notes the terminal table leaves out)."""
    out = ["| measure | value | baseline | ratio | goal | met? | note |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        met = "" if row.met is None else ("yes" if row.met else "**no**")
        baseline = f"{_number(row.baseline)} {row.unit} ({row.baseline_label})" if row.baseline is not None else ""
        ratio = f"{row.ratio:.2f}×" if row.ratio is not None else ""
        note = row.note.replace("|", "/")
        out.append(
            f"| {row.section}: {row.measure} | {_number(row.value)} {row.unit} | {baseline} | {ratio} | {row.goal} "
            f"| {met} | {note} |"
        )
    return "\n".join(out)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=_default) + "\n")


def _default(value: Any) -> Any:
    to_json: Callable[[], Any] | None = getattr(value, "as_json", None)
    if to_json is not None:
        return to_json()
    return str(value)
