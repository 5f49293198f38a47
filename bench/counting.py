"""Count every AWS call a boto3 session's clients make, with botocore's own event hooks (counted, not estimated).

`before-parameter-build` sees the call's API parameters (kept for replay and for sizing DynamoDB items),
`before-call` counts it, `after-call` keeps what a read returned (to size read units) and the time in the call.
Hooks must be attached before the session creates its clients: a client copies the session's hooks when made.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import boto3

# botocore's hyphenated service ids (as in event names) → the names boto3.client() takes.
CLIENT_NAMES = {"sfn": "stepfunctions", "eventbridge": "events"}


@dataclass
class Call:
    """One AWS API call as the code made it."""

    service: str  # boto3 client name: dynamodb, iam, stepfunctions, ...
    operation: str  # API name: GetItem, UpdateAssumeRolePolicy, ...
    params: dict[str, Any]
    response: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    started: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.service}.{self.operation}"


class CallRecorder:
    """Thread-safe record of the calls made through one session (the handlers' threads included)."""

    def __init__(self, keep_params: bool = True) -> None:
        self.keep_params = keep_params
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._session: boto3.Session | None = None

    def attach(self, session: boto3.Session) -> CallRecorder:
        events = session.events
        events.register("before-parameter-build.*.*", self._on_params, unique_id="bench-params")
        events.register("before-call.*.*", self._on_call, unique_id="bench-call")
        events.register("after-call.*.*", self._on_done, unique_id="bench-done")
        self._session = session
        return self

    def detach(self) -> None:
        if self._session is not None:
            events = self._session.events
            events.unregister("before-parameter-build.*.*", unique_id="bench-params")
            events.unregister("before-call.*.*", unique_id="bench-call")
            events.unregister("after-call.*.*", unique_id="bench-done")
            self._session = None

    def reset(self) -> list[Call]:
        """Forget the calls so far and return them."""
        with self._lock:
            calls, self.calls = self.calls, []
        return calls

    def snapshot(self) -> list[Call]:
        with self._lock:
            return list(self.calls)

    # -- hooks -----------------------------------------------------------------------------------

    def _on_params(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        service = model.service_model.service_id.hyphenize()
        kept = copy.deepcopy(params) if self.keep_params else {}
        context["bench_call"] = Call(CLIENT_NAMES.get(service, service), model.name, kept)

    def _on_call(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        call: Call | None = context.get("bench_call")
        if call is None:  # a client made before `attach`: still count it, without parameters
            service = model.service_model.service_id.hyphenize()
            call = Call(CLIENT_NAMES.get(service, service), model.name, {})
            context["bench_call"] = call
        call.started = time.perf_counter()
        with self._lock:
            self.calls.append(call)

    def _on_done(self, model: Any, context: dict[str, Any], parsed: dict[str, Any], **_: Any) -> None:
        call: Call | None = context.get("bench_call")
        if call is None:
            return
        call.seconds = time.perf_counter() - call.started
        if call.service == "dynamodb" and self.keep_params:
            # Only what sizing read units needs: the items a read returned.
            call.response = {k: parsed[k] for k in ("Item", "Items", "Responses") if k in parsed}


def per_service(calls: list[Call]) -> dict[str, int]:
    return dict(sorted(Counter(call.service for call in calls).items()))


def per_operation(calls: list[Call]) -> dict[str, int]:
    return dict(sorted(Counter(call.key for call in calls).items()))


def seconds_in_calls(calls: list[Call]) -> float:
    return sum(call.seconds for call in calls)


def repeated_reads(calls: list[Call]) -> dict[str, int]:
    """Reads made more than once with the same parameters in one sequence: round trips a cache would save."""
    seen: Counter[str] = Counter()
    for call in calls:
        if call.operation.startswith(("Get", "Query", "Describe", "List")):
            seen[f"{call.key} {_short(call.params)}"] += 1
    return {key: count for key, count in seen.items() if count > 1}


def _short(params: dict[str, Any]) -> str:
    for name in ("Key", "RoleName", "ExpressionAttributeValues", "taskToken", "Name"):
        if name in params:
            text = str(params[name])
            return text if len(text) < 90 else text[:87] + "..."
    return ""
