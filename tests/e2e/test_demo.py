"""`make demo` runs in `make test`: the narrated walkthrough must succeed from a fresh stack."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def test_demo_runs_the_whole_story_and_exits_zero() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "trustgate_local.demo"], capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, f"demo failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert "Demo complete" in done.stdout
    assert '+        "AWS": "arn:aws:iam::222222222222:user/alice"' in done.stdout  # the grant, in the diff
    assert '-        "AWS": "arn:aws:iam::222222222222:user/alice"' in done.stdout  # and its removal
