"""Issue 12, sections 4, 5 and 7: the CLI as a colleague installs it — `pip install ./cli` into a fresh venv of
this machine's own `python3` (Debian's, not the project's 3.13) — driving a request through the local stack.

The package must install with its declared dependencies only (no server, local stack or bench), run on the
system Python, and say things people read at a glance: `roles`, human times, `approve` that reads as a success,
errors that point the way, and `audit --since 1h` on the stack's clock after `/_local/advance`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.drive import ROLE, SECOND_ROLE, advance, outbox, wait_for
from trustgate.core.clock import parse_rfc3339
from trustgate_local.server import LocalStack

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
REASON = "rotate the CloudTrail bucket key after the audit"
INSTALL_TIMEOUT = 900  # boto3 and botocore come from the registry
CLOCK = r"(\d{4}-\d\d-\d\d )?\d\d:\d\d UTC"  # `12:35 UTC`, or with the date when it is another day


def system_python() -> Path:
    """The machine's own `python3` — what `command -v python3` finds outside the project's venvs and pyenv
    (the Makefile puts .venv/bin and the 3.13 interpreter first on PATH)."""
    if Path("/usr/bin/python3").exists():
        return Path("/usr/bin/python3")
    project = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), REPO.resolve()}
    outside = [
        entry
        for entry in os.environ.get("PATH", "").split(os.pathsep)
        if entry and not any(Path(entry).resolve().is_relative_to(root) for root in project) and ".pyenv" not in entry
    ]
    found = shutil.which("python3", path=os.pathsep.join(outside))
    assert found, "no python3 outside the project's venv on PATH; install Debian's python3"
    return Path(found)


@pytest.fixture(scope="module")
def installed_cli(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`trustgate` installed from ./cli, with its declared dependencies, into a fresh venv of the system python3."""
    python = system_python()
    version = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if tuple(int(part) for part in version.split(".")) < (3, 10):
        pytest.skip(f"the system python3 is {version}; trustgate-cli needs 3.10 or later")
    root = tmp_path_factory.mktemp("system-python-cli")
    source = root / "cli"  # a copy: building in place would leave build/ and egg-info in the checkout
    shutil.copytree(REPO / "cli", source, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__", "build"))
    venv = root / "venv"
    venv_python = venv / "bin" / "python"
    made = subprocess.run([python, "-m", "venv", venv], capture_output=True, text=True, check=False)
    if made.returncode == 0:
        install: list[str | Path] = [
            venv_python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            source,
        ]
    else:  # Debian without python3-venv has no ensurepip: a venv without pip, filled by the project's pip
        subprocess.run([python, "-m", "venv", "--without-pip", venv], capture_output=True, text=True, check=True)
        install = [sys.executable, "-m", "pip", "--python", venv_python, "install", "--quiet", source]
    done = subprocess.run(install, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False)
    assert done.returncode == 0, f"pip install ./cli failed:\n{done.stdout}\n{done.stderr}"
    return venv


def run(venv: Path, local: LocalStack, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`trustgate ARGS` as the installed console script, with the local stack's profiles."""
    return subprocess.run(
        [venv / "bin" / "trustgate", *args],
        env=local.client_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(venv: Path, local: LocalStack, *args: str) -> str:
    done = run(venv, local, *args)
    assert done.returncode == 0, f"trustgate {' '.join(args)} exited {done.returncode}: {done.stderr}"
    return done.stdout


def as_json(venv: Path, local: LocalStack, profile: str, *args: str) -> Any:
    return json.loads(ok(venv, local, "--profile", profile, "--output", "json", *args))


def test_the_package_installs_on_the_system_python_with_only_the_cli(installed_cli: Path) -> None:
    python = installed_cli / "bin" / "python"
    probe = (
        "import importlib.util as u, sys, trustgate_cli; "
        "print(sys.version_info[:2] >= (3, 10), trustgate_cli.__version__, "
        "[m for m in ('trustgate', 'trustgate_local', 'bench', 'boto3') if u.find_spec(m)])"
    )
    # Run away from the checkout, whose directories (bench/, …) `python -c` would otherwise find.
    done = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True, cwd=installed_cli)

    assert done.stdout.split(" ", 2) == ["True", "0.1.0", "['boto3']\n"]
    assert Path(python).resolve().parent != Path(sys.executable).resolve().parent  # not the project's 3.13
    version = subprocess.run([installed_cli / "bin" / "trustgate", "--version"], capture_output=True, text=True)
    assert version.stdout == "trustgate 0.1.0\n"


def test_the_installed_cli_drives_a_request_through_the_local_stack(
    installed_cli: Path, local_stack: LocalStack
) -> None:
    venv, local = installed_cli, local_stack

    # WHEN alice asks what she may request
    [role] = [r for r in as_json(venv, local, "requester", "roles")["items"] if r["role_name"] == ROLE]
    assert (role["role_name"], role["needs_approval"]) == (ROLE, True)
    table = ok(venv, local, "--profile", "requester", "roles")
    assert re.search(rf"^{ROLE} +\d{{12}} +\d+ hours? +1 hour +1 approver +-$", table, re.M), table

    # AND asks for two hours, naming the role in lower case
    request = as_json(venv, local, "requester", "request", ROLE.lower(), "--duration", "2 hours", "--reason", REASON)
    assert (request["role_arn"].rsplit("/", 1)[-1], request["duration"]) == (ROLE, "PT2H")
    request_id = request["id"]

    # THEN bob sees it with its deadline, and approving reads as a success
    wait_for(lambda: request_id in ok(venv, local, "--profile", "approver", "approvals"), "the request to be listed")
    approvals = ok(venv, local, "--profile", "approver", "approvals")
    assert re.search(rf"^{request_id} .* in \d+ (hours?|min)[^(]*\({CLOCK}\)", approvals, re.M), approvals
    wait_for(lambda: outbox(local, request_id=request_id, event="approval.requested"), "the approvers' notifications")
    approved = run(venv, local, "--profile", "approver", "approve", request_id, "--comment", "go ahead")
    assert approved.returncode == 0, approved.stderr
    first, second = approved.stdout.splitlines()[:2]
    assert first == "approved; granting…"
    assert second.startswith(f"granted: alice (IAM user, {local.organization.user('requester').account}) has access")

    # AND her status says when it ends, in words and on the stack's clock
    active = as_json(venv, local, "requester", "status", request_id)
    status = ok(venv, local, "--profile", "requester", "status", request_id)
    ends = active["expires_at"][11:16]
    assert re.search(
        rf"^status: +active; expires in (2 hours|1 hour 59 min) \(([-0-9]+ )?{ends} UTC\)$", status, re.M
    ), status
    assert re.search(r"^duration: +2 hours$", status, re.M), status

    # AND switch-url prints the server's link for her, a requester: the one her active grant carries
    assert ok(venv, local, "--profile", "requester", "switch-url", ROLE.lower()).strip() == role["switch_url"]
    assert active["switch_url"] == role["switch_url"]

    # WHEN the stack's clock moves on three hours (her grant expires)
    advance(local, "PT3H")

    # THEN `audit --since 1h` counts on the stack's clock: nothing of hers in the last hour, all of it in four
    def created(since: str) -> list[str]:
        events = as_json(venv, local, "admin", "audit", "--role", ROLE, "--since", since)["items"]
        return [e["request_id"] for e in events if e["action"] == "request.created"]

    assert request_id not in created("1h")
    assert request_id in created("4h")

    # AND `audit --output csv` exports the same events as CSV: one header row, one row per event
    exported = ok(venv, local, "--profile", "admin", "audit", "--role", ROLE, "--since", "4h", "--output", "csv")
    header, *rows = list(csv.reader(io.StringIO(exported, newline="")))
    assert header == ["id", "at", "actor", "action", "role_arn", "request_id", "before", "after", "detail"]
    listed = as_json(venv, local, "admin", "audit", "--role", ROLE, "--since", "4h")["items"]
    assert [row[0] for row in rows] == [event["id"] for event in listed]
    assert [request_id, "request.created"] in [[row[5], row[3]] for row in rows]
    expired = ok(venv, local, "--profile", "requester", "status", request_id)
    assert re.search(rf"^status: +expired (1 hour|5\d min) ago \({CLOCK}\)$", expired, re.M), expired


def test_the_installed_cli_schedules_access_for_later_and_the_stack_starts_it(
    installed_cli: Path, local_stack: LocalStack
) -> None:
    venv, local = installed_cli, local_stack

    # WHEN alice asks today for an hour that begins in two hours, and bob approves it now
    request = as_json(
        venv, local, "requester", "request", ROLE, "--start", "+2h", "--duration", "1h", "--reason", REASON
    )
    request_id, start_at = request["id"], request["start_at"]
    wait_for(lambda: outbox(local, request_id=request_id, event="approval.requested"), "the approvers' notifications")
    approved = run(venv, local, "--profile", "approver", "approve", request_id, "--comment", "for tonight")
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.splitlines()[1].startswith("scheduled: alice (IAM user, ")

    # THEN it waits, scheduled, with nobody let in yet
    status = ok(venv, local, "--profile", "requester", "status", request_id)
    assert re.search(rf"^status: +scheduled; begins in (2 hours|1 hour 5\d min) \({CLOCK}\)$", status, re.M), status

    # WHEN the stack's clock reaches its start, its schedule starts it, for one hour from the start asked for
    advance(local, "PT2H1M")
    wait_for(
        lambda: as_json(venv, local, "requester", "status", request_id)["status"] == "active" or None,
        "the scheduled grant to begin",
        timeout=60,
    )
    active = as_json(venv, local, "requester", "status", request_id)
    assert parse_rfc3339(active["expires_at"]) == parse_rfc3339(start_at) + timedelta(hours=1)


def test_the_installed_cli_errors_point_the_way(installed_cli: Path, local_stack: LocalStack) -> None:
    venv, local = installed_cli, local_stack

    missing = run(venv, local, "--profile", "requester", "status", "01NOSUCHREQUEST")
    assert missing.returncode == 4
    assert missing.stderr.endswith("; try: trustgate list --mine (your requests and their IDs)\n")

    misspelt = run(venv, local, "--profile", "requester", "request", "PumpCustomerAcess", "--reason", REASON)
    assert misspelt.returncode == 4
    assert f"did you mean {ROLE}?" in misspelt.stderr

    unknown = run(venv, local, "--profile", "nobody", "roles")
    assert unknown.returncode == 3
    assert "known profiles: " in unknown.stderr
    assert "requester" in unknown.stderr

    as_object = run(venv, local, "--profile", "requester", "--output", "json", "status", "01NOSUCHREQUEST")
    assert json.loads(as_object.stdout)["error"]["code"] == "not_found"

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    refused = run(venv, local, "--endpoint", f"http://127.0.0.1:{port}", "--profile", "requester", "roles")
    assert refused.returncode == 7
    assert "'make local'" in refused.stderr
    assert "TRUSTGATE_ENDPOINT" in refused.stderr


def test_the_installed_cli_breaks_the_glass_and_an_approver_reviews_it(
    installed_cli: Path, local_stack: LocalStack, tmp_path: Path
) -> None:
    venv, local = installed_cli, local_stack
    requester = local.organization.user("requester").arn
    shown = as_json(venv, local, "admin", "policy", "show", ROLE)
    earlier = {key: value for key, value in shown.items() if key not in ("effective", "version")}
    rule = {**earlier, "break_glass": {"requesters": [requester], "max_duration": "PT30M"}}
    (tmp_path / "policy.json").write_text(json.dumps(rule), encoding="utf-8")
    ok(venv, local, "--profile", "admin", "policy", "set", ROLE, "--file", str(tmp_path / "policy.json"))
    try:
        # WHEN alice breaks the glass, THEN she holds the role at once, and the approvers are told
        taken = run(
            venv,
            local,
            "--profile",
            "requester",
            "request",
            ROLE,
            "--break-glass",
            "--duration",
            "20m",
            "--reason",
            "INC-4711: the pump API is down and nobody answers",
        )
        assert taken.returncode == 0, taken.stderr
        request_id = as_json(venv, local, "requester", "list", "--mine", "--status", "active")["items"][0]["id"]
        assert "break-glass" in taken.stdout.lower()
        wait_for(lambda: outbox(local, request_id=request_id, event="break_glass"), "the approvers to be told")

        # AND it waits for a review: listed for bob; alice may neither review it nor break the glass again
        pending = ok(venv, local, "--profile", "approver", "list", "--review", "pending")
        assert request_id in pending
        own = run(venv, local, "--profile", "requester", "review", request_id, "--ok")
        assert own.returncode != 0
        assert "forbidden" in own.stderr or "approver" in own.stderr
        again = run(
            venv,
            local,
            "--profile",
            "requester",
            "request",
            ROLE,
            "--break-glass",
            "--reason",
            "INC-4711: still down after the first one",
        )
        assert again.returncode != 0
        assert "not been reviewed" in again.stderr

        # WHEN bob reviews it, THEN the request carries his verdict and the queue is empty
        reviewed = run(
            venv, local, "--profile", "approver", "review", request_id, "--misuse", "--comment", "no incident was open"
        )
        assert reviewed.returncode == 0, reviewed.stderr
        view = as_json(venv, local, "requester", "status", request_id)
        assert (view["break_glass"], view["review"]["verdict"]) == (True, "misuse")
        assert request_id not in ok(venv, local, "--profile", "approver", "list", "--review", "pending")
    finally:
        (tmp_path / "policy.json").write_text(json.dumps(earlier), encoding="utf-8")
        ok(venv, local, "--profile", "admin", "policy", "set", ROLE, "--file", str(tmp_path / "policy.json"))


def test_the_installed_cli_asks_for_two_roles_in_one_request(installed_cli: Path, local_stack: LocalStack) -> None:
    venv, local = installed_cli, local_stack
    roles = [item["role_name"] for item in as_json(venv, local, "requester", "roles")["items"]]
    assert roles == [ROLE, SECOND_ROLE]

    # WHEN alice asks for both roles at once, THEN one request covers them, and bob approves it once
    request = as_json(venv, local, "requester", "request", ROLE, SECOND_ROLE, "--duration", "1h", "--reason", REASON)
    request_id, (part_id,) = request["id"], request["parts"]
    assert [arn.rsplit("/", 1)[-1] for arn in request["roles"]] == [ROLE, SECOND_ROLE]
    wait_for(lambda: outbox(local, request_id=request_id, event="approval.requested"), "the approvers' notifications")
    assert outbox(local, request_id=part_id, event="approval.requested") == []
    approved = run(venv, local, "--profile", "approver", "approve", request_id, "--comment", "both, for the migration")
    assert approved.returncode == 0, approved.stderr

    # AND each role has its own grant, each shown with its way in
    def granted() -> bool | None:
        states = {as_json(venv, local, "requester", "status", each)["status"] for each in (request_id, part_id)}
        return states == {"active"} or None

    wait_for(granted, "both roles to be granted")
    status = ok(venv, local, "--profile", "requester", "status", request_id)
    assert SECOND_ROLE in status
    assert "--role-session-name alice" in status

    # WHEN she revokes one of them, THEN both end
    ok(venv, local, "--profile", "requester", "revoke", part_id, "--reason", "migration done")
    assert {as_json(venv, local, "requester", "status", each)["status"] for each in (request_id, part_id)} == {
        "revoked"
    }

    # AND a role that refuses refuses them both, naming itself
    refused = run(
        venv, local, "--profile", "requester", "request", ROLE, SECOND_ROLE, "--duration", "13h", "--reason", REASON
    )
    assert refused.returncode == 6, refused.stderr
    assert "roles_refused" in refused.stderr
    assert f"  {SECOND_ROLE}: duration_too_long" in refused.stderr
