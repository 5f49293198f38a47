"""One local stack for the fuzz package (free ports, this process), as tests/e2e starts it, and the runner
that sends each generated case through its gateway and judges the answer."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fuzz import profiles
from tests.fuzz.harness import (
    ADMIN,
    KNOWN,
    Caller,
    Findings,
    Known,
    State,
    StateReader,
    describe_change,
    failure_detail,
    failures_of,
    prepare,
    sent_from,
    signed_json,
)
from trustgate_local.provision import ROOT
from trustgate_local.seed import ROLE_NAME
from trustgate_local.server import LocalStack

REPORT = ROOT / ".trustgate" / "fuzz" / "report.json"

# Every answer must be: no 5xx, a status the document lists, the content type and body it documents, and a
# refusal of what violates the schema. (positive_data_acceptance is left out: a valid request for someone
# else's request id is rightly refused; the checks that re-send requests are left out: they would re-send
# unsigned.)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@dataclass
class Tally:
    """What the whole session sent, for the summary line."""

    cases: Counter[str] = field(default_factory=Counter)  # by kind of caller
    statuses: Counter[int] = field(default_factory=Counter)
    findings: list[dict[str, Any]] = field(default_factory=list)


TALLY = Tally()


@dataclass
class Fuzz:
    """Runs generated cases as one kind of caller and keeps what they broke in `findings`."""

    local: LocalStack
    known: Known
    findings: Findings
    session: requests.Session
    state: StateReader

    last: State | None = None  # the state right after the previous case, when it was read then

    def run(self, case: Case[Any], caller: Caller) -> None:
        auth = caller.auth(self.local)
        before, self.last = self.last or self.state.read(), None
        try:
            response = case.call(base_url=self.local.endpoint, session=self.session, auth=auth)
        except requests.RequestException as error:  # no answer in 30 s (a stalled API), or the connection broke
            if not isinstance(error.request, requests.PreparedRequest):
                raise
            sent = sent_from(error.request, caller, self.known)
            self.findings.add("no answer", case.operation.label, caller.kind, 0, type(error).__name__, sent)
            self.last = self.state.settle()
            return
        status = response.status_code
        sent = sent_from(response.request, caller, self.known)
        TALLY.cases[caller.kind] += 1
        TALLY.statuses[status] += 1
        operation = case.operation.label
        try:
            case.validate_response(response, checks=CHECKS, transport_kwargs={"auth": auth})
        except BaseException as error:
            for failure in failures_of(error):
                self.findings.add(failure.title, operation, caller.kind, status, failure_detail(failure), sent)
        if 400 <= status < 500:
            self.last = self.state.read()
            if self.last != before:
                changed = describe_change(before, self.last)
                self.findings.add("state changed after a 4xx", operation, caller.kind, status, changed, sent)
                self.last = self.state.settle()
        elif case.method.upper() != "GET":
            # The work a success (or a failure) started ends before the next case is judged.
            self.last = self.state.settle()


@pytest.fixture(scope="package")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(port=0, aws_port=0, state_dir=tmp_path_factory.mktemp("trustgate-fuzz")) as local:
        yield local


@pytest.fixture(scope="package")
def baseline_policy(fuzz_stack: LocalStack) -> dict[str, Any]:
    """The managed role's policy as deployed; every fuzz test starts from it."""
    status, body = signed_json(fuzz_stack, ADMIN, "GET", f"/roles/{ROLE_NAME}/policy")
    assert status == 200, body
    return dict(body)


@pytest.fixture(scope="package")
def known(fuzz_stack: LocalStack) -> Known:
    return KNOWN


@pytest.fixture(scope="package")
def state(fuzz_stack: LocalStack) -> StateReader:
    return StateReader(fuzz_stack)


@pytest.fixture
def fuzz(fuzz_stack: LocalStack, known: Known, baseline_policy: dict[str, Any], state: StateReader) -> Iterator[Fuzz]:
    prepare(fuzz_stack, known, baseline_policy, state)
    with requests.Session() as session:
        yield Fuzz(fuzz_stack, known, Findings(), session, state)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A fuzz test runs every case it generates and fails at the end with every kind of failure it saw
    (one line each, with its smallest request), rather than stopping at the first."""
    result = yield
    runner = getattr(item, "funcargs", {}).get("fuzz")
    if isinstance(runner, Fuzz) and runner.findings:
        TALLY.findings += [{**f.as_json(), "test": f"{item.path.name}: {item.name}"} for f in runner.findings]
        notes = "".join(f"\n  (setup: {note})" for note in runner.known.notes)
        pytest.fail(
            f"{len(runner.findings.items)} kind(s) of failure:\n{runner.findings.report()}{notes}", pytrace=False
        )
    return result


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TALLY.cases:
        return
    profile = profiles.PROFILE
    seed = f", seed {profile.seed} (TRUSTGATE_FUZZ_SEED)" if profile.seed is not None else ", derandomized"
    total = sum(TALLY.cases.values())
    by_caller = ", ".join(f"{k} {v}" for k, v in sorted(TALLY.cases.items()))
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(TALLY.statuses.items()))
    terminalreporter.write_line(
        f"fuzz ({profile.name} profile{seed}): {total} cases ({by_caller}); statuses {statuses}"
    )
    REPORT.unlink(missing_ok=True)  # a report always belongs to the last run
    if TALLY.findings:
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(json.dumps({"seed": profile.seed, "findings": TALLY.findings}, indent=2) + "\n")
        terminalreporter.write_line(f"fuzz findings, each with a replay command: {Path(REPORT).relative_to(ROOT)}")
