"""The moto world tests run in: `trustgate_local.world` (the bench runs in it too), and the sample events."""

from __future__ import annotations

from pathlib import Path

from trustgate_local.world import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    ERIN,
    MALLORY,
    MANAGEMENT,
    MEMBER,
    ORG_ID,
    PARAMETERS,
    ROLE_ARN,
    ROLE_NAME,
    VENDOR_TRUST,
    World,
    api_event,
    running_world,
    wait_for,
)

EVENTS = Path(__file__).resolve().parents[2] / "events"

__all__ = [
    "ALICE",
    "BOB",
    "CAROL",
    "DAVE",
    "ERIN",
    "EVENTS",
    "MALLORY",
    "MANAGEMENT",
    "MEMBER",
    "ORG_ID",
    "PARAMETERS",
    "ROLE_ARN",
    "ROLE_NAME",
    "VENDOR_TRUST",
    "World",
    "api_event",
    "running_world",
    "wait_for",
]
