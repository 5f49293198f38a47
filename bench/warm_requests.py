"""Measure 2: warm request cost of `POST /requests` and `GET /requests` through the real API handler
(Powertools resolver, validation, the service, the adapters) in-process against moto, against the same AWS
calls made directly with boto3 against the same moto: the floor a handler cannot beat.

Each handler call's AWS calls are recorded (botocore hooks) and replayed raw right after it, so both sides see
the same table size and the same background load; ids the handler generated (ULIDs its writes carry) are
replaced by fresh ones in the replay, so conditional writes and `StartExecution` behave as they did for the
handler, while the items it read (an index names them, `BatchGetItem` fetches them) are read again as they are.
`STATE_MACHINE_ARN` points at a one-state (`Succeed`) machine during this measure: `StartExecution` is still a
real call, but the approval flow's Lambda steps do not run in the background and compete for the CPU.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from botocore import xform_name
from botocore.exceptions import ClientError

from bench.counting import Call, per_operation
from bench.results import Section, median, percentile
from bench.world import BenchWorld, rewired
from trustgate_local.world import ALICE

GOAL_RATIO = 1.25
ULID = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{26}\b")
BODY = {"role": "PumpCustomerAccess", "duration": "PT1H", "justification": "rotate the CloudTrail bucket policy"}
PAGE = 50  # GET /requests' default page size
QUIET_MACHINE = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
READS = {"GetItem", "Query", "BatchGetItem", "GetRole", "GetRolePolicy", "ListRolePolicies"}


def _renamed(value: Any, mapping: dict[str, str]) -> Any:
    if isinstance(value, str):
        return ULID.sub(lambda m: mapping.setdefault(m.group(0), _fresh_ulid(m.group(0))), value)
    if isinstance(value, dict):
        return {k: _renamed(v, mapping) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, mapping) for v in value]
    return value


def _fresh_ulid(like: str) -> str:
    """Same time prefix (10 characters), fresh randomness: sorts where the original sorted."""
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    return like[:10] + "".join(secrets.choice(alphabet) for _ in range(16))


class Replayer:
    """Makes recorded calls again, directly, with clients configured as the handlers' are."""

    def __init__(self, client_for: Callable[[str], Any]) -> None:
        self.client_for = client_for
        self.clients: dict[str, Any] = {}
        self.errors: list[str] = []

    def prepare(self, calls: list[Call]) -> list[tuple[Callable[..., Any], dict[str, Any]]]:
        """Bind each call to its client method with renamed ids (outside the timed part). Only ids the handler
        made are renamed (those its writes carry): ids it read (the requests an index named, then fetched) stay,
        so the replay reads the same items."""
        made = {m for c in calls if c.operation not in READS for m in ULID.findall(json.dumps(c.params, default=str))}
        mapping: dict[str, str] = {
            ulid: ulid for c in calls for ulid in ULID.findall(json.dumps(c.params, default=str))
        }
        mapping |= {ulid: _fresh_ulid(ulid) for ulid in made}
        bound = []
        for call in calls:
            if call.service not in self.clients:
                self.clients[call.service] = self.client_for(call.service)
            method = getattr(self.clients[call.service], xform_name(call.operation))
            bound.append((method, _own_markers(_renamed(call.params, mapping))))
        return bound

    def run(self, bound: list[tuple[Callable[..., Any], dict[str, Any]]]) -> None:
        for method, params in bound:
            try:
                method(**params)
            except ClientError as error:  # the handler met (and handled) the same answer; counted to show it
                self.errors.append(error.response["Error"]["Code"])


def _own_markers(params: dict[str, Any]) -> dict[str, Any]:
    """The replay's own open-request marker (`OPEN#<role>#<person>` names no id to rename): with the handler's
    marker in place, the replay's transaction would fail where the handler's succeeded, and moto keeps a copy of
    the whole table for every transaction it rolls back."""
    text = json.dumps(params)
    return dict(json.loads(re.sub(r'"(OPEN#[^"]*)"', r'"\1#replay"', text))) if '"OPEN#' in text else params


def without_repeated_reads(calls: list[Call]) -> list[Call]:
    """Drop a read (GetItem, Query, GetRole) identical to one made earlier in the same request."""
    seen: set[str] = set()
    kept = []
    for call in calls:
        if call.operation in ("GetItem", "Query", "GetRole"):
            key = call.key + json.dumps(call.params, sort_keys=True, default=str)
            if key in seen:
                continue
            seen.add(key)
        kept.append(call)
    return kept


def _written_keys(params_list: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keys of the items a sequence of DynamoDB calls put (plain or in a transaction), each once: the replay puts
    some of the same items again (the person's open-request marker)."""
    keys: dict[str, dict[str, Any]] = {}
    for params in params_list:
        items = [params["Item"]] if "Item" in params else []
        items += [entry["Put"]["Item"] for entry in params.get("TransactItems", []) if "Put" in entry]
        for item in items:
            keys.setdefault(json.dumps([item["pk"], item["sk"]], sort_keys=True), {"pk": item["pk"], "sk": item["sk"]})
    return list(keys.values())


class Cleaner:
    """Deletes what a timed request wrote, between samples (untimed, uncounted), so every sample meets the same
    table: DynamoDB's cost per query does not grow with the table, but moto's walk over all items does."""

    def __init__(self, bench: BenchWorld) -> None:
        self.client: Any = bench.observer.client("dynamodb")
        self.table = bench.settings.table_name

    def remove(self, params_list: list[dict[str, Any]]) -> None:
        keys = _written_keys(params_list)
        for start in range(0, len(keys), 25):
            chunk = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
            self.client.batch_write_item(RequestItems={self.table: chunk})


def _measure(
    bench: BenchWorld,
    replayer: Replayer,
    count: int,
    call: Callable[[], tuple[int, Any]],
    expected: int,
    cleaner: Cleaner | None = None,
) -> dict[str, Any]:
    handler_seconds: list[float] = []
    raw_seconds: list[float] = []
    unique_seconds: list[float] = []
    operations: list[str] = []
    calls_per_request: set[int] = set()
    for _ in range(count):
        bench.recorder.reset()
        started = time.perf_counter()
        status, body = call()
        handler_seconds.append(time.perf_counter() - started)
        assert status == expected, body
        calls = bench.recorder.reset()
        calls_per_request.add(len(calls))
        operations = [c.key for c in calls]
        bound = replayer.prepare(calls)
        written = [c.params for c in calls if c.service == "dynamodb"] + [p for _, p in bound]
        started = time.perf_counter()
        replayer.run(bound)
        raw_seconds.append(time.perf_counter() - started)
        # What-if: the same sequence without reads that repeat an earlier identical read (a per-invocation cache).
        unique_calls = without_repeated_reads(calls)
        if len(unique_calls) == len(calls):
            unique_seconds.append(raw_seconds[-1])
        else:
            unique = replayer.prepare(unique_calls)
            written += [p for _, p in unique]
            started = time.perf_counter()
            replayer.run(unique)
            unique_seconds.append(time.perf_counter() - started)
        bench.recorder.reset()
        if cleaner is not None:
            cleaner.remove(written)
    return {
        "handler_ms": handler_seconds,
        "raw_ms": raw_seconds,
        "unique_ms": unique_seconds,
        "operations": operations,
        "calls_per_request": sorted(calls_per_request),
        "per_operation": per_operation([Call(o.split(".")[0], o.split(".")[1], {}) for o in operations]),
    }


def _post_and_cancel(world: Any) -> tuple[int, Any]:
    """A warm-up POST that leaves history, not an open request: a person may hold one open request per role."""
    status, body = world.api("POST", "/requests", ALICE, BODY)
    if status == 201:
        world.api("POST", f"/requests/{body['id']}/cancel", ALICE)
    return status, body


def run(bench: BenchWorld, quick: bool) -> Section:
    section = Section("warm requests")
    count = 20 if quick else 500
    warmup = 3 if quick else 20
    sfn = bench.observer.client("stepfunctions")
    role = f"arn:aws:iam::{bench.world.stack.account}:role/bench-quiet"  # moto checks the form only
    quiet = sfn.create_state_machine(name="bench-quiet", definition=json.dumps(QUIET_MACHINE), roleArn=role)[
        "stateMachineArn"
    ]
    with rewired(bench, state_machine_arn=quiet) as deps:
        replayer = Replayer(deps.client)
        world = bench.world
        post: Callable[[], tuple[int, Any]] = lambda: world.api("POST", "/requests", ALICE, BODY)  # noqa: E731
        get: Callable[[], tuple[int, Any]] = lambda: world.api("GET", "/requests", ALICE)  # noqa: E731
        # Warm clients, caches and code paths, as after a cold start; the POSTs also give alice a full page of
        # history (50) for GET. GET runs before the POST loop: moto answers an index query by walking the whole
        # table, and the POST loop (with its replays) triples the table; both sides pay that alike, but slowly.
        _measure(bench, replayer, warmup if quick else max(warmup, PAGE), lambda: _post_and_cancel(world), 201)
        _measure(bench, replayer, warmup, get, 200)
        cleaner = Cleaner(bench)
        for name, request, expected in (("GET /requests", get, 200), ("POST /requests", post, 201)):
            result = _measure(bench, replayer, count, request, expected, cleaner)
            handler, raw = result["handler_ms"], result["raw_ms"]
            is_post = name.startswith("POST")
            section.add(
                f"{name} median",
                round(median(handler) * 1000, 2),
                "ms",
                baseline=round(median(raw) * 1000, 2),
                baseline_label="same AWS calls, raw boto3",
                goal=f"<= {GOAL_RATIO}x" if is_post else "",
                met=(median(handler) / median(raw) <= GOAL_RATIO) if is_post else None,
                note=f"{count} calls; {result['calls_per_request']} AWS calls each",
            )
            section.add(
                f"{name} p99",
                round(percentile(handler, 99) * 1000, 2),
                "ms",
                baseline=round(percentile(raw, 99) * 1000, 2),
                baseline_label="same AWS calls, raw boto3",
            )
            section.details[name] = {
                "calls": count,
                "aws_calls_per_request": result["calls_per_request"],
                "operations_in_order": result["operations"],
                "per_operation": result["per_operation"],
                "handler_overhead_ms_median": round((median(handler) - median(raw)) * 1000, 2),
                "raw_without_repeated_reads_ms_median": round(median(result["unique_ms"]) * 1000, 2),
                "raw_replay_errors": sorted(set(replayer.errors)),
            }
    section.details["method"] = (
        "handler timed around World.api (API Gateway event → lambda_handler → response); raw timed around the "
        "replay of that request's own recorded calls; Powertools tracing and metrics disabled as in the tests"
    )
    return section
