"""`make demo` runs in `make test`: the narrated walkthrough must succeed from a fresh stack."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def _raw_log_lines(text: str) -> list[str]:
    """Lines a person should not have to read: JSON log records or results, log-level prefixes, tracebacks."""
    raw = []
    for line in text.splitlines():
        stripped = line.strip()
        try:
            parsed = json.loads(stripped)
        except ValueError:
            parsed = None
        logged = stripped.startswith(("INFO", "WARNING", "ERROR", "DEBUG")) or '"level":' in stripped
        if (isinstance(parsed, dict) and parsed) or logged or "Traceback (most recent call last)" in stripped:
            raw.append(line)
    return raw


def test_demo_runs_the_whole_story_and_exits_zero() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "trustgate_local.demo"], capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, f"demo failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert "Demo complete" in done.stdout
    # The role goes to just-in-time first, and the demo says so in one line.
    (first,) = [line for line in done.stdout.splitlines() if "just-in-time first" in line and line.startswith("===")]
    assert "InitialStandingAccess=none" in first
    assert '-      "Sid": "PumpOrganizationAccess",' in done.stdout  # the vendor's open statement goes
    assert '+        "AWS": "arn:aws:iam::222222222222:user/alice"' in done.stdout  # the grant, in the diff
    assert '-        "AWS": "arn:aws:iam::222222222222:user/alice"' in done.stdout  # and its removal
    # The outsider step the README promises: mallory is refused by the API, exit code 3.
    assert "$ trustgate --profile outsider list; echo $?" in done.stdout
    assert "trustgate: forbidden: User: arn:aws:iam::999999999999:user/mallory" in done.stdout
    # What the clock ran is told in words, and nothing else reaches the terminal raw.
    assert "expiry: " in done.stdout
    assert "reconcile (every 5 minutes)" in done.stdout
    assert _raw_log_lines(done.stdout) == []
    assert done.stderr.strip() == ""


def test_raw_log_lines_are_recognised() -> None:
    lines = [
        '{"level":"WARNING","message":"could not schedule","service":"trustgate"}',
        '    {"roles": [], "flows": [], "failures": []}',
        "WARNING:root:something",
        "    {",
        '      "Sid": "TrustGateGrantUsers",',
        "    reconcile (every 5 minutes): 2 role(s) checked, 0 repaired, 0 failure(s)",
    ]
    assert _raw_log_lines("\n".join(lines)) == lines[:3]
