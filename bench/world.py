"""The moto world the in-process measures share: `trustgate_local.world.running_world()` (the real stack,
provisioned from template.yaml into moto, handlers hosted in-process; the tests run in it too), with every AWS
call the handlers make counted, every Lambda invocation timed, and a separate, uncounted session for the
bench's own polling."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

from bench.counting import CallRecorder
from trustgate.adapters import wiring
from trustgate.adapters.store import Store
from trustgate.core.settings import Settings
from trustgate_local import retention
from trustgate_local.polling import wait_until
from trustgate_local.world import World, running_world


@dataclass
class Invocation:
    function: str
    seconds: float


@dataclass
class BenchWorld:
    world: World
    recorder: CallRecorder
    observer: boto3.Session  # the bench's own calls go through this session, so they are never counted
    invocations: list[Invocation] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return self.world.deps.settings

    def observer_store(self) -> Store:
        return Store(self.observer.client("dynamodb"), self.settings.table_name)

    def wait_for(self, probe: Callable[[], Any], timeout: float, what: str) -> Any:
        # A short interval: this wait is part of what the latency measures time.
        return wait_until(probe, what, timeout, interval=0.005, error=TimeoutError)


@contextmanager
def bench_world() -> Iterator[BenchWorld]:
    """A running world whose handler session is counted from before its first client exists."""
    # The lifecycle section measures an auto-approved request too, which the deployer must allow.
    # The seeded grants' principals come from seven member accounts (bench/capacity.py `principal`): allow them,
    # or the reconciler would rightly end them as outside the deployment's accounts.
    accounts = ",".join(str(222222222222 + offset) for offset in range(7))
    # As the local stack runs moto: otherwise moto keeps a copy of the whole table for every transaction (its
    # instance tracker), and the warm measure's 1,000 requests outgrow the machine's memory (trustgate_local.retention).
    retention.bound_moto()
    try:
        with _world(accounts) as bench:
            yield bench
    finally:
        retention.unbound_moto()


@contextmanager
def _world(accounts: str) -> Iterator[BenchWorld]:
    with running_world({"AllowAutoApprove": "true", "AllowedAccountIds": f"{accounts},123456789012"}) as world:
        recorder = CallRecorder().attach(world.session)
        observer = boto3.Session(region_name=world.session.region_name)
        bench = BenchWorld(world, recorder, observer)

        def timed(function: str, seconds: float) -> None:
            bench.invocations.append(Invocation(function, seconds))

        world.host.on_invoked = timed  # every invocation: the API's, the state machine's, the schedules'
        try:
            yield bench
        finally:
            world.host.on_invoked = None
            recorder.detach()


@contextmanager
def rewired(bench: BenchWorld, **changes: Any) -> Iterator[wiring.Dependencies]:
    """Run with other settings (another state machine, other managed roles), then put the world's back."""
    saved = wiring.dependencies()
    deps = wiring.Dependencies(saved.settings.model_copy(update=changes), bench.world.session, saved.clock, saved.sleep)
    wiring.reset(deps)
    try:
        yield deps
    finally:
        wiring.reset(saved)
