"""`make` with no target prints help and runs nothing (issue 12, section 6)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
# What a newcomer looks for first; each must be listed with what it does.
EXPECTED = ("local", "demo", "test", "unit", "functional", "e2e", "fuzz", "lint", "typecheck", "bench", "clean")


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    return subprocess.run([make, "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("target", [(), ("all",), ("help",)])
def test_make_alone_lists_the_targets_and_runs_nothing_else(target: tuple[str, ...]) -> None:
    planned = _make("--dry-run", *target)  # what would run, without running it: only help's echo and grep
    assert planned.returncode == 0, planned.stderr
    commands = [line for line in planned.stdout.splitlines() if line.strip()]
    assert all(line.startswith(("echo ", "grep ")) for line in commands), commands  # no venv, no pytest

    done = _make(*target)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "TrustGate. Usage: make TARGET"
    listed = dict(re.findall(r"^  (\S+)\s+(.+)$", done.stdout, flags=re.MULTILINE))
    for name in EXPECTED:
        assert listed.get(name), f"`make` does not list {name}:\n{done.stdout}"


def test_every_phony_target_but_the_internal_ones_is_listed() -> None:
    text = (ROOT / "Makefile").read_text()
    (phony,) = re.findall(r"^\.PHONY:(.*)$", text, flags=re.MULTILINE)
    internal = {"all", "sam-venv", "system-deps", "node-deps"}  # steps of other targets
    listed = set(re.findall(r"^  (\S+)\s", _make().stdout, flags=re.MULTILINE))
    assert set(phony.split()) - internal - listed == set()


def test_the_readme_does_not_say_make_installs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "`make` installs" not in readme
    assert "make          # lists the targets" in readme
