"""Send one request a fuzz run reported, to a fresh local stack, and show the answer and what it changed.

    python -m tests.fuzz.replay CALLER METHOD PATH [--body TEXT | --body-hex HEX] [--header 'Name: value']...

CALLER is requester, approver, admin, outsider or unsigned. `{pending}` and `{active}` in the path or body
stand for the requests every fuzz test starts with (dave's pending request, alice's active grant), `{link}`
for the token of an approval link of the pending request, as the report writes them. Each finding in .trustgate/fuzz/report.json carries its command line.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import requests

from tests.fuzz.harness import ADMIN, CALLERS, KNOWN, Known, StateReader, describe_change, prepare, signed_json
from trustgate_local.seed import ROLE_NAME
from trustgate_local.server import LocalStack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.replay", description=__doc__.splitlines()[0])
    parser.add_argument("caller", choices=sorted(CALLERS))
    parser.add_argument("method")
    parser.add_argument("path", help="the path and query, e.g. '/requests/{pending}/approve?x=1'")
    body = parser.add_mutually_exclusive_group()
    body.add_argument("--body", help="the request body, sent as is (UTF-8)")
    body.add_argument("--body-hex", help="the request body as hex digits (bytes that are not UTF-8)")
    parser.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    args = parser.parse_args(argv)
    headers = dict(h.split(":", 1) for h in args.header)
    headers = {k.strip(): v.strip() for k, v in headers.items()}
    with tempfile.TemporaryDirectory() as state_dir, LocalStack(port=0, aws_port=0, state_dir=Path(state_dir)) as local:
        status, baseline = signed_json(local, ADMIN, "GET", f"/roles/{ROLE_NAME}/policy")
        if status != 200:
            print(f"cannot read the role's policy: {status} {baseline}", file=sys.stderr)
            return 2
        state = StateReader(local)
        known = prepare(local, KNOWN, baseline, state)
        for note in known.notes:
            print(f"setup: {note}", file=sys.stderr)
        path = _filled(args.path, known)
        data = bytes.fromhex(args.body_hex) if args.body_hex else None
        if args.body is not None:
            data = _filled(args.body, known).encode()
        before = state.read()
        response = requests.request(
            args.method.upper(),
            local.endpoint + path,
            data=data,
            headers=headers,
            auth=CALLERS[args.caller].auth(local),
            timeout=30,
        )
        after = state.settle()
        print(f"{args.method.upper()} {path} as {args.caller} -> {response.status_code}")
        for name, value in response.headers.items():
            print(f"{name}: {value}")
        print()
        print(response.text)
        change = describe_change(before, after)
        print(f"\nchanged: {change}" if change else "\nchanged nothing")
    return 0


def _filled(text: str, known: Known) -> str:
    text = text.replace("{pending}", known.pending or "no-pending-request")
    text = text.replace("{active}", known.active or "no-active-grant")
    return text.replace("{link}", known.links[0] if known.links else "no-approval-link")


if __name__ == "__main__":
    sys.exit(main())
