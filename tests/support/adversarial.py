"""The adversarial corpus's one assertion: an attack is refused (4xx) and changes nothing.

"Nothing" is what IAM holds (the trust policy and the session guard) and what TrustGate stores (every
table item but the role locks, whose lease a refused call may take and give back), and the expiry
schedules. Each case in tests/adversarial calls `refused_unchanged` around the attack.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.support.aws import World

Call = Callable[[], tuple[int, Any]]


@dataclass(frozen=True)
class Snapshot:
    trust_policy: dict[str, Any]
    session_guard: dict[str, Any] | None
    items: tuple[str, ...]
    schedules: tuple[str, ...]


def snapshot(world: World) -> Snapshot:
    table = world.stack.refs["Table"]
    dynamodb = world.session.client("dynamodb")
    items: list[str] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            if item["pk"]["S"].startswith("LOCK#"):
                continue
            items.append(repr(sorted(item.items())))
    scheduler = world.session.client("scheduler")
    group = world.stack.refs["ExpiryScheduleGroup"]
    schedules = [s["Name"] for s in scheduler.list_schedules(GroupName=group).get("Schedules", [])]
    return Snapshot(world.trust_policy(), world.session_guard(), tuple(sorted(items)), tuple(sorted(schedules)))


def refused_unchanged(world: World, attack: Call, status: int | None = None, code: str | None = None) -> Any:
    """Run `attack`; assert it answered 4xx (the given status and error code, if named) and changed nothing.

    Returns the response body, so a case can also check what the message tells the caller.
    """
    before = snapshot(world)
    got, body = attack()
    assert 400 <= got < 500, (got, body)
    if status is not None:
        assert got == status, (got, body)
    if code is not None:
        assert isinstance(body, dict), body
        assert body.get("error", {}).get("code") == code, body
    after = snapshot(world)
    assert after.trust_policy == before.trust_policy, "the trust policy changed"
    assert after.session_guard == before.session_guard, "the session guard changed"
    assert after.schedules == before.schedules, "the expiry schedules changed"
    assert after.items == before.items, _difference(before.items, after.items)
    return body


def _difference(before: tuple[str, ...], after: tuple[str, ...]) -> str:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    return f"the stored state changed: added {added[:3]}, removed {removed[:3]}"
