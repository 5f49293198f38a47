"""`make local` as a person meets it: the banner's first command works, and Ctrl-C frees both ports."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _bound(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _read_until(process: subprocess.Popen[str], marker: str, timeout: float) -> str:
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"no {marker!r} from the local stack:\n{''.join(seen)}")


def test_banner_first_command_works_and_ctrl_c_frees_the_ports(tmp_path: Path) -> None:
    port, aws_port = _free_port(), _free_port()
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "TRUSTGATE_PORT": str(port),
        "TRUSTGATE_AWS_PORT": str(aws_port),
        "TRUSTGATE_STATE_DIR": str(tmp_path),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "trustgate_local"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        banner = _read_until(process, "Ctrl-C stops the stack", timeout=60)
        lines = banner.splitlines()
        exports = next(line.strip() for line in lines if line.strip().startswith("export "))
        first = lines[next(i for i, line in enumerate(lines) if line.startswith("First command to try")) + 1].strip()
        then = lines[next(i for i, line in enumerate(lines) if line.startswith("Then alice asks")) + 1].strip()
        assert f"TRUSTGATE_ENDPOINT=http://127.0.0.1:{port}" in exports
        # The role goes to just-in-time first, so that alice's grant means something.
        assert (
            first
            == "trustgate --profile admin policy set PumpCustomerAccess --mode none --adopt PumpOrganizationAccess"
        )
        assert then.startswith("trustgate --profile requester request PumpCustomerAccess")

        # WHEN someone pastes the lines into a shell
        shell = subprocess.run(
            ["bash", "-c", f"{exports} && {first} && {then} --output json"],
            env={k: v for k, v in environment.items() if not k.startswith("TRUSTGATE_")},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert shell.returncode == 0, f"{shlex.quote(first)} && {shlex.quote(then)} failed: {shell.stderr}"
        assert "updated the rules of PumpCustomerAccess" in shell.stdout
        assert '-      "Sid": "PumpOrganizationAccess",' in shell.stdout
        assert '"status": "pending"' in shell.stdout

        # THEN Ctrl-C stops it cleanly
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
        assert process.returncode == 0, output
        assert "Stopped; ports freed." in output
        assert not _bound(port)
        assert not _bound(aws_port)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
