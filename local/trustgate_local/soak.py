"""`python -m trustgate_local.soak [--calls N]`: the local stack's memory over many API calls (docs/local.md).

Starts a local stack on free ports, drives N signed calls through its gateway (alice asks, bob approves, the
grant activates, people list things, alice revokes), and prints the resident memory (RSS) of the stack's
process and of its worker processes every `--every` calls, then again after idling.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.credentials import ReadOnlyCredentials

from trustgate_cli.client import ApiClient
from trustgate_cli.errors import ApiError
from trustgate_local.seed import ROLE_NAME
from trustgate_local.server import LocalStack

REQUEST = {"role": ROLE_NAME, "duration": "PT1H", "justification": "soak: memory over many calls"}


def rss_mb(pid: int) -> float:
    """A process's resident memory in MB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def child_pids(pid: int) -> list[int]:
    """The direct children of `pid` (Linux /proc)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children += [int(p) for p in task.read_text().split()]
        except OSError:
            continue
    return children


class Driver:
    """Signed calls as the demo people, counted."""

    def __init__(self, local: LocalStack) -> None:
        self.calls = 0

        def client(profile: str) -> ApiClient:
            user = local.organization.user(profile)
            credentials = ReadOnlyCredentials(user.access_key_id, user.secret_access_key, None)
            return ApiClient(local.endpoint, "us-east-1", lambda: credentials)

        self.alice, self.bob, self.carol = client("requester"), client("approver"), client("admin")

    def call(self, send: Callable[[], Any]) -> Any:
        self.calls += 1
        return send()

    def one_grant(self) -> None:
        """Ask, approve once the flow waits for a decision, wait for the grant, look around, revoke."""
        request_id = self.call(lambda: self.alice.post("/requests", REQUEST))["id"]
        deadline = time.monotonic() + 60
        while True:
            try:
                self.call(lambda: self.bob.post(f"/requests/{request_id}/approve", {"comment": "ok"}))
                break
            except ApiError:  # the flow is not waiting for a decision yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        while self.call(lambda: self.alice.get(f"/requests/{request_id}")).get("status") != "active":
            if time.monotonic() > deadline:
                raise TimeoutError(f"{request_id} did not become active")
            time.sleep(0.05)
        self.call(lambda: self.alice.get("/requests", {"mine": "true"}))
        self.call(lambda: self.bob.get("/approvals"))
        self.call(lambda: self.carol.get("/roles"))
        self.call(lambda: self.carol.get("/audit"))
        self.call(lambda: self.alice.get("/openapi.json"))
        self.call(lambda: self.alice.post(f"/requests/{request_id}/revoke", {}))


def report(calls: int, started: float) -> None:
    gc.collect()
    workers = child_pids(os.getpid())
    worker_rss = sum(rss_mb(pid) for pid in workers)
    stack = rss_mb(os.getpid())
    print(
        f"calls={calls:>6}  stack RSS={stack:7.0f} MB  workers={len(workers)} RSS={worker_rss:6.0f} MB  "
        f"total={stack + worker_rss:7.0f} MB  elapsed={time.monotonic() - started:5.0f} s",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trustgate_local.soak", description=__doc__)
    parser.add_argument("--calls", type=int, default=6000, help="API calls to make (default 6000)")
    parser.add_argument("--every", type=int, default=500, help="print memory every this many calls")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds to idle before the last reading")
    arguments = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="trustgate-soak-") as state,
        LocalStack(port=0, aws_port=0, state_dir=Path(state)) as local,
    ):
        driver = Driver(local)
        started = time.monotonic()
        report(0, started)
        shown = 0
        while driver.calls < arguments.calls:
            driver.one_grant()
            if driver.calls - shown >= arguments.every:
                shown = driver.calls
                report(driver.calls, started)
        time.sleep(arguments.idle)
        print(f"idle {arguments.idle:.0f} s:", end=" ", flush=True)
        report(driver.calls, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
