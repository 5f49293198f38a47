"""`python -m trustgate_local` (`make local`): TrustGate on this machine, in the foreground until Ctrl-C.

Environment: TRUSTGATE_PORT (API, default 3000), TRUSTGATE_AWS_PORT (moto, default 5000),
TRUSTGATE_STATE_DIR (where the AWS profile files go, default .trustgate/local in the repository),
TRUSTGATE_LOG_LEVEL (the handlers' Powertools log level, default WARNING),
TRUSTGATE_WORKERS (how many API requests run at once, one worker process each, default 4; docs/local.md).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import warnings
from pathlib import Path

from trustgate_local.server import DEFAULT_AWS_PORT, DEFAULT_PORT, STATE_DIR, LocalStack, PortInUseError
from trustgate_local.workers import PoolSettings


def _port(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a port number") from None


def _workers() -> PoolSettings:
    raw = os.environ.get("TRUSTGATE_WORKERS", "")
    if not raw:
        return PoolSettings()
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"TRUSTGATE_WORKERS={raw!r} is not a whole number of workers (1 or more)")
    count = int(raw)
    return PoolSettings(warm=min(PoolSettings.warm, count), max_workers=count)


def _shown(path: Path) -> str:
    """A path relative to the current directory when it is below it (shorter to copy), else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def banner(local: LocalStack) -> str:
    """What `make local` prints once it is ready: where things are and how to use them."""
    org = local.organization
    people = "\n".join(f"  {u.profile:<10} {u.name:<8} {u.arn}  ({u.does})" for u in org.users)
    exports = local.profiles.export_line(local.endpoint)
    scripts = Path(sys.executable).parent
    if (scripts / "trustgate").exists():  # the venv's console script, for a shell without the venv
        exports += f' PATH="{scripts}:$PATH"'
    return f"""
TrustGate is running locally.
  API          {local.endpoint}   (SigV4-signed, service execute-api, region us-east-1)
  AWS (moto)   {local.aws_endpoint}
  Organization {org.organization_id}: management account {org.management_account}, member account {", ".join(org.member_accounts)}
  Managed roles {org.role_arn}
                {org.second_role_arn}
               (the vendor's default trust: anyone in the organization, so take them to just-in-time first)

Profiles ({_shown(local.profiles.config)}, {_shown(local.profiles.credentials)}):
{people}

Use them from another terminal:
  {exports}

First command to try (carol takes the role to just-in-time, so that a grant is the only way in):
  trustgate --profile admin policy set PumpCustomerAccess --mode none --adopt PumpOrganizationAccess

Then alice asks for an hour:
  trustgate --profile requester request PumpCustomerAccess --duration 1h --reason "rotate the CloudTrail bucket"

Then bob approves (or opens his approval link, printed below, in a browser), carol looks, time passes:
  trustgate --profile approver approvals
  trustgate --profile approver approve <ID>
  trustgate --profile admin role PumpCustomerAccess
  curl -s -X POST {local.endpoint}/_local/advance -d '{{"by": "PT61M"}}'
  trustgate --profile admin role PumpCustomerAccess
  curl -s {local.endpoint}/_local/outbox

Notifications, API calls and what the clock runs appear below. Ctrl-C stops the stack.
"""


def main() -> int:
    """Run the local stack until SIGINT/SIGTERM; 0 on a clean stop, 1 if it cannot start."""
    # Powertools warns on every invocation that publishes no metric; metrics are off locally anyway.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    local = LocalStack(
        port=_port("TRUSTGATE_PORT", DEFAULT_PORT),
        aws_port=_port("TRUSTGATE_AWS_PORT", DEFAULT_AWS_PORT),
        state_dir=Path(os.environ.get("TRUSTGATE_STATE_DIR") or STATE_DIR),
        echo=True,
        log_level=os.environ.get("TRUSTGATE_LOG_LEVEL", "WARNING"),
        workers=_workers(),
    )
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    print("Starting TrustGate locally (moto, template.yaml, handlers in-process, the API's in workers)...", flush=True)
    try:
        local.start()
    except PortInUseError as error:
        print(f"trustgate local: {error}", file=sys.stderr)
        return 1
    print(banner(local), flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        print("\nStopping TrustGate...", flush=True)
        local.stop()
        print("Stopped; ports freed.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
