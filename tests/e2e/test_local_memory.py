"""The local stack's memory stays bounded however many calls it serves (docs/local.md).

Checked structurally, not by RSS: after a few hundred calls through the gateway, with small caps set on the
running stack, every kind of state that grows with use holds no more than its cap, moto pins no copies of
the table, and the API's workers were recycled.
"""

from __future__ import annotations

import gc
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.table import Table

from trustgate_local.host import KEPT_INVOCATIONS, moto_lock
from trustgate_local.retention import Limits
from trustgate_local.server import LocalStack
from trustgate_local.soak import Driver

pytestmark = pytest.mark.e2e

CALLS = 300
CAPS = Limits(notifications_per_topic=5, finished_executions=3, outbox=10)
RECYCLE_AFTER = 25


@pytest.fixture
def small_caps(local_stack: LocalStack) -> Iterator[LocalStack]:
    """The running stack with small caps (so a few hundred calls exceed them), put back afterwards."""
    saved = (local_stack.janitor.limits, local_stack.outbox.keep, local_stack.workers.settings)
    local_stack.janitor.limits = CAPS
    local_stack.outbox.keep = CAPS.outbox
    local_stack.workers.settings = replace(local_stack.workers.settings, recycle_after=RECYCLE_AFTER)
    try:
        yield local_stack
    finally:
        local_stack.janitor.limits, local_stack.outbox.keep, local_stack.workers.settings = saved


def _table_copies() -> int:
    """moto Table objects alive beyond the tables moto serves: copies something still holds on to."""
    with moto_lock:  # no AWS call (and so no transaction's rollback copy) is in progress meanwhile
        gc.collect()
        served = {id(t) for account in dynamodb_backends.values() for b in account.values() for t in b.tables.values()}
        return sum(1 for o in gc.get_objects() if isinstance(o, Table) and id(o) not in served)


def test_what_the_stack_keeps_stays_within_its_caps(small_caps: LocalStack) -> None:
    local = small_caps
    retired_before = local.workers.stats()["retired"]
    driver = Driver(local)
    grants = 0
    most_in_outbox = 0
    while driver.calls < CALLS:
        driver.one_grant()  # ask, approve, activate, list, revoke: DynamoDB transactions, executions, messages
        grants += 1
        most_in_outbox = max(most_in_outbox, len(local.outbox.items()))

    kept = local.janitor.prune()

    assert grants > CAPS.finished_executions  # more finished than are kept, so the cap did bind
    assert kept.finished_executions <= CAPS.finished_executions
    assert kept.notifications_per_topic <= CAPS.notifications_per_topic
    assert most_in_outbox <= CAPS.outbox
    assert len(local.host.invocations) <= KEPT_INVOCATIONS
    # The leak itself: moto kept every object it made, including each transaction's copy of the whole table.
    assert kept.tracked_models == 0
    assert _table_copies() == 0
    # Workers are replaced after RECYCLE_AFTER invocations, as Lambda recycles environments (each live worker
    # has served fewer than RECYCLE_AFTER), and never more run at once than the pool allows.
    stats = local.workers.stats()
    assert stats["retired"] - retired_before >= (driver.calls - stats["workers"] * RECYCLE_AFTER) // RECYCLE_AFTER
    assert stats["workers"] <= local.workers.settings.max_workers


@pytest.fixture
def scratch_table(local_stack: LocalStack) -> Iterator[tuple[Any, str]]:
    """A table of its own in the stack's moto (TrustGate's table is left alone), deleted afterwards."""
    dynamodb = local_stack.session.client("dynamodb", endpoint_url=local_stack.aws_endpoint)
    name = f"scratch-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        yield dynamodb, name
    finally:
        dynamodb.delete_table(TableName=name)


def test_a_failed_transaction_leaves_every_item_as_it_was(scratch_table: tuple[Any, str]) -> None:
    # The stack backs a transaction up item by item, not by copying the table (see retention): same rollback.
    dynamodb, table = scratch_table

    def key(pk: str) -> dict[str, Any]:
        return {"pk": {"S": pk}, "sk": {"S": "x"}}

    def value(pk: str) -> str | None:
        item = dynamodb.get_item(TableName=table, Key=key(pk), ConsistentRead=True).get("Item")
        return item["v"]["S"] if item else None

    def update(pk: str, to: str) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": table,
                "Key": key(pk),
                "UpdateExpression": "SET v = :v",
                "ExpressionAttributeValues": {":v": {"S": to}},
            }
        }

    dynamodb.put_item(TableName=table, Item={**key("kept"), "v": {"S": "before"}})
    dynamodb.put_item(TableName=table, Item={**key("gone"), "v": {"S": "before"}})
    condition_fails = {
        "ConditionCheck": {"TableName": table, "Key": key("missing"), "ConditionExpression": "attribute_exists(pk)"}
    }

    # WHEN a transaction changes, adds and deletes items, then fails its last condition
    with pytest.raises(ClientError) as refused:
        dynamodb.transact_write_items(
            TransactItems=[
                update("kept", "after"),
                {"Put": {"TableName": table, "Item": {**key("added"), "v": {"S": "after"}}}},
                {"Delete": {"TableName": table, "Key": key("gone")}},
                condition_fails,
            ]
        )
    # THEN nothing of it remains; and two operations on one item are refused with nothing changed either
    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert (value("kept"), value("added"), value("gone")) == ("before", None, "before")
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(TransactItems=[update("twice", "1"), update("twice", "2")])
    assert value("twice") is None

    # AND a transaction that succeeds applies all of it
    dynamodb.transact_write_items(
        TransactItems=[update("kept", "after"), {"Delete": {"TableName": table, "Key": key("gone")}}]
    )
    assert (value("kept"), value("gone")) == ("after", None)
    assert _table_copies() == 0
