"""`python -m trustgate_local.demo` (`make demo`): the whole workflow, narrated, against a fresh local stack.

Only the `trustgate` CLI and a browser's two requests are used, as a person would: carol first takes
PumpCustomerAccess to just-in-time (the vendor's open statement goes, so a grant is the only way in),
alice asks for it for an hour, bob approves from the link in his notification, the trust policy names
alice until her expiry, the clock moves past it, alice is gone, and mallory, outside the organization,
cannot even call the API. What the stack ran is told in words, never as raw log lines. Exits 1 at the
first step that does not do what it should.
"""

from __future__ import annotations

import difflib
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from trustgate_local.polling import wait_until
from trustgate_local.seed import ROLE_NAME, SHARED_MAILBOX
from trustgate_local.server import LocalStack

CLI_TIMEOUT = 60.0
VENDOR_STATEMENT = "PumpOrganizationAccess"  # the vendor's open statement (seed.vendor_trust_policy)
WAIT_TIMEOUT = 30.0


class DemoFailed(Exception):
    """A step did not do what the demo promises."""


def _cli_command() -> list[str]:
    # The console script next to this interpreter (the venv's), else the module: same code either way.
    script = Path(sys.executable).parent / "trustgate"
    if script.exists():
        return [str(script)]
    found = shutil.which("trustgate")
    return [found] if found else [sys.executable, "-m", "trustgate_cli"]


class _FormReader(HTMLParser):
    """The approval page's form, read as a browser would: hidden fields and the submit buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.buttons: dict[str, tuple[str, str]] = {}  # value -> (name, label)
        self.title = ""
        self._in: str | None = None
        self._button: tuple[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "input" and attributes.get("type") == "hidden" and attributes.get("name"):
            self.fields[attributes["name"]] = attributes.get("value", "")
        elif tag == "button" and attributes.get("name"):
            self._button = (attributes["name"], attributes.get("value", ""))
        elif tag == "title":
            self._in = "title"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("title", "button"):
            self._in, self._button = None, None

    def handle_data(self, data: str) -> None:
        if self._in == "title":
            self.title += data.strip()
        elif self._button is not None and data.strip():
            name, value = self._button
            self.buttons[value] = (name, data.strip())


class Demo:
    """The narrated walkthrough; every step checks what it shows."""

    def __init__(self, local: LocalStack, out: Callable[[str], None] = print) -> None:
        self.local = local
        self.out = out
        self.org = local.organization
        self.env = local.client_environment()
        self.cli = _cli_command()

    # -- helpers --------------------------------------------------------------------------------

    def step(self, number: int, text: str) -> None:
        self.out(f"\n=== {number}. {text}")

    def trustgate(self, *args: str, show: bool = True) -> str:
        """Run the CLI as the user would type it; a non-zero exit ends the demo.

        With `show`, the command and its output are printed; without, it is one of the demo's own checks.
        """
        if show:
            self.out(f"$ trustgate {shlex.join(args)}")
        done = subprocess.run(  # noqa: S603 - our own CLI, arguments from this file
            [*self.cli, *args], env=self.env, capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False
        )
        if show and done.stdout.strip():
            self.out(_indent(done.stdout.rstrip()))
        if done.returncode != 0:
            raise DemoFailed(f"`trustgate {shlex.join(args)}` exited {done.returncode}: {done.stderr.strip()}")
        return done.stdout

    def trustgate_refused(self, exit_code: int, *args: str) -> str:
        """Run a CLI command that must be refused with `exit_code`; print it as a shell would show it."""
        self.out(f"$ trustgate {shlex.join(args)}; echo $?")
        done = subprocess.run(  # noqa: S603 - our own CLI, arguments from this file
            [*self.cli, *args], env=self.env, capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False
        )
        self.out(_indent(f"{done.stderr.strip()}\n{done.returncode}"))
        if done.returncode != exit_code:
            raise DemoFailed(f"`trustgate {shlex.join(args)}` should exit {exit_code}, not {done.returncode}")
        return done.stderr

    def trustgate_json(self, *args: str, show: bool = False) -> Any:
        output = self.trustgate("--output", "json", *args, show=False)
        if show:
            self.out(f"$ trustgate --output json {shlex.join(args)}")
        return json.loads(output)

    def local_api(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.local.endpoint + path, data=data, method=method)  # noqa: S310 - localhost
        with urllib.request.urlopen(request, timeout=CLI_TIMEOUT) as answer:  # noqa: S310
            return json.loads(answer.read())

    def wait_for[T](self, what: str, probe: Callable[[], T | None]) -> T:
        return wait_until(probe, what, WAIT_TIMEOUT, interval=0.2, error=DemoFailed)

    def trust_policy(self) -> dict[str, Any]:
        return dict(self.trustgate_json("--profile", "admin", "role", ROLE_NAME)["trust_policy"])

    # -- the story ------------------------------------------------------------------------------

    def run(self) -> None:
        alice, bob = self.org.user("requester"), self.org.user("approver")
        self.out("TrustGate demo: just-in-time access to the vendor's PumpCustomerAccess role, on this machine.")
        self.out(
            f"Local API {self.local.endpoint}; the CLI runs with:\n  {self.local.profiles.export_line(self.local.endpoint)}"
        )

        self.step(
            1,
            f"Today the vendor's role trusts anyone in organization {self.org.organization_id} (carol, the admin, looks)",
        )
        self.trustgate("--profile", "admin", "role", ROLE_NAME)
        vendor = self.trust_policy()

        self.step(
            2,
            "carol takes the role to just-in-time first, so that a grant is the only way in "
            "(a deployment can start so: InitialStandingAccess=none)",
        )
        self.trustgate("--profile", "admin", "policy", "set", ROLE_NAME, "--mode", "none", "--adopt", VENDOR_STATEMENT)
        before = self.trust_policy()
        if any(s.get("Sid") == VENDOR_STATEMENT for s in before.get("Statement", [])) or before == vendor:
            raise DemoFailed(f"the vendor's open statement {VENDOR_STATEMENT} is still in the trust policy")
        self.out(_indent("Nobody may assume the role now: only a grant will name someone."))

        self.step(3, "alice asks for PumpCustomerAccess for one hour")
        request = self.trustgate_json(
            "--profile",
            "requester",
            "request",
            ROLE_NAME,
            "--duration",
            "1h",
            "--reason",
            "rotate the CloudTrail bucket",
            show=True,
        )
        request_id = request["id"]
        self.out(_indent(f"request {request_id} is {request['status']}"))
        if request["status"] != "pending":
            raise DemoFailed(f"a new request should wait for approval, but it is {request['status']}")

        self.step(4, "bob gets a notification with his own approval link; the team mailbox gets a copy without it")
        notification = self.wait_for(
            "bob's approval notification",
            lambda: next(
                (
                    n
                    for n in self.local_api(
                        "GET",
                        f"/_local/outbox?request_id={request_id}&subscriber={bob.name}"
                        f"&recipient={urllib.parse.quote(bob.arn)}",
                    )
                    if n["event"] == "approval.requested" and n["link"]
                ),
                None,
            ),
        )
        self.out(
            _indent(
                f"Delivered to: {notification['subscriber']} (filtered on {notification['recipient']})\n"
                f"Subject: {notification['subject']}\nLink: {notification['link']}"
            )
        )
        team = self.wait_for(
            "the team mailbox's copy",
            lambda: next(
                (
                    n
                    for n in self.local_api(
                        "GET", f"/_local/outbox?request_id={request_id}&subscriber={urllib.parse.quote(SHARED_MAILBOX)}"
                    )
                    if n["event"] == "approval.requested"
                ),
                None,
            ),
        )
        if team["link"] or "/decide/" in team["text"]:
            raise DemoFailed("the shared mailbox received an approval link")
        self.out(_indent(f"Delivered to: {team['subscriber']} (shared): the request, no link"))

        self.step(5, "bob opens the link (GET only shows the page) and clicks Approve (POST)")
        self.approve_in_browser(notification["link"])

        self.step(6, "the approval flow grants access: alice's request becomes active")
        active = self.wait_for(
            "the request to become active",
            lambda: (
                (r := self.trustgate_json("--profile", "requester", "status", request_id))["status"] == "active" and r
            ),
        )
        self.trustgate("--profile", "requester", "status", request_id)

        self.step(7, "the trust policy now names alice, until her expiry (carol looks again)")
        # The grant is recorded `active` a moment before the trust policy is written: wait for the write.
        self.wait_for("alice in the trust policy", lambda: _statement_for(self.trust_policy(), alice.arn))
        self.trustgate("--profile", "admin", "role", ROLE_NAME)
        during = self.trust_policy()
        self.out(_diff(before, during, "before", "granted"))
        grant = _statement_for(during, alice.arn)
        if grant is None:
            raise DemoFailed(f"the trust policy does not name {alice.arn} after the grant")
        expiry = grant.get("Condition", {}).get("DateLessThan", {}).get("aws:CurrentTime")
        if expiry != active["expires_at"]:
            raise DemoFailed(f"alice's statement should end at {active['expires_at']} (DateLessThan), not {expiry}")
        self.out(_indent(f"alice may assume the role until {expiry}: IAM itself refuses her after that."))

        self.step(8, "time passes: the local clock moves 61 minutes, and what became due runs")
        self.out(f'$ curl -X POST {self.local.endpoint}/_local/advance -d \'{{"by": "PT61M"}}\'')
        advanced = self.local_api("POST", "/_local/advance", {"by": "PT61M"})
        for run in advanced["ran"]:
            self.out(_indent(_what_ran(run)))
            if run["error"]:
                raise DemoFailed(f"{run['function']} failed when the clock moved: {run['error']}")

        self.step(9, "alice's grant has expired and she is gone from the trust policy")
        self.trustgate("--profile", "requester", "status", request_id)
        status = self.trustgate_json("--profile", "requester", "status", request_id)["status"]
        if status != "expired":
            raise DemoFailed(f"the request should be expired after its hour, but it is {status}")
        after = self.trust_policy()
        self.out(_diff(during, after, "granted", "expired"))
        if _statement_for(after, alice.arn) is not None:
            raise DemoFailed(f"{alice.arn} is still in the trust policy after expiry")
        if after != before:
            raise DemoFailed("the trust policy did not return to what it was before the grant")

        self.step(10, "mallory, outside the organization, cannot even call the API (its resource policy)")
        refusal = self.trustgate_refused(3, "--profile", "outsider", "list")
        if "forbidden" not in refusal:
            raise DemoFailed(f"mallory should be refused as forbidden, not: {refusal.strip()}")

        self.out(
            "\nDemo complete: just-in-time first, asked, approved from a link, granted with an expiry, removed on "
            "time, and the outsider refused."
        )

    def approve_in_browser(self, link: str) -> None:
        """What bob's browser does: GET the page (which never decides), then POST its form with Approve."""
        self.out(_indent(f"GET {_redact(link)}"))
        with urllib.request.urlopen(link, timeout=CLI_TIMEOUT) as page:  # noqa: S310 - the local stack's own link
            form = _FormReader()
            form.feed(page.read().decode())
        if "approve" not in form.buttons or "csrf" not in form.fields:
            raise DemoFailed(f"the approval page has no Approve button or no csrf field: {form.title!r}")
        self.out(_indent(f"page: {form.title!r}; buttons: {', '.join(label for _, label in form.buttons.values())}"))
        name, label = form.buttons["approve"]
        body = urllib.parse.urlencode({**form.fields, name: "approve"}).encode()
        origin = urllib.parse.urlsplit(link)
        request = urllib.request.Request(  # noqa: S310
            link,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Origin": f"{origin.scheme}://{origin.netloc}",
            },
        )
        self.out(_indent(f"POST {_redact(link)}  {name}=approve&csrf=…  (the {label!r} button)"))
        with urllib.request.urlopen(request, timeout=CLI_TIMEOUT) as result:  # noqa: S310
            answer = _FormReader()
            answer.feed(result.read().decode())
        self.out(_indent(f"page: {answer.title!r}"))


def _what_ran(run: dict[str, Any]) -> str:
    """One line, in words, for a schedule or rule the clock ran (never the raw result)."""
    result = run["result"] if isinstance(run.get("result"), dict) else {}
    if run["error"]:
        return f"{run['function']} ({run['name']}) failed: {run['error']}"
    if "reminded" in result:
        told = "told" if result["reminded"] else "not told (nothing to remind)"
        return f"reminder: the requester of {result.get('request_id')} was {told} that their access ends soon"
    if result.get("status") == "expired":
        return f"expiry: {result.get('request_id')} ended, and its principal was taken out of the trust policy"
    if "roles" in result:
        roles, failures = result["roles"], result.get("failures", [])
        changed = sum(1 for role in roles if role.get("changed"))
        return (
            f"reconcile (every 5 minutes): {len(roles)} role(s) checked, {changed} repaired, {len(failures)} failure(s)"
        )
    return f"{run['kind']} {run['name']} ran {run['function']}"


def _statement_for(policy: dict[str, Any], principal: str) -> dict[str, Any] | None:
    for statement in policy.get("Statement", []):
        principals = (
            statement.get("Principal", {}).get("AWS", []) if isinstance(statement.get("Principal"), dict) else []
        )
        if principal in ([principals] if isinstance(principals, str) else principals):
            return dict(statement)
    return None


def _diff(old: dict[str, Any], new: dict[str, Any], old_name: str, new_name: str) -> str:
    lines = difflib.unified_diff(
        json.dumps(old, indent=2).splitlines(),
        json.dumps(new, indent=2).splitlines(),
        f"trust policy ({old_name})",
        f"trust policy ({new_name})",
        lineterm="",
    )
    return _indent("\n".join(lines) or "(no change)")


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _redact(link: str) -> str:
    """The link without most of its token: it is a credential, even locally."""
    head, _, token = link.rpartition("/")
    return f"{head}/{token[:6]}…"


def main() -> int:
    """Run the demo on a fresh stack (free ports, throwaway profiles); 0 if every step held."""
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    print("Starting a fresh local stack for the demo...", flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="trustgate-demo-") as state,
        LocalStack(port=0, aws_port=0, state_dir=Path(state)) as local,
    ):
        try:
            Demo(local, out=lambda text: print(text, flush=True)).run()
        except (DemoFailed, subprocess.TimeoutExpired, OSError, ValueError) as failure:
            print(f"\nDEMO FAILED: {failure}", file=sys.stderr, flush=True)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
