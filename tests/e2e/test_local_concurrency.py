"""The local stack serves requests concurrently, as Lambda does: each request runs in a worker process of its
own for its duration, so a slow request does not hold up another, and requests never see each other's event."""

from __future__ import annotations

import json
import os
import signal
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from moto.core.responses import BaseResponse

from tests.e2e.drive import Answer, signed
from trustgate_local.polling import wait_until
from trustgate_local.server import LocalStack

pytestmark = pytest.mark.e2e

DEADLOCK_BREAKER_SECONDS = 30  # only ends a wait that would otherwise hang; the test asserts order, not time


def _body_of(response: BaseResponse) -> str:
    body = getattr(response, "body", "") or ""
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")
    return body if isinstance(body, str) else json.dumps(body, default=str)


@dataclass
class Gate:
    """DynamoDB calls that name `marker` wait until `release` is set; `entered` tells that one arrived."""

    marker: str = field(default_factory=lambda: f"slow-{uuid.uuid4().hex}")
    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    """A seam in moto, which runs in this process: it wraps moto's request dispatch outside the stack's own
    moto lock, so a held call holds up nobody else's calls."""
    held = Gate()
    original = BaseResponse.call_action

    def call_action(self: BaseResponse) -> Any:
        if getattr(self, "service_name", "") == "dynamodb" and held.marker in _body_of(self):
            held.entered.set()
            held.release.wait(DEADLOCK_BREAKER_SECONDS)
        return original(self)

    monkeypatch.setattr(BaseResponse, "call_action", call_action)
    try:
        yield held
    finally:
        held.release.set()


def test_a_slow_request_does_not_hold_up_another(local_stack: LocalStack, gate: Gate) -> None:
    marker = gate.marker
    events: list[str] = []
    answers: dict[str, Answer] = {}

    def slow_request() -> None:
        answers["slow"] = signed(local_stack, "requester", "GET", f"/requests/{marker}")
        events.append("slow request answered")

    # GIVEN a request whose function is stuck inside a DynamoDB call until released
    slow = threading.Thread(target=slow_request, name="slow-request")
    slow.start()
    assert gate.entered.wait(DEADLOCK_BREAKER_SECONDS), "the slow request never reached DynamoDB"
    events.append("slow request is inside its function")

    # WHEN another caller's request arrives meanwhile
    fast = signed(local_stack, "approver", "GET", f"/requests/fast-{uuid.uuid4().hex}")
    events.append("other request answered")
    gate.release.set()
    slow.join(DEADLOCK_BREAKER_SECONDS)

    # THEN it was answered while the slow one was still in its function, and the slow one finished afterwards
    assert events == ["slow request is inside its function", "other request answered", "slow request answered"]
    assert fast.status == 404, fast.body
    assert answers["slow"].status == 404, answers["slow"].body


def test_concurrent_callers_each_see_their_own_request(local_stack: LocalStack) -> None:
    # Powertools keeps the current event in a class attribute: two requests in one process would mix callers.
    created = signed(
        local_stack,
        "requester",
        "POST",
        "/requests",
        {"role": "PumpCustomerAccess", "duration": "PT1H", "justification": "concurrency: my own view"},
    )
    assert created.status == 201, created.body
    callers = ["requester", "approver", "approver2", "admin"] * 6

    def mine(profile: str) -> tuple[str, list[str]]:
        answer = signed(local_stack, profile, "GET", "/requests?mine=true&status=pending")
        assert answer.status == 200, answer.body
        return profile, [item["id"] for item in answer.body["items"]]

    with ThreadPoolExecutor(max_workers=len(callers)) as pool:
        results = list(pool.map(mine, callers))

    for profile, ids in results:
        assert ids == ([created.body["id"]] if profile == "requester" else []), profile
    stats = local_stack.workers.stats()
    assert stats["workers"] <= local_stack.workers.settings.max_workers


def test_a_worker_that_dies_is_replaced(local_stack: LocalStack) -> None:
    victim = local_stack.workers.pids()[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: _gone(victim), "the killed worker to exit", timeout=DEADLOCK_BREAKER_SECONDS)

    # An idle worker that died is passed over (and replaced when needed): no request is lost to it.
    answers = [signed(local_stack, "requester", "GET", "/requests?mine=true").status for _ in range(4)]

    assert answers == [200] * 4
    assert victim not in local_stack.workers.pids()


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] == "Z"  # exited, not yet reaped by the pool
    except OSError:
        return True
