"""DynamoDB request units of counted calls, by DynamoDB's published sizing rules.

The calls are counted; the units are derived from them: an item's size is the UTF-8 length of its attribute
names and values; a write costs 1 WRU per KB (2 inside a transaction) on the table plus 1 per KB in every
global secondary index holding the item (ALL projection: the whole item; a changed index key is a delete and
a put); a strongly consistent read 1 RRU per 4 KB, an eventually consistent one (every index query) half.
Items are followed through the sequence (puts, SET/REMOVE updates, deletes) so an update is sized by the whole
item it leaves behind, which is what DynamoDB bills.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bench.counting import Call

KB = 1024


@dataclass(frozen=True)
class Index:
    name: str
    keys: tuple[str, ...]
    projection: str = "ALL"  # ALL, KEYS_ONLY or INCLUDE
    included: tuple[str, ...] = ()

    def projected(self, item: dict[str, Any]) -> dict[str, Any]:
        """What the index holds of an item: the table's and the index's keys, plus what it projects."""
        if self.projection == "ALL":
            return item
        kept = {"pk", "sk", *self.keys, *self.included}
        return {k: v for k, v in item.items() if k in kept}


@dataclass
class Units:
    read: float = 0.0
    write: float = 0.0
    index_write: float = 0.0
    by_operation: dict[str, float] = field(default_factory=dict)

    @property
    def total_write(self) -> float:
        return self.write + self.index_write


def attribute_size(value: dict[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind in ("S",):
        return len(inner.encode())
    if kind == "N":
        return (len(str(inner).lstrip("-").replace(".", "")) + 1) // 2 + 1
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(attribute_size(v) + 1 for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + attribute_size(v) + 1 for k, v in inner.items())
    if kind in ("SS", "NS", "BS"):
        return sum(attribute_size({kind[0]: v}) for v in inner)
    return 0


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def _key_of(key: dict[str, Any]) -> tuple[str, str]:
    return (str(key.get("pk")), str(key.get("sk")))


_CLAUSE = re.compile(r"\b(SET|REMOVE|ADD|DELETE)\b")


def apply_update(item: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The item after `UpdateExpression` (SET a = :v and REMOVE a, the forms TrustGate writes)."""
    names = params.get("ExpressionAttributeNames", {})
    values = params.get("ExpressionAttributeValues", {})
    updated = {**item, **params["Key"]}
    parts = _CLAUSE.split(params.get("UpdateExpression", ""))
    for clause, body in zip(parts[1::2], parts[2::2], strict=True):
        for assignment in filter(None, (a.strip() for a in body.split(","))):
            if clause == "SET" and "=" in assignment:
                target, source = (s.strip() for s in assignment.split("=", 1))
                if source in values:
                    updated[names.get(target, target)] = values[source]
            elif clause == "REMOVE":
                updated.pop(names.get(assignment, assignment), None)
    return updated


class Sizer:
    """Follows items through a call sequence and totals the request units it costs."""

    def __init__(self, indexes: Iterable[Index]) -> None:
        self.indexes = list(indexes)
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.units = Units()

    def _in(self, index: Index, item: dict[str, Any] | None) -> bool:
        return item is not None and all(k in item for k in index.keys)

    def _write(self, operation: str, before: dict[str, Any] | None, after: dict[str, Any] | None, factor: int) -> None:
        """A write's units: the item's size in KB (2x in a transaction), plus, for every index holding the item
        before or after, one write per KB of what it projects (two when its key changed). An update that leaves an
        index's keys and projected attributes as they were writes nothing to that index."""
        size = max(item_size(after or {}), item_size(before or {}))
        base = factor * max(1, math.ceil(size / KB))
        index_units = 0
        for index in self.indexes:
            was, now = self._in(index, before), self._in(index, after)
            if not was and not now:
                continue
            old = index.projected(before) if was and before else None
            new = index.projected(after) if now and after else None
            if old is not None and new is not None and old == new:
                continue
            moved = old is not None and new is not None and any(old[k] != new[k] for k in index.keys)
            writes = 2 if moved else 1
            index_units += writes * max(1, math.ceil(item_size(new or old or {}) / KB))
        self.units.write += base
        self.units.index_write += index_units
        self.units.by_operation[operation] = self.units.by_operation.get(operation, 0) + base + index_units

    def _read(self, operation: str, items: list[dict[str, Any]], consistent: bool) -> None:
        size = sum(item_size(i) for i in items)
        units = max(1, math.ceil(size / (4 * KB))) * (1.0 if consistent else 0.5)
        self.units.read += units
        self.units.by_operation[operation] = self.units.by_operation.get(operation, 0) + units

    def _one_write(self, kind: str, params: dict[str, Any], factor: int) -> None:
        if kind == "Put":
            item = params["Item"]
            key = _key_of(item)
            before = self.items.get(key)
            self.items[key] = item
            self._write(f"{kind}{'(tx)' if factor == 2 else ''}", before, item, factor)
        elif kind == "Update":
            key = _key_of(params["Key"])
            before = self.items.get(key, {})
            after = apply_update(before, params)
            self.items[key] = after
            self._write(f"{kind}{'(tx)' if factor == 2 else ''}", before or None, after, factor)
        elif kind == "Delete":
            key = _key_of(params["Key"])
            before = self.items.pop(key, None)
            self._write(f"{kind}{'(tx)' if factor == 2 else ''}", before, None, factor)
        elif kind == "ConditionCheck":
            self.units.write += factor
            self.units.by_operation["ConditionCheck(tx)"] = (
                self.units.by_operation.get("ConditionCheck(tx)", 0) + factor
            )

    def add(self, call: Call) -> None:
        if call.service != "dynamodb":
            return
        op, params = call.operation, call.params
        if op == "PutItem":
            self._one_write("Put", params, 1)
        elif op == "UpdateItem":
            self._one_write("Update", params, 1)
        elif op == "DeleteItem":
            self._one_write("Delete", params, 1)
        elif op == "TransactWriteItems":
            for entry in params.get("TransactItems", []):
                ((kind, inner),) = entry.items()
                self._one_write(kind, inner, 2)
        elif op == "GetItem":
            # A projection trims what comes back, not what is read: size the whole item when it is known.
            found = call.response.get("Item")
            item = (self.items.get(_key_of(params["Key"])) or found) if found else None
            self._read("GetItem", [item] if item else [], bool(params.get("ConsistentRead")))
        elif op == "Query":
            consistent = bool(params.get("ConsistentRead")) and "IndexName" not in params
            self._read("Query", list(call.response.get("Items", [])), consistent)
        elif op == "BatchGetItem":  # each item is its own read: 1 unit per 4 KB consistent, half that otherwise
            for table, found in call.response.get("Responses", {}).items():
                consistent = bool(params["RequestItems"][table].get("ConsistentRead"))
                for item in found:
                    self._read("BatchGetItem", [self.items.get(_key_of(item)) or item], consistent)
        elif op in ("BatchWriteItem", "Scan", "TransactGetItems"):
            self.units.by_operation[f"{op}(unsized)"] = self.units.by_operation.get(f"{op}(unsized)", 0) + 1


def indexes_from_template(template: dict[str, Any]) -> list[Index]:
    table = next(r for r in template["Resources"].values() if r.get("Type") == "AWS::DynamoDB::Table")
    return [
        Index(
            gsi["IndexName"],
            tuple(k["AttributeName"] for k in gsi["KeySchema"]),
            gsi["Projection"]["ProjectionType"],
            tuple(gsi["Projection"].get("NonKeyAttributes", [])),
        )
        for gsi in table["Properties"].get("GlobalSecondaryIndexes", [])
    ]


def units_of(
    calls: Iterable[Call], indexes: Iterable[Index], known: dict[tuple[str, str], dict[str, Any]] | None = None
) -> Units:
    sizer = Sizer(indexes)
    if known:
        sizer.items.update(known)
    for call in calls:
        sizer.add(call)
    return sizer.units
