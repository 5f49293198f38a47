"""Put the latest full run's machine and table into docs/performance.md, between marker comments."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "performance.md"


def machine_markdown(machine: dict[str, Any], generated_at: str, seconds: float) -> str:
    load = ", ".join(f"{x:.2f}" for x in machine.get("load_average", []))
    load_end = ", ".join(f"{x:.2f}" for x in machine.get("load_average_at_end", []))
    return "\n".join(
        [
            "| | |",
            "|---|---|",
            f"| run | {generated_at}, {seconds / 60:.1f} min, commit {machine.get('commit')}"
            f"{' + uncommitted changes' if machine.get('work_tree_dirty') else ''} |",
            f"| CPU | {machine.get('cpu_model')}, nproc {machine.get('nproc')} ({machine.get('machine')}) |",
            f"| memory | {machine.get('memory_gib')} GiB |",
            f"| Python | {machine.get('python')} ({machine.get('platform')}) |",
            f"| load average (1, 5, 15 min) | at start {load}; at end {load_end} |",
        ]
    )


def _replace(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- bench:{name}:start -->\n).*?(\n<!-- bench:{name}:end -->)", re.S)
    if not pattern.search(text):
        raise ValueError(f"docs/performance.md has no bench:{name} markers")
    return pattern.sub(lambda m: m.group(1) + body + m.group(2), text)


def update(payload: dict[str, Any], doc: Path = DOC) -> None:
    text = doc.read_text()
    text = _replace(text, "machine", machine_markdown(payload["machine"], payload["generated_at"], payload["seconds"]))
    text = _replace(text, "table", payload["markdown"])
    doc.write_text(text)
