"""What the local stack keeps, so that its memory stays flat however long it runs (docs/local.md).

It grew from ~350 MB to 1.9 GB over 6,000 API calls and stayed there. The cause was moto's instance tracker:
moto appends every model object it ever creates to a class-level list (`BaseModel.instances_tracked`, for its
/moto-api dashboard), and every DynamoDB TransactWriteItems first deep-copies the whole table (its rollback
copy), so each transaction pinned a copy of every item, for good: memory grew with transactions x table size.
While the local stack runs (`bound_moto`), moto tracks nothing, and a transaction backs up only the items it
names, not whole tables: the same rollback, without a transient copy of the table (and its time) per call.

What remains grows with use, so it is capped here, newest kept (the table's own items are TrustGate's data
and stay, as in AWS):
* the messages each SNS topic ever published (`Topic.sent_notifications`): a bounded deque per topic;
* finished Step Functions executions, with their history: the newest `finished_executions` per state
  machine (running ones always stay; AWS too forgets closed executions, after 90 days);
* the outbox (`outbox`) and the host's invocation log (`host.KEPT_INVOCATIONS`): bounded deques;
* the API's worker processes are replaced after `PoolSettings.recycle_after` invocations.
"""

from __future__ import annotations

import collections
import copy
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from moto.core.common_models import BaseModel
from moto.core.model_instances import model_data
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
from moto.sns.models import sns_backends
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from trustgate_local.host import moto_lock


@dataclass
class Limits:
    """The most the local stack keeps of each thing that would otherwise grow with every call."""

    notifications_per_topic: int = 200
    finished_executions: int = 200  # per state machine
    outbox: int = 1000


@dataclass(frozen=True)
class Kept:
    """How much is kept right now: the largest of each kind (what the limits bound)."""

    notifications_per_topic: int
    finished_executions: int
    running_executions: int
    tracked_models: int


# -- moto's instance tracker and its transactions' table copies ---------------------------------------

_tracking_new = BaseModel.__dict__["__new__"]
_original_transact = DynamoDBBackend.transact_write_items


def _untracked_new(cls: type[BaseModel], *args: Any, **kwargs: Any) -> BaseModel:
    return object.__new__(cls)


def bound_moto() -> None:
    """Stop moto from keeping every model object it creates (dropping what it kept so far), and let its
    transactions back up the items they name rather than whole tables."""
    BaseModel.__new__ = staticmethod(_untracked_new)  # type: ignore[method-assign]
    for models in model_data.values():
        for model in models.values():
            model.instances_tracked = []  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = _transact_with_item_backups  # type: ignore[method-assign]


def unbound_moto() -> None:
    """Put moto back as it was (for whatever uses moto in this process after the local stack)."""
    BaseModel.__new__ = _tracking_new  # type: ignore[method-assign]
    DynamoDBBackend.transact_write_items = _original_transact  # type: ignore[method-assign]


_Backup = tuple[Table, DynamoType, DynamoType | None, Item | None]  # table, hash key, range key, item before


def _transact_with_item_backups(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """moto's TransactWriteItems, rolled back from copies of the items it names instead of copies of the tables.

    moto deep-copies each table before the transaction and, if it fails, puts the copies in place of the tables.
    Here the "copy" is the table itself, and the named items are put back as they were. It runs inside the
    stack's moto lock (`host.moto_lock`), so no other call sees the table meanwhile.
    """
    try:
        backups = _item_backups(self, transact_items)
    except Exception:  # a malformed transaction: moto's own code refuses it, with its own message
        return _original_transact(self, transact_items)
    own_deepcopy = Table.__dict__.get("__deepcopy__")  # none in moto 5.2
    Table.__deepcopy__ = _the_table_itself  # type: ignore[attr-defined]
    try:
        _original_transact(self, transact_items)
    except BaseException:
        for table, hash_key, range_key, item in reversed(backups):
            if item is None:
                table.delete_item(hash_key, range_key)
            elif range_key is not None:
                table.items[hash_key][range_key] = item
            else:
                table.items[hash_key] = item  # type: ignore[assignment]
        raise
    finally:
        if own_deepcopy is None:
            del Table.__deepcopy__  # type: ignore[attr-defined]
        else:
            Table.__deepcopy__ = own_deepcopy  # type: ignore[attr-defined]


def _the_table_itself(table: Table, memo: dict[int, Any]) -> Table:
    return table


def _item_backups(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> list[_Backup]:
    """A deep copy of each item the transaction names, as it is now (None: the item does not exist)."""
    backups: list[_Backup] = []
    for entry in transact_items:
        ((operation, request),) = entry.items()
        table = backend.tables.get(request.get("TableName"))
        if table is None:
            continue
        if operation == "Put":
            names = [table.hash_key_attr, *([table.range_key_attr] if table.range_key_attr else [])]
            key = {name: request["Item"][name] for name in names}
        else:
            key = request["Key"]
        hash_key, range_key = backend.get_keys_value(table, key)
        backups.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
    return backups


def tracked_models() -> int:
    """How many model objects moto holds in its tracker (0 while the local stack runs)."""
    lists: list[list[Any]] = [
        getattr(model, "instances_tracked", []) for m in model_data.values() for model in m.values()
    ]
    return sum(len(tracked) for tracked in lists)


# -- pruning ------------------------------------------------------------------------------------------


def _backends(backends: Any) -> Iterator[Any]:
    for account in list(backends.values()):
        yield from list(account.values())


def prune(limits: Limits) -> Kept:
    """Trim moto's SNS messages and finished executions to `limits`; returns what is kept afterwards."""
    most_notifications = finished_most = running = 0
    with moto_lock:  # moto's request handling holds it too: nothing changes these lists meanwhile
        for sns in _backends(sns_backends):
            for topic in sns.topics.values():
                sent = topic.sent_notifications
                if not isinstance(sent, collections.deque) or sent.maxlen != limits.notifications_per_topic:
                    topic.sent_notifications = sent = collections.deque(sent, maxlen=limits.notifications_per_topic)
                most_notifications = max(most_notifications, len(sent))
        for sfn in _backends(stepfunctions_parser_backends):
            for machine in sfn.state_machines:
                finished = [e for e in machine.executions if e.stop_date is not None]
                if len(finished) > limits.finished_executions:
                    finished.sort(key=lambda e: e.stop_date)
                    dropped = {id(e) for e in finished[: len(finished) - limits.finished_executions]}
                    machine.executions[:] = [e for e in machine.executions if id(e) not in dropped]
                finished_most = max(finished_most, min(len(finished), limits.finished_executions))
                running = max(running, sum(1 for e in machine.executions if e.stop_date is None))
    return Kept(most_notifications, finished_most, running, tracked_models())


class Janitor:
    """Prunes every `interval` seconds in a thread of its own."""

    def __init__(self, limits: Limits, interval: float = 2.0) -> None:
        self.limits = limits
        self.interval = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="trustgate-janitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def prune(self) -> Kept:
        return prune(self.limits)

    def _loop(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.prune()
            except Exception as error:  # keep pruning: a moto internal that moved must not stop the stack
                if not self._stopping.is_set():
                    print(f"janitor: could not prune moto's state: {error}", flush=True)
