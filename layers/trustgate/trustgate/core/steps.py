"""Payloads the state machine hands to its tasks (validated at the edge, like API bodies)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class RequestStep(BaseModel):
    request_id: str = Field(min_length=1, max_length=80)


class WaitStep(RequestStep):
    task_token: str = Field(min_length=1)


class FinalizeStep(RequestStep):
    outcome: Literal["denied", "timed_out", "failed", "cancelled"]
    error: dict[str, Any] | None = None


class ExpiryStep(RequestStep):
    """The scheduler's input: end the grant, or (reminder) tell its requester it ends soon."""

    reminder: bool = False
