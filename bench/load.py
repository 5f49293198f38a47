"""Measure 7: many concurrent approvals on one role, through the real flow.

The workload the issue sets is "200 concurrent approvals on one role". 200 persons cannot be live on one role
at once (a trust policy holds about 100 IAM users at IAM's 4,096-character maximum), so it is 100 requests
by 100 IAM users with 2-character names (`arn:aws:iam::222222222222:user/a0` … `j9`) under a two-approval
rule: the admin sets `required_approvals: 2` with two approvers through the API, then both approvers of every
request post their approval at once (200 threads released together). Each second approval reaches the quorum and resumes
the request's flow on moto's Step Functions executor: Grant step → `sync_role`, all on the one role, where
the changes are coalesced. Quick mode: 20 requests, 40 approvals.

Counted by wrapping what the Grant step calls: `trustgate.app.workflow_steps.sync_role` (every `SyncResult`, every
`LockTimeoutError`), `trustgate.app.sync._round` (every round and the grants it activated) and `trustgate.app.sync.count`
(a `LockTimeouts` metric from any lock wait). Activation latency is from the approval that reached the quorum
to the request being active, both read from the audit records (`request.approved`, `request.granted`): the
millisecond their ULID ids carry (`at` itself is stored in whole seconds), so the bench's polling is not in it.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from string import ascii_lowercase
from typing import Any

from bench.results import Section, median, percentile
from trustgate.app import sync, workflow_steps
from trustgate.core.errors import LockTimeoutError
from trustgate.core.ids import _ALPHABET
from trustgate.core.trust_policy import grant_expiry_in, policy_size
from trustgate_local.world import BOB, CAROL, DAVE, MEMBER, ROLE_ARN, ROLE_NAME, World, running_world

FULL_REQUESTS = 100
QUICK_REQUESTS = 20
APPROVERS = (BOB, DAVE)  # both approve every request: required_approvals 2
PARAMETERS = {"TrustPolicyQuota": "4096"}  # MinRequiredApprovals stays at its default, 1 (<= 2)
BODY = {"role": ROLE_NAME, "duration": "PT1H", "justification": "load: many approvals on one role"}
FLOW_SECONDS = {True: 120.0, False: 900.0}  # quick, full: how long the flows may take to finish


def person(index: int) -> str:
    """An IAM user with a 2-character name (a0 … z9): 100 of them fit a 4,096-character trust policy, 96 with
    4-character names (bench/capacity.py's engine), so the workload's 100 persons can all be live at once."""
    return f"arn:aws:iam::{MEMBER}:user/{ascii_lowercase[index // 10]}{index % 10}"


def ulid_ms(ulid: str) -> int:
    """The millisecond a `trustgate.core.ids.new_id` id was made at (its first 48 bits)."""
    value = 0
    for char in ulid:
        value = value * 32 + _ALPHABET.index(char)
    return value >> 80


@dataclass
class Tally:
    """What the wrapped functions saw, from every thread."""

    results: list[sync.SyncResult] = field(default_factory=list)
    lock_timeouts: list[str] = field(default_factory=list)  # LockTimeoutError raised out of sync_role
    lock_timeout_metrics: int = 0  # `LockTimeouts` counted by any lock wait (sync_role, role_lock)
    other_errors: list[str] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)  # grants each round activated
    round_seconds: list[float] = field(default_factory=list)
    failed_rounds: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def tallied() -> Iterator[Tally]:
    tally = Tally()
    # The Grant step calls `sync_role` as trustgate.app.workflow_steps imported it; the rounds and the lock's metric are
    # looked up in trustgate.app.sync's own namespace.
    seams = {(workflow_steps, "sync_role"), (sync, "_round"), (sync, "count")}
    real: dict[str, Callable[..., Any]] = {name: getattr(module, name) for module, name in seams}
    real_sync_role, real_round, real_count = real["sync_role"], real["_round"], real["count"]

    def sync_role(*args: Any, **kwargs: Any) -> sync.SyncResult:
        try:
            result: sync.SyncResult = real_sync_role(*args, **kwargs)
        except LockTimeoutError as error:
            with tally.lock:
                tally.lock_timeouts.append(error.message)
            raise
        except Exception as error:  # a refusal (409 …) or a bug: kept with its type, re-raised as it was
            with tally.lock:
                tally.other_errors.append(f"{type(error).__name__}: {error}")
            raise
        with tally.lock:
            tally.results.append(result)
        return result

    def counted_round(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            done = real_round(*args, **kwargs)
        except Exception as error:
            with tally.lock:
                tally.failed_rounds.append(f"{type(error).__name__}: {error}")
            raise
        with tally.lock:
            tally.rounds.append(len(done.activated))
            tally.round_seconds.append(time.perf_counter() - started)
        return done

    def count(metric: str) -> None:
        if metric == "LockTimeouts":
            with tally.lock:
                tally.lock_timeout_metrics += 1
        real_count(metric)

    wrapped: dict[str, Callable[..., Any]] = {"sync_role": sync_role, "_round": counted_round, "count": count}
    for module, name in seams:
        setattr(module, name, wrapped[name])
    try:
        yield tally
    finally:
        for module, name in seams:
            setattr(module, name, real[name])


def _set_two_approval_rule(world: World) -> None:
    """As an admin would: the role's own approvers, both needed."""
    policy = {"approvers": list(APPROVERS), "required_approvals": len(APPROVERS)}
    status, body = world.api("PUT", f"/roles/{ROLE_NAME}/policy", CAROL, policy)
    assert status == 200, body


def _request_all(world: World, requests: int) -> list[str]:
    ids = []
    for index in range(requests):
        status, body = world.api("POST", "/requests", person(index), BODY)
        assert status == 201, body
        ids.append(str(body["id"]))
    for request_id in ids:  # each flow waits for the decision (its task token is stored)
        world.wait_for_task_token(request_id, timeout=60)
    return ids


def _approve_all_at_once(world: World, ids: list[str]) -> tuple[list[tuple[int, Any]], float]:
    """Every approver of every request, one thread each, released together; the answers and how long it took."""
    approvals = [(request_id, approver) for request_id in ids for approver in APPROVERS]
    start = threading.Barrier(len(approvals) + 1)
    answers: list[tuple[int, Any]] = []

    def post(request_id: str, approver: str) -> None:
        start.wait()
        answers.append(world.api("POST", f"/requests/{request_id}/approve", approver, {"comment": "ok"}))

    threads = [threading.Thread(target=post, args=approval) for approval in approvals]
    for thread in threads:
        thread.start()
    start.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return answers, time.perf_counter() - started


def _wait_for_flows(world: World, ids: list[str], timeout: float) -> list[str]:
    """Wait until every flow finished; the ids still running at the deadline (stuck)."""
    deadline = time.monotonic() + timeout
    running = list(ids)
    while running and time.monotonic() < deadline:
        running = [i for i in running if world.execution(i)["status"] == "RUNNING"]
        if running:
            time.sleep(0.5)
    return running


@dataclass
class Flows:
    """How the requests' executions went: their ends, the states they passed, the errors their steps raised."""

    ends: Counter[str]  # execution status -> count
    record_failure: list[str]  # request ids whose flow went through RecordFailure (a step failed)
    errors: Counter[str]  # "<state> <error>" of every failed task attempt, retried or not
    causes: list[str]  # the first few distinct causes, for the report

    @classmethod
    def of(cls, world: World, ids: list[str]) -> Flows:
        sfn: Any = world.session.client("stepfunctions")
        arn = world.stack.attributes["ApprovalStateMachine"]["Arn"].replace(":stateMachine:", ":execution:")
        ends: Counter[str] = Counter()
        record_failure: list[str] = []
        errors: Counter[str] = Counter()
        causes: list[str] = []
        for request_id in ids:
            execution = f"{arn}:{request_id}"
            ends[sfn.describe_execution(executionArn=execution)["status"]] += 1
            state = ""
            for event in sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]:
                entered = event.get("stateEnteredEventDetails")
                if entered:
                    state = entered["name"]
                    if state == "RecordFailure":
                        record_failure.append(request_id)
                failed = event.get("taskFailedEventDetails")
                if failed:
                    errors[f"{state} {failed.get('error')}"] += 1
                    cause = f"{request_id} {state}: {str(failed.get('cause'))[:300]}"
                    if len(causes) < 5 and failed.get("error") != "LockTimeoutError":
                        causes.append(cause)
        return cls(ends, record_failure, errors, causes)


def _scheduled(world: World, request_id: str) -> bool:
    try:
        world.schedule(request_id)
    except Exception:  # ResourceNotFoundException: no expiry schedule
        return False
    return True


def _audit_times(world: World) -> dict[tuple[str, str], int]:
    """(request id, action) -> the millisecond its audit record was made, for the role's request records."""
    times: dict[tuple[str, str], int] = {}
    cursor = None
    while True:
        page = world.deps.store.audit_events(role_arn=ROLE_ARN, cursor=cursor, limit=100)
        for event in page.items:
            if event.request_id and event.action in ("request.approved", "request.granted"):
                times[(event.request_id, event.action)] = ulid_ms(event.id)
        cursor = page.next
        if not cursor:
            return times


def _seconds(values: list[float]) -> tuple[float, float]:
    """p50 and p99 (nearest rank), or zeros when there is nothing to rank."""
    return (percentile(values, 50), percentile(values, 99)) if values else (0.0, 0.0)


@dataclass
class Outcome:
    """What one load run left behind, read after every flow finished."""

    requests: int
    statuses: dict[str, str]  # request id -> status
    named: set[str]  # request ids whose person the trust policy names
    stuck: list[str]  # flows still running at the deadline
    answers: Counter[str]  # the API's answers to the approvals: "200", or "<status> <code>"
    latencies: list[float]  # seconds from request.approved to request.granted, per request
    tally: Tally
    posting_seconds: float  # from the threads' release until the last approval was answered
    flows_seconds: float  # from the release until every flow finished
    trust_policy_chars: int
    guard_chars: int
    queue_clean: bool
    flows: Flows
    scheduled: int  # active requests with their expiry schedule

    @property
    def failed(self) -> int:
        return sum(1 for s in self.statuses.values() if s == "failed")

    @property
    def lock_timeouts(self) -> int:
        role_busy = sum(n for code, n in self.answers.items() if code.endswith("role_busy"))
        return max(len(self.tally.lock_timeouts), self.tally.lock_timeout_metrics) + role_busy

    @property
    def active_and_named(self) -> int:
        return sum(1 for i, s in self.statuses.items() if s == "active" and i in self.named)


def measure(requests: int, quick: bool) -> Outcome:
    with running_world(PARAMETERS) as world:
        _set_two_approval_rule(world)
        ids = _request_all(world, requests)
        persons = {request_id: person(index) for index, request_id in enumerate(ids)}
        with tallied() as tally:
            started = time.perf_counter()
            answers, posting = _approve_all_at_once(world, ids)
            stuck = _wait_for_flows(world, ids, FLOW_SECONDS[quick])
            flows_seconds = time.perf_counter() - started
        policy = world.trust_policy()
        guard = world.session_guard()
        times = _audit_times(world)
        queue = world.deps.store.sync_queue(ROLE_ARN)
        return Outcome(
            requests=requests,
            statuses={i: world.status(i) for i in ids},
            named={i for i in ids if grant_expiry_in(policy, persons[i]) is not None},
            stuck=stuck,
            answers=Counter(_answer(status, body) for status, body in answers),
            latencies=[
                (times[(i, "request.granted")] - times[(i, "request.approved")]) / 1000
                for i in ids
                if (i, "request.granted") in times and (i, "request.approved") in times
            ],
            tally=tally,
            posting_seconds=posting,
            flows_seconds=flows_seconds,
            trust_policy_chars=policy_size(policy),
            guard_chars=policy_size(guard) if guard else 0,
            queue_clean=queue.done >= queue.wanted and not queue.activate and queue.owner is None,
            flows=Flows.of(world, ids),
            scheduled=sum(1 for i in ids if world.status(i) == "active" and _scheduled(world, i)),
        )


def _answer(status: int, body: Any) -> str:
    if status == 200:
        return "200"
    code = body.get("error", {}).get("code") if isinstance(body, dict) else str(body)[:60]
    return f"{status} {code}"


def run(quick: bool) -> Section:
    requests = QUICK_REQUESTS if quick else FULL_REQUESTS
    approvals = requests * len(APPROVERS)
    name = f"{approvals} concurrent approvals on one role"
    workload = (
        f"{requests} requests by {requests} IAM users (2-character names) under required_approvals {len(APPROVERS)} "
        f"(approvers bob and dave, set through the API); all {approvals} approvals posted at once through the API "
        "(both approvers of every request, threads released together); API → Step Functions (moto's executor) → "
        "Grant → sync_role; TrustPolicyQuota 4096"
    )
    # Powertools prints a metrics batch to stdout once 100 values pile up in this one process (each Lambda
    # invocation would have flushed its own): keep the table on stdout readable.
    with redirect_stdout(sys.stderr):
        outcome = measure(requests, quick)
    tally, flows = outcome.tally, outcome.flows
    results = tally.results
    coalesced = sum(1 for r in results if r.coalesced)
    held = len(results) - coalesced
    grants = sum(tally.rounds)
    section = Section("load")
    section.add(
        f"{name}: failed",
        outcome.failed,
        "requests",
        goal="0",
        met=outcome.failed == 0,
        note=f"{workload}; statuses: {_counts(Counter(outcome.statuses.values()))}; executions: "
        f"{_counts(flows.ends)}, {len(flows.record_failure)} through RecordFailure"
        + (f"; {len(outcome.stuck)} flows still running after {FLOW_SECONDS[quick]:.0f} s" if outcome.stuck else ""),
    )
    section.add(
        f"{name}: lock timeouts",
        outcome.lock_timeouts,
        "timeouts",
        goal="0",
        met=outcome.lock_timeouts == 0,
        note=f"LockTimeoutError out of sync_role: {len(tally.lock_timeouts)}; LockTimeouts counted by lock waits: "
        f"{tally.lock_timeout_metrics}; API answers: {_counts(outcome.answers)}; failed step attempts: "
        f"{_counts(flows.errors) or 'none'}",
    )
    p50, p99 = _seconds(outcome.latencies)
    section.add(
        f"{name}: activation latency p50",
        round(p50, 3),
        "s",
        note=f"request.approved → request.granted (audit records' ms), {len(outcome.latencies)} requests",
    )
    section.add(
        f"{name}: activation latency p99",
        round(p99, 3),
        "s",
        note=f"max {max(outcome.latencies, default=0):.2f} s; all approvals answered in {outcome.posting_seconds:.1f} s, "
        f"every flow finished {outcome.flows_seconds:.1f} s after the release",
    )
    waits = [r.waited for r in results]
    p50, p99 = _seconds(waits)
    section.add(
        f"{name}: lock wait p50",
        round(p50, 3),
        "s",
        note=f"SyncResult.waited over {len(results)} sync_role calls: until the lock was held or a round served it",
    )
    section.add(f"{name}: lock wait p99", round(p99, 3), "s", note=f"max {max(waits, default=0):.2f} s")
    section.add(
        f"{name}: sync rounds",
        len(tally.rounds),
        "rounds",
        note=f"{grants} grants served by {len(tally.rounds)} rounds (up to {max(tally.rounds, default=0)} a round, "
        f"{median(tally.round_seconds) if tally.round_seconds else 0:.1f} s a round, median); {len(results)} "
        f"sync_role calls: {held} held the lock, {coalesced} served by another caller's round",
    )
    section.add(
        f"{name}: active and named in the trust policy",
        outcome.active_and_named,
        "requests",
        goal=f"= {outcome.requests}",
        met=outcome.active_and_named == outcome.scheduled == outcome.requests and outcome.queue_clean,
        note=f"{outcome.scheduled} with their expiry schedule; trust policy {outcome.trust_policy_chars} of 4096 "
        f"characters, session guard {outcome.guard_chars} of 10240; the role's sync queue "
        f"{'clean' if outcome.queue_clean else 'NOT clean'} at the end",
    )
    section.details = {
        "workload": workload,
        "requests": outcome.requests,
        "approvals": approvals,
        "statuses": dict(Counter(outcome.statuses.values())),
        "stuck_flows": outcome.stuck,
        "executions": dict(flows.ends),
        "through_record_failure": flows.record_failure,
        "failed_step_attempts": dict(flows.errors),
        "failed_step_causes": flows.causes,
        "active_with_expiry_schedule": outcome.scheduled,
        "api_answers": dict(outcome.answers),
        "activation_latency_seconds": sorted(round(s, 3) for s in outcome.latencies),
        "lock_wait_seconds": sorted(round(s, 3) for s in waits),
        "grants_per_round": tally.rounds,
        "round_seconds": [round(s, 2) for s in tally.round_seconds],
        "served_per_holder": [r.served for r in results if not r.coalesced],
        "sync_role_calls": len(results),
        "coalesced": coalesced,
        "lock_timeouts": tally.lock_timeouts,
        "lock_timeout_metrics": tally.lock_timeout_metrics,
        "other_sync_errors": tally.other_errors,
        "failed_rounds": tally.failed_rounds,
        "posting_seconds": round(outcome.posting_seconds, 1),
        "flows_seconds": round(outcome.flows_seconds, 1),
        "trust_policy_chars": outcome.trust_policy_chars,
        "session_guard_chars": outcome.guard_chars,
    }
    return section


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{key} {n}" for key, n in counter.most_common())
