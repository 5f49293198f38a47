"""Shared fixtures: `world` is a provisioned TrustGate in moto (see tests/support/aws.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.aws import World, running_world


@pytest.fixture
def world() -> Iterator[World]:
    with running_world() as running:
        yield running
