"""Shared fixtures: `world` is a provisioned TrustGate in moto (see tests/support/aws.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.aws import World, running_world
from trustgate.adapters import observability
from trustgate.core.models import AuditEvent


@pytest.fixture
def world() -> Iterator[World]:
    with running_world() as running:
        yield running


@pytest.fixture
def published(world: World, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Detail types TrustGate puts on EventBridge from now on."""
    sent: list[str] = []
    original = world.deps.events.publish

    def publish(event: AuditEvent) -> None:
        sent.append(f"trustgate.{event.action}")
        original(event)

    monkeypatch.setattr(world.deps.events, "publish", publish)
    return sent


@pytest.fixture
def metrics_added(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the Powertools metrics added from now on (metrics are not published in tests)."""
    added: list[str] = []
    original = observability.metrics.add_metric

    def add_metric(name: str, **kwargs: Any) -> None:
        added.append(name)
        original(name=name, **kwargs)

    monkeypatch.setattr(observability.metrics, "add_metric", add_metric)
    return added
