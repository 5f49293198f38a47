"""The table's indexes as issue 14 left them: keys only (and `actor`), so a query finds items and the table gives
them as they are now; and `ByKind` sharded, so no one partition key takes every write, its listings merged."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.support.aws import ALICE, CAROL, DAVE, ROLE_ARN, World
from tests.support.flows import granted, request_access
from trustgate.adapters.store import KIND_SHARDS, MAX_FILTERED_READS, audit_item, request_item
from trustgate.core.ids import new_id
from trustgate.core.models import AuditEvent, RequestStatus

pytestmark = pytest.mark.functional


def table(world: World) -> Any:
    return world.session.client("dynamodb")


def describe_indexes(world: World) -> dict[str, dict[str, Any]]:
    description = table(world).describe_table(TableName=world.deps.settings.table_name)["Table"]
    return {index["IndexName"]: index["Projection"] for index in description["GlobalSecondaryIndexes"]}


def audit_pages(world: World, limit: int, **query: str) -> list[str]:
    """Every event id GET /audit lists, page by page, in the order listed."""
    ids: list[str] = []
    cursor = None
    for _ in range(100):
        status, page = world.api(
            "GET", "/audit", CAROL, query={"limit": str(limit), **query, **({"next": cursor} if cursor else {})}
        )
        assert status == 200, page
        ids += [event["id"] for event in page["items"]]
        cursor = page.get("next")
        if not cursor:
            return ids
    raise AssertionError("the listing never ended")


def test_the_indexes_project_keys_only_and_actor_where_audit_listings_filter_on_it(world: World) -> None:
    assert describe_indexes(world) == {
        "ByRole": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["actor"]},
        "ByPrincipal": {"ProjectionType": "KEYS_ONLY"},
        "ByStatus": {"ProjectionType": "KEYS_ONLY"},
        "ByKind": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["actor"]},
        "ByReview": {"ProjectionType": "KEYS_ONLY"},
    }
    # What a listing shows is the item itself, not the few attributes the index holds.
    request = request_access(world)
    status, page = world.api("GET", "/requests", ALICE)
    assert status == 200, page
    (listed,) = page["items"]
    assert (listed["id"], listed["justification"], listed["role_arn"]) == (
        request["id"],
        request["justification"],
        ROLE_ARN,
    )


def test_a_grant_the_index_still_shows_active_is_read_as_it_is_now(world: World) -> None:
    """DynamoDB's indexes are eventually consistent: a grant just ended may still sit under `active#` there. Every
    sync reads the table, so it never renders an ended grant back in."""
    grant = world.deps.store.get_request(granted(world)["id"])
    ended = grant.model_copy(update={"status": RequestStatus.EXPIRED})
    stale_index = {**request_item(ended), "gsi1sk": request_item(grant)["gsi1sk"]}  # the index as it lags
    table(world).put_item(TableName=world.deps.settings.table_name, Item=stale_index)
    assert world.deps.store.active_grants(ROLE_ARN) == []
    assert world.deps.store.requests_by_role(ROLE_ARN, RequestStatus.ACTIVE).items[0].status == RequestStatus.EXPIRED


def test_the_whole_audit_trail_is_listed_newest_first_across_every_shard(world: World) -> None:
    store = world.deps.store
    before = audit_pages(world, 50)
    written: list[AuditEvent] = []
    for n in range(23):
        world.advance(timedelta(seconds=7))
        now = world.clock.now()
        actor = ALICE if n % 3 else CAROL
        event = AuditEvent(id=new_id(now), at=now, actor=actor, action="test.event", role_arn=ROLE_ARN)
        store.put_audit(event)
        written.append(event)
    assert len({audit_item(e)["gsi4pk"]["S"] for e in written}) == KIND_SHARDS  # the ids spread over every shard

    newest_first = [e.id for e in reversed(written)]
    for limit in (1, 4, 10, 200):
        listed = audit_pages(world, limit)
        assert listed == newest_first + before, limit
    # A filter on actor (projected into the index) and a time window hold across the shards too.
    by_carol = [e.id for e in reversed(written) if e.actor == CAROL]
    assert audit_pages(world, 3, actor=CAROL) == by_carol + [i for i in before if store_actor(world, i) == CAROL]
    since = written[10].at.isoformat().replace("+00:00", "Z")
    until = written[19].at.isoformat().replace("+00:00", "Z")
    assert audit_pages(world, 4, since=since, until=until) == [e.id for e in reversed(written[10:20])]


def test_a_filter_that_matches_little_reads_a_bounded_amount_per_call_and_still_lists_everything(
    world: World,
) -> None:
    """An actor with two events behind a hundred of someone else's: each call reads each shard at most a few
    times and answers a short page with `next`; following `next` finds both, newest first."""
    store = world.deps.store
    rare: list[str] = []
    for n in range(102):
        world.advance(timedelta(seconds=3))
        now = world.clock.now()
        event = AuditEvent(id=new_id(now), at=now, actor=DAVE if n in (0, 1) else CAROL, action="test.event")
        store.put_audit(event)
        if event.actor == DAVE:
            rare.insert(0, event.id)
    queries: list[int] = []
    client = store.client

    def count(**_: Any) -> None:
        queries[-1] += 1

    client.meta.events.register("before-call.dynamodb.Query", count)
    try:
        listed: list[str] = []
        cursor = None
        for _ in range(60):
            queries.append(0)
            query = {"actor": DAVE, "limit": "1", **({"next": cursor} if cursor else {})}
            status, page = world.api("GET", "/audit", CAROL, query=query)
            assert status == 200, page
            listed += [e["id"] for e in page["items"]]
            cursor = page.get("next")
            if not cursor:
                break
    finally:
        client.meta.events.unregister("before-call.dynamodb.Query", count)
    assert listed == rare
    assert max(queries) <= KIND_SHARDS * MAX_FILTERED_READS
    assert len(queries) > 2  # some calls ended short, at what they could vouch for


def store_actor(world: World, event_id: str) -> str:
    return next(e.actor for e in world.deps.store.audit_events(limit=200).items if e.id == event_id)


def test_a_cursor_of_the_requests_listing_is_refused_by_the_audit_listing(world: World) -> None:
    for _ in range(3):
        request_access(world)
        world.api("POST", f"/requests/{world.deps.store.all_requests().items[0].id}/cancel", ALICE)
    page = world.deps.store.all_requests(limit=1)
    assert page.next is not None
    status, answer = world.api("GET", "/audit", CAROL, query={"next": page.next})
    assert (status, answer["error"]["code"]) == (400, "invalid_cursor")
    assert "another listing" in answer["error"]["message"]
