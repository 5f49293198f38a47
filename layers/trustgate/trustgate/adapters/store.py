"""DynamoDB adapter: requests (which are also the grants), audit, role policies, locks, approval tokens.

One table; the key layout is in docs/architecture.md. `ClientError` codes become domain errors here.
"""

from __future__ import annotations

import base64
import json
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from trustgate.adapters.throttling import throttling_in
from trustgate.core.clock import parse_rfc3339, to_rfc3339
from trustgate.core.errors import ConflictError, InvalidCursorError, LockTimeoutError, NotFoundError, ThrottledError
from trustgate.core.models import STORED, AccessRequest, AuditEvent, RequestStatus, RolePolicy
from trustgate.core.records import Page, StoredPolicy, SyncQueue, iterate_pages, role_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
PAGE_LIMIT = 50
DECISION_LEASE = timedelta(seconds=60)  # a decision's sender has this long before another may send it
_INDEX_KEYS = {
    "ByRole": ("gsi1pk", "gsi1sk"),
    "ByPrincipal": ("gsi2pk", "gsi2sk"),
    "ByStatus": ("gsi3pk", "gsi3sk"),
    "ByKind": ("gsi4pk", "gsi4sk"),
    "ByReview": ("gsi5pk", "gsi5sk"),
}
REVIEW_PENDING = "REVIEW#pending"  # the ByReview partition: break-glass requests awaiting review (a sparse index)
# ByKind (every request, every audit record, newest first) spreads each kind over this many partition keys, so no
# one key takes every write; a listing queries them all and merges.
KIND_SHARDS = 4
MAX_FILTERED_READS = 3  # queries per shard and call when a filter leaves pages short (see Store._query_kind)


def _to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(value) for key, value in values.items() if value is not None}


def _from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() else float(value)
        if isinstance(value, list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return {key: plain(_deserializer.deserialize(value)) for key, value in item.items()}


def _packed_intent(intent: Mapping[str, Any]) -> bytes:
    """An intent holds up to four policy documents: compressed, the lock item stays near 1 KB, which every
    update of it while the intent is there is billed by (policies compress about fivefold)."""
    return zlib.compress(json.dumps(intent, sort_keys=True, separators=(",", ":")).encode(), 9)


def _unpacked_intent(attribute: Mapping[str, Any]) -> dict[str, Any]:
    """The intent from its attribute as DynamoDB returns it (binary, or JSON text from an earlier release)."""
    text = attribute["S"] if "S" in attribute else zlib.decompress(attribute["B"])
    intent: dict[str, Any] = json.loads(text)
    return intent


def encode_cursor(key: Mapping[str, Any] | None) -> str | None:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode() if key else None


MAX_CURSOR = 2048  # a real cursor is a few hundred characters: four short keys


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    if len(cursor) > MAX_CURSOR:
        raise InvalidCursorError()
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, RecursionError) as error:  # not base64, not UTF-8, not JSON, or absurdly nested
        raise InvalidCursorError() from error
    if not isinstance(decoded, dict):
        raise InvalidCursorError()
    return decoded


def _request_keys(request: AccessRequest) -> dict[str, Any]:
    created = f"{to_rfc3339(request.created_at)}#{request.id}"
    review = {"gsi5pk": REVIEW_PENDING, "gsi5sk": created} if request.review_pending else {}
    return {
        **review,
        "pk": f"REQUEST#{request.id}",
        "sk": "REQUEST",
        "gsi1pk": f"ROLE#{request.role_arn}",
        "gsi1sk": f"{request.status.value}#{role_key(request)}",
        "gsi2pk": f"PERSON#{request.requester.key}",
        "gsi2sk": created,
        "gsi3pk": f"STATUS#{request.status.value}",
        "gsi3sk": created,
        "gsi4pk": kind_partition("REQUEST", request.id),
        "gsi4sk": created,
    }


def kind_partition(kind: str, item_id: str) -> str:
    """The ByKind partition key of an item: its kind and a shard derived from its id (stable, evenly spread)."""
    return f"{kind}#{zlib.crc32(item_id.encode()) % KIND_SHARDS}"


def kind_shards(kind: str) -> list[str]:
    return [f"{kind}#{shard}" for shard in range(KIND_SHARDS)]


def _open_key(request: AccessRequest) -> dict[str, str]:
    """The marker a person's one open request on a role holds."""
    return {"pk": f"OPEN#{request.role_arn}#{request.requester.key}", "sk": "OPEN"}


def request_item(request: AccessRequest) -> dict[str, Any]:
    """The DynamoDB item (typed attribute values) of a request."""
    return _to_item({**request.model_dump(mode="json", exclude_none=True), **_request_keys(request)})


def audit_item(event: AuditEvent) -> dict[str, Any]:
    at = f"{to_rfc3339(event.at)}#{event.id}"
    keys: dict[str, Any] = {"pk": f"AUDIT#{event.id}", "sk": "AUDIT", "gsi4pk": kind_partition("AUDIT", event.id)}
    keys["gsi4sk"] = at
    if event.role_arn:
        keys |= {"gsi1pk": f"AUDITROLE#{event.role_arn}", "gsi1sk": at}
    body = event.model_dump(mode="json", exclude_none=True)
    # Nested before/after documents are stored as JSON text: they are read whole, never queried.
    for key in ("before", "after", "detail"):
        if key in body:
            body[key] = json.dumps(body[key], separators=(",", ":"))
    return _to_item({**body, **keys})


def _audit_from(item: Mapping[str, Any]) -> AuditEvent:
    values = _from_item(item)
    for key in ("before", "after", "detail"):
        if isinstance(values.get(key), str):
            values[key] = json.loads(values[key])
    return AuditEvent.model_validate({k: v for k, v in values.items() if k in AuditEvent.model_fields})


def _request_from(item: Mapping[str, Any]) -> AccessRequest:
    values = _from_item(item)
    return AccessRequest.model_validate({k: v for k, v in values.items() if k in AccessRequest.model_fields})


BATCH_GET_LIMIT = 100  # DynamoDB's most keys in one BatchGetItem
BATCH_GET_ATTEMPTS = 5


def _request_key(request_id: str) -> dict[str, Any]:
    return _to_item({"pk": f"REQUEST#{request_id}", "sk": "REQUEST"})


def _token_key(token_hash: str) -> dict[str, Any]:
    return _to_item({"pk": f"TOKEN#{token_hash}", "sk": "TOKEN"})


def _lock_key(name: str) -> dict[str, Any]:
    return _to_item({"pk": f"LOCK#{name}", "sk": "LOCK"})


class Store:
    """Typed access to the TrustGate table."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table = table_name

    # -- requests ---------------------------------------------------------------------------------

    def create_request(self, request: AccessRequest, audit: AuditEvent, *also: AuditEvent) -> None:
        """Write a new request and its audit records together; a request id is never reused."""
        self.create_requests([request], [audit, *also])

    def create_requests(self, requests: Sequence[AccessRequest], audits: Sequence[AuditEvent]) -> None:
        """Write new requests (one, or a multi-role request's) and their audit records in one transaction: all or
        none. A pending request also takes its role's open-request marker for its person, atomically."""
        writes: list[dict[str, Any]] = [*(self._audit_put(event) for event in audits)]
        for request in requests:
            writes.append(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": request_item(request),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
            if request.status == RequestStatus.PENDING:
                # One open request per person per role, atomically: a marker only one request can hold.
                marker = {**_open_key(request), "request_id": request.id}
                writes.append(
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": _to_item(marker),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    }
                )
        first = requests[0]
        try:
            self._transact(writes, conflict=f"request {first.id} already exists")
        except ConflictError as error:
            roles = ", ".join(r.role_arn for r in requests)
            raise ConflictError(
                f"{first.requester.label} already has a request open for {roles}; wait for its decision or cancel "
                "it before asking again",
                code="request_pending",
            ) from error

    def get_request(self, request_id: str) -> AccessRequest:
        response = self.client.get_item(TableName=self.table, Key=_request_key(request_id), ConsistentRead=True)
        if "Item" not in response:
            raise NotFoundError(f"no request {request_id}; list yours with GET /requests?mine=true")
        return _request_from(response["Item"])

    def replace_request(self, before: AccessRequest, after: AccessRequest, audit: AuditEvent | None) -> None:
        """Write `after` only if the stored request is still `before` (optimistic concurrency on `version`)."""
        if after.version != before.version + 1:
            raise ValueError("replace_request needs after.version == before.version + 1")
        writes: list[dict[str, Any]] = [self._request_update(after, before.version)]
        if before.status == RequestStatus.PENDING and after.status != RequestStatus.PENDING:
            writes.append({"Delete": {"TableName": self.table, "Key": _to_item(_open_key(before))}})
        if audit:
            writes.append(self._audit_put(audit))
        self._transact(writes, conflict=f"request {before.id} changed meanwhile; read it again")

    def _request_update(self, after: AccessRequest, expected_version: int) -> dict[str, Any]:
        """An Update (not a Put) so attributes outside the model, like the task token, survive."""
        item = request_item(after)
        values = {key: value for key, value in item.items() if key not in ("pk", "sk")}
        cleared = [name for name in (*AccessRequest.model_fields, "gsi5pk", "gsi5sk") if name not in item]
        names = {f"#a{i}": key for i, key in enumerate([*values, *cleared])}
        placeholders = {key: f"#a{i}" for i, key in enumerate([*values, *cleared])}
        expression = "SET " + ", ".join(f"{placeholders[key]} = :v{i}" for i, key in enumerate(values))
        if cleared:
            expression += " REMOVE " + ", ".join(placeholders[key] for key in cleared)
        attribute_values = {f":v{i}": value for i, value in enumerate(values.values())}
        attribute_values[":expected"] = _serializer.serialize(expected_version)
        names["#version"] = "version"
        return {
            "Update": {
                "TableName": self.table,
                "Key": {"pk": item["pk"], "sk": item["sk"]},
                "UpdateExpression": expression,
                "ConditionExpression": "#version = :expected",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": attribute_values,
            }
        }

    def get_requests(self, request_ids: Iterable[str]) -> list[AccessRequest]:
        """The requests as stored now (consistent reads, 100 a call), in the order asked; ids that name no request
        are left out."""
        keys = [_request_key(i) for i in dict.fromkeys(request_ids)]
        return [_request_from(item) for item in self._get_items(keys)]

    def _get_items(self, keys: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Items as stored now (BatchGetItem, consistent, 100 keys a call), in the order of `keys`; missing ones
        are left out. Keys DynamoDB leaves unprocessed (too busy) are asked again, a few times."""
        keys = list({(k["pk"]["S"], k["sk"]["S"]): k for k in keys}.values())  # BatchGetItem refuses a key twice
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            pending: list[dict[str, Any]] = [dict(k) for k in keys[start : start + BATCH_GET_LIMIT]]
            for attempt in range(BATCH_GET_ATTEMPTS):
                response = self.client.batch_get_item(
                    RequestItems={self.table: {"Keys": pending, "ConsistentRead": True}}
                )
                for item in response.get("Responses", {}).get(self.table, []):
                    found[(item["pk"]["S"], item["sk"]["S"])] = dict(item)
                unprocessed = response.get("UnprocessedKeys", {}).get(self.table)
                pending = [dict(key) for key in unprocessed["Keys"]] if unprocessed else []
                if not pending:
                    break
                time.sleep(0.05 * 2**attempt)
            if pending:
                raise ThrottledError()
        ordered = [found.get((k["pk"]["S"], k["sk"]["S"])) for k in keys]
        return [item for item in ordered if item is not None]

    def set_task_token(self, request_id: str, token: str) -> None:
        self.client.update_item(
            TableName=self.table,
            Key=_request_key(request_id),
            UpdateExpression="SET task_token = :t",
            ExpressionAttributeValues=_to_item({":t": token}),
        )

    def get_task_token(self, request_id: str) -> str | None:
        response = self.client.get_item(
            TableName=self.table,
            Key=_request_key(request_id),
            ProjectionExpression="task_token",
            ConsistentRead=True,
        )
        token = _from_item(response.get("Item", {})).get("task_token")
        return token if isinstance(token, str) else None

    def claim_decision_delivery(self, request_id: str, now: datetime, lease: timedelta = DECISION_LEASE) -> bool:
        """A lease on handing the decision to the waiting flow: True for whoever may send it now.

        Taken before the send, so two deciders racing do not both send; a sender that dies before sending
        leaves a lease that lapses, after which the reconciler sends it. (Sending twice is harmless: the flow
        ignores a token that already finished.)"""
        return (
            self._update_if(
                _request_key(request_id),
                "SET decision_claimed_at = :now",
                "attribute_exists(pk) AND (attribute_not_exists(decision_claimed_at) OR decision_claimed_at < :stale)",
                {":now": to_rfc3339(now), ":stale": to_rfc3339(now - lease)},
            )
            is not None
        )

    def release_decision_delivery(self, request_id: str, claimed_at: datetime) -> None:
        """Give back a lease whose send failed, so the next try (the reconciler's) need not wait for it to lapse;
        a lease someone else took since is theirs."""
        self._update_if(
            _request_key(request_id),
            "REMOVE decision_claimed_at",
            "decision_claimed_at = :claimed",
            {":claimed": to_rfc3339(claimed_at)},
        )

    def requests_by_role(
        self, role_arn: str, status: RequestStatus | None = None, cursor: str | None = None, limit: int = PAGE_LIMIT
    ) -> Page[AccessRequest]:
        return self._query_requests("ByRole", *_of_role(role_arn, status), cursor, limit)

    def requests_by_person(
        self, person_key: str, cursor: str | None = None, limit: int = PAGE_LIMIT
    ) -> Page[AccessRequest]:
        """A person's requests, whichever of their identities made them, newest first."""
        return self._query_requests("ByPrincipal", "gsi2pk = :pk", {":pk": f"PERSON#{person_key}"}, cursor, limit)

    def requests_by_status(
        self, status: RequestStatus, cursor: str | None = None, limit: int = PAGE_LIMIT
    ) -> Page[AccessRequest]:
        return self._query_requests("ByStatus", "gsi3pk = :pk", {":pk": f"STATUS#{status.value}"}, cursor, limit)

    def all_requests(self, cursor: str | None = None, limit: int = PAGE_LIMIT) -> Page[AccessRequest]:
        keys, next_cursor = self._query_kind("REQUEST", "0", "~", cursor, limit)
        return Page([_request_from(item) for item in self._get_items(keys)], next_cursor)

    def review_pending(self, cursor: str | None = None, limit: int = PAGE_LIMIT) -> Page[AccessRequest]:
        """Break-glass requests no approver has reviewed yet, newest first (a sparse index: only they are in it)."""
        return self._query_requests("ByReview", "gsi5pk = :pk", {":pk": REVIEW_PENDING}, cursor, limit)

    def claim_review_reminder(self, request_id: str, now: datetime, due_before: datetime) -> bool:
        """Claim today's review reminder: True for the one caller that may send it (not reminded since
        `due_before`, and still awaiting review). Another reconciler run racing this one gets False."""
        return (
            self._update_if(
                _request_key(request_id),
                "SET review_reminded_at = :now",
                "attribute_exists(gsi5pk) AND (attribute_not_exists(review_reminded_at) OR review_reminded_at < :due)",
                {":now": to_rfc3339(now), ":due": to_rfc3339(due_before)},
            )
            is not None
        )

    def active_grants(self, role_arn: str) -> list[AccessRequest]:
        """Every active grant of a role (one indexed query per page; never a table scan), as stored now."""
        pages = iterate_pages(lambda cursor: self.requests_by_role(role_arn, RequestStatus.ACTIVE, cursor, 500))
        return [grant for grant in pages if grant.status == RequestStatus.ACTIVE]

    def recent_grants(
        self, role_arn: str, statuses: Iterable[RequestStatus], created_since: datetime
    ) -> list[AccessRequest]:
        """A role's active grants, plus its grants in the other `statuses` requested since `created_since`, as
        stored now (one read of them all, whatever status each has now)."""
        ids: list[str] = []
        for status in statuses:
            if status == RequestStatus.ACTIVE:  # however long ago it began
                condition, values = _of_role(role_arn, status)
            else:  # requested since `created_since`
                condition, values = _of_role(role_arn, None)
                condition += " AND gsi1sk BETWEEN :from AND :to"
                values |= {":from": f"{status.value}#{to_rfc3339(created_since)}", ":to": f"{status.value}#~"}
            ids += self._all_ids("ByRole", condition, values)
        return self.get_requests(ids)

    def _all_ids(self, index: str, condition: str, values: dict[str, Any]) -> list[str]:
        pages = iterate_pages(lambda cursor: self._query_ids(index, condition, values, cursor, 500))
        return list(pages)

    def _all_requests(self, index: str, condition: str, values: dict[str, Any]) -> list[AccessRequest]:
        return self.get_requests(self._all_ids(index, condition, values))

    def _query_ids(
        self, index: str, condition: str, values: dict[str, Any], cursor: str | None, limit: int
    ) -> Page[str]:
        """The request ids a page of an index holds (the indexes project keys only: an update that changes no
        index key writes no index)."""
        items, next_key = self._query(index, condition, values, cursor, limit)
        return Page([item["pk"]["S"].removeprefix("REQUEST#") for item in items], next_key)

    def _query_requests(
        self, index: str, condition: str, values: dict[str, Any], cursor: str | None, limit: int
    ) -> Page[AccessRequest]:
        """A page of an index, each request read from the table (consistent: as it is now, not as the index last
        saw it), in the index's order."""
        ids = self._query_ids(index, condition, values, cursor, limit)
        return Page(self.get_requests(ids.items), ids.next)

    def _query(
        self,
        index: str,
        condition: str,
        values: dict[str, Any],
        cursor: str | None,
        limit: int,
        filter_expression: str | None = None,
        forward: bool = False,
    ) -> tuple[list[dict[str, Any]], str | None]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": _to_item(values),
            "ScanIndexForward": forward,
            "Limit": limit,
        }
        if filter_expression:
            kwargs["FilterExpression"] = filter_expression
        start = decode_cursor(cursor)
        if start:
            _check_cursor(start, index, values)
            kwargs["ExclusiveStartKey"] = _to_item(start)
        try:
            response = self.client.query(**kwargs)
        except ClientError as error:  # a cursor this API never issued: bad input, not a crash
            if start and error.response["Error"]["Code"] == "ValidationException":
                raise InvalidCursorError() from error
            raise
        last = response.get("LastEvaluatedKey")
        return list(response.get("Items", [])), encode_cursor(_from_item(last) if last else None)

    # -- audit ------------------------------------------------------------------------------------

    def put_audit(self, event: AuditEvent) -> None:
        """Record an event on its own (append-only: ConflictError if its id was recorded already)."""
        if not self.put_audit_once(event):
            raise ConflictError("already recorded")

    def put_audit_once(self, event: AuditEvent) -> bool:
        """Record an event under the id it was given; False when a record with that id already exists. One
        conditional put (a one-item transaction would cost twice the write units for the same guarantee)."""
        try:
            self.client.put_item(**self._audit_put(event)["Put"])
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def audit_events(
        self,
        role_arn: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        actor: str | None = None,
        cursor: str | None = None,
        limit: int = PAGE_LIMIT,
    ) -> Page[AuditEvent]:
        low = to_rfc3339(since) if since else "0"
        high = to_rfc3339(until) + "~" if until else "~"  # '~' sorts after every '#<id>' suffix
        values: dict[str, Any] = {":from": low, ":to": high}
        filter_expression = None
        if actor:  # `actor` is projected into both indexes, so the filter runs there
            filter_expression = "actor = :actor"
            values[":actor"] = actor
        if role_arn is None:
            keys, next_cursor = self._query_kind("AUDIT", low, high, cursor, limit, filter_expression, values)
        else:
            values[":pk"] = f"AUDITROLE#{role_arn}"
            condition = "gsi1pk = :pk AND gsi1sk BETWEEN :from AND :to"
            keys, next_cursor = self._query("ByRole", condition, values, cursor, limit, filter_expression)
        return Page([_audit_from(item) for item in self._get_items([_keys_of(k) for k in keys])], next_cursor)

    def _query_kind(
        self,
        kind: str,
        low: str,
        high: str,
        cursor: str | None,
        limit: int,
        filter_expression: str | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Keys of the newest items of a kind between `low` and `high` (ByKind sort keys), across its shards:
        each shard's newest `limit` (after the filter), merged. The cursor is the sort key to continue below.

        A filter that matches little would have a shard read on and on: each shard is read at most
        MAX_FILTERED_READS times a call. Where one stopped short, only what lies above the lowest key it read can
        be complete, so the page ends there (shorter, with `next`), as DynamoDB's own filtered pages do."""
        high = _kind_cursor(kind, cursor, low, high) or high
        bounds = {**(values or {}), ":from": low, ":to": high}
        condition = "gsi4pk = :pk AND gsi4sk BETWEEN :from AND :to"
        merged: list[dict[str, Any]] = []
        floor: str | None = None  # the highest key below which a shard was left unread
        for shard in kind_shards(kind):
            found: list[dict[str, Any]] = []
            page: str | None = None
            for _ in range(MAX_FILTERED_READS):
                items, page = self._query(
                    "ByKind", condition, {**bounds, ":pk": shard}, page, limit + 1, filter_expression
                )
                found += [i for i in items if cursor is None or i["gsi4sk"]["S"] < high]
                if len(found) > limit or page is None:
                    break
            else:
                unread_below = str((decode_cursor(page) or {}).get("gsi4sk", low))
                floor = max(floor or unread_below, unread_below)
            merged += found[: limit + 1]
        complete = sorted(
            (i for i in merged if floor is None or i["gsi4sk"]["S"] >= floor),
            key=lambda item: item["gsi4sk"]["S"],
            reverse=True,
        )
        taken = complete[:limit]
        if len(complete) > limit:
            next_key: str | None = taken[-1]["gsi4sk"]["S"]
        else:
            next_key = floor  # every shard read to its end (None), or all that is complete up to `floor` is here
        return taken, _encode_kind_cursor(kind, next_key) if next_key else None

    def _audit_put(self, event: AuditEvent) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table,
                "Item": audit_item(event),
                "ConditionExpression": "attribute_not_exists(pk)",  # append-only
            }
        }

    # -- role policies ----------------------------------------------------------------------------

    def get_role_policy(self, role_arn: str) -> tuple[RolePolicy, int]:
        """The stored policy and its version (0 and all defaults when none was ever saved)."""
        stored = self.get_stored_policy(role_arn)
        return stored.policy, stored.version

    def get_stored_policy(self, role_arn: str) -> StoredPolicy:
        """The stored policy with its version and what TrustGate keeps on record with it."""
        response = self.client.get_item(
            TableName=self.table, Key=_to_item({"pk": f"ROLE#{role_arn}", "sk": "POLICY"}), ConsistentRead=True
        )
        if "Item" not in response:
            return StoredPolicy(RolePolicy(), 0)
        values = _from_item(response["Item"])
        hand_written = values.get("hand_written")
        return StoredPolicy(
            RolePolicy.model_validate_json(values["policy"], context=STORED),  # see models.STORED
            int(values["version"]),
            tuple(json.loads(hand_written)) if hand_written is not None else None,
            values.get("unrenderable"),
            parse_rfc3339(values["changed_at"]) if values.get("changed_at") else None,
        )

    def put_role_policy(
        self,
        role_arn: str,
        policy: RolePolicy,
        expected_version: int,
        audit: AuditEvent,
        hand_written: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        """Replace the policy if it is still at `expected_version` (which also clears `unrenderable`)."""
        item = _to_item(
            {
                "pk": f"ROLE#{role_arn}",
                "sk": "POLICY",
                "policy": policy.model_dump_json(exclude_defaults=True),
                "version": expected_version + 1,
                "hand_written": json.dumps(list(hand_written)) if hand_written is not None else None,
                "changed_at": to_rfc3339(audit.at),
            }
        )
        condition = "attribute_not_exists(pk)" if expected_version == 0 else "#v = :v"
        put: dict[str, Any] = {"TableName": self.table, "Item": item, "ConditionExpression": condition}
        if expected_version:
            put["ExpressionAttributeNames"] = {"#v": "version"}
            put["ExpressionAttributeValues"] = _to_item({":v": expected_version})
        self._transact(
            [{"Put": put}, self._audit_put(audit)], conflict="the role policy changed meanwhile; read it again"
        )

    def mark_policy_unrenderable(self, role_arn: str, version: int, reason: str, audit: AuditEvent) -> bool:
        """Note that this version of the policy no longer renders (until it is saved again); False if already
        noted or the policy changed meanwhile. The audit record is written with the note, or not at all."""
        update = {
            "Update": {
                "TableName": self.table,
                "Key": _to_item({"pk": f"ROLE#{role_arn}", "sk": "POLICY"}),
                "UpdateExpression": "SET unrenderable = :why",
                "ConditionExpression": "#v = :v AND attribute_not_exists(unrenderable)",
                "ExpressionAttributeNames": {"#v": "version"},
                "ExpressionAttributeValues": _to_item({":v": version, ":why": reason}),
            }
        }
        try:
            self._transact([update, self._audit_put(audit)], conflict="the role policy changed meanwhile")
        except ConflictError as error:
            if throttling_in(error) is not None:  # the table was busy: nothing was noted
                raise
            return False
        return True

    # -- role locks and sync queues --------------------------------------------------------------
    # One item per role (`LOCK#<role>`) holds its lock and its sync queue: a waiter learns from one read both
    # whether its change was synced and whether the lock is free (see sync.sync_role).

    def try_lock(self, name: str, owner: str, now: datetime, lease_until: datetime) -> bool:
        """Take a lease unless someone else holds an unexpired one (a dead holder's lease just runs out)."""
        return (
            self._update_if(
                _lock_key(name),
                "SET #o = :owner, lease_until = :lease REMOVE expiration",
                "attribute_not_exists(lease_until) OR lease_until < :now OR #o = :owner",
                {":now": to_rfc3339(now), ":owner": owner, ":lease": to_rfc3339(lease_until)},
            )
            is not None
        )

    def unlock(self, name: str, owner: str) -> None:
        # A lease someone else holds now is theirs (ours had lapsed): nothing to release.
        self._update_if(_lock_key(name), "REMOVE #o, lease_until", "#o = :owner", {":owner": owner})

    def renew_lock(self, name: str, owner: str, lease_until: datetime) -> None:
        """Extend a lease only while still its holder: once another took the lock (and maybe released it), a
        holder that stalled must not take it back (LockTimeoutError)."""
        self._update_held(name, owner, "SET lease_until = :lease", {":lease": to_rfc3339(lease_until)})

    def mark_dirty(self, name: str, activate: Sequence[str] = (), changed: Sequence[str] = ()) -> int:
        """Record that a change waits for a sync of the role; returns its ticket (the queue's new count)."""
        sets = [f"{field} :{field}" for field, ids in (("activate", activate), ("changed", changed)) if ids]
        values: dict[str, Any] = {":one": 1}
        values |= {f":{field}": set(ids) for field, ids in (("activate", activate), ("changed", changed)) if ids}
        response = self.client.update_item(
            TableName=self.table,
            Key=_lock_key(name),
            UpdateExpression="ADD " + ", ".join(["wanted :one", *sets]),
            ExpressionAttributeValues=_to_item(values),
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["wanted"]["N"])

    def sync_queue(self, name: str) -> SyncQueue:
        """The role's lock and queue, read consistently."""
        item = self.client.get_item(TableName=self.table, Key=_lock_key(name), ConsistentRead=True).get("Item")
        values = _from_item(item) if item else {}
        lease = values.get("lease_until")
        return SyncQueue(
            wanted=int(values.get("wanted", 0)),
            done=int(values.get("done", 0)),
            activate=frozenset(values.get("activate", ())),
            changed=frozenset(values.get("changed", ())),
            owner=values.get("owner"),
            lease_until=parse_rfc3339(lease) if lease else None,
            intent=_unpacked_intent(item["intent"]) if item and "intent" in item else None,
        )

    def record_intent(self, name: str, owner: str, intent: Mapping[str, Any]) -> None:
        """Before IAM is written: what is about to be written, so a crash before its audit is recovered."""
        self._update_held(name, owner, "SET intent = :intent", {":intent": _packed_intent(intent)})

    def finish_round(self, name: str, owner: str, done: int, served: Iterable[str], *, keep_intent: bool) -> int:
        """A round verified every change up to `done`: take what it served off the queue; returns `wanted`."""
        ids = set(served)
        expression = "SET done = :done" + ("" if keep_intent else " REMOVE intent")
        if ids:
            expression += " DELETE activate :ids, changed :ids"
        values: dict[str, Any] = {":done": done} | ({":ids": ids} if ids else {})
        attributes = self._update_held(name, owner, expression, values, "ALL_NEW")
        return int(attributes.get("wanted", {}).get("N", done))

    def clear_intent(self, name: str, owner: str) -> None:
        self._update_held(name, owner, "REMOVE intent", {})

    def _update_held(
        self, name: str, owner: str, expression: str, values: Mapping[str, Any], returns: str = "NONE"
    ) -> dict[str, Any]:
        """An update only the lock's holder may make: a holder whose lease lapsed must not write over another's."""
        attributes = self._update_if(_lock_key(name), expression, "#o = :owner", {**values, ":owner": owner}, returns)
        if attributes is None:
            raise LockTimeoutError(f"the lock on {name} lapsed while its holder was still syncing; retry")
        return attributes

    # -- approval tokens --------------------------------------------------------------------------

    def put_token(self, token_hash: str, values: Mapping[str, Any], expires_at: datetime) -> None:
        self.client.put_item(
            TableName=self.table,
            Item=_to_item(
                {
                    "pk": f"TOKEN#{token_hash}",
                    "sk": "TOKEN",
                    **values,
                    "expires_at": to_rfc3339(expires_at),
                    "expiration": int(expires_at.timestamp()) + 86400,
                }
            ),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def get_token(self, token_hash: str) -> dict[str, Any] | None:
        response = self.client.get_item(TableName=self.table, Key=_token_key(token_hash), ConsistentRead=True)
        return _from_item(response["Item"]) if "Item" in response else None

    def use_token(self, token_hash: str, now: datetime) -> bool:
        """Mark a token used; False if it was already used (single use, atomically)."""
        return (
            self._update_if(
                _token_key(token_hash),
                "SET used_at = :now",
                "attribute_exists(pk) AND attribute_not_exists(used_at)",
                {":now": to_rfc3339(now)},
            )
            is not None
        )

    def release_token(self, token_hash: str, used_at: datetime) -> bool:
        """Give back a link spent by a decision that was not recorded (AWS too busy): False when the link was
        used again since, or the release itself could not be written."""
        return (
            self._update_if(_token_key(token_hash), "REMOVE used_at", "used_at = :at", {":at": to_rfc3339(used_at)})
            is not None
        )

    # -- helpers ----------------------------------------------------------------------------------

    def _update_if(
        self,
        key: Mapping[str, Any],
        expression: str,
        condition: str,
        values: Mapping[str, Any],
        returns: str = "NONE",
    ) -> dict[str, Any] | None:
        """A conditional update: the attributes asked for in `returns` ({} for none), or None when the
        condition did not hold (and nothing was written). `#o` always names the attribute `owner`."""
        names = {"#o": "owner"} if "#o" in expression + condition else {}
        try:
            response = self.client.update_item(
                TableName=self.table,
                Key=dict(key),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues=_to_item(values),
                ReturnValues=returns,  # type: ignore[arg-type]
                **({"ExpressionAttributeNames": names} if names else {}),  # type: ignore[arg-type]
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return dict(response.get("Attributes", {}))

    def _transact(self, writes: list[dict[str, Any]], conflict: str) -> None:
        try:
            self.client.transact_write_items(TransactItems=writes)  # type: ignore[arg-type]
        except ClientError as error:
            if error.response["Error"]["Code"] in ("TransactionCanceledException", "ConditionalCheckFailedException"):
                raise ConflictError(conflict) from error
            raise

    # -- reconciler sweeps --------------------------------------------------------------------------

    def requests_by_status_since(self, status: RequestStatus, created_since: datetime) -> list[AccessRequest]:
        """Every request in `status` made since `created_since` (one `ByStatus` query per page)."""
        condition = "gsi3pk = :pk AND gsi3sk BETWEEN :from AND :to"
        values = {":pk": f"STATUS#{status.value}", ":from": to_rfc3339(created_since), ":to": "~"}
        return self._all_requests("ByStatus", condition, values)


def _of_role(role_arn: str, status: RequestStatus | None) -> tuple[str, dict[str, Any]]:
    """The ByRole key condition for a role's requests, of one status if given."""
    values: dict[str, Any] = {":pk": f"ROLE#{role_arn}"}
    if status is None:
        return "gsi1pk = :pk", values
    return "gsi1pk = :pk AND begins_with(gsi1sk, :prefix)", values | {":prefix": f"{status.value}#"}


def _keys_of(item: Mapping[str, Any]) -> dict[str, Any]:
    return {"pk": item["pk"], "sk": item["sk"]}


def _encode_kind_cursor(kind: str, before: str) -> str:
    return str(encode_cursor({"kind": kind, "before": before}))


def _kind_cursor(kind: str, cursor: str | None, low: str, high: str) -> str | None:
    """The sort key a listing of a kind continues below; only a cursor this listing returned is one."""
    start = decode_cursor(cursor)
    if start is None:
        return None
    before = start.get("before")
    if set(start) != {"kind", "before"} or not isinstance(before, str):
        raise InvalidCursorError()
    if start["kind"] != kind:
        raise InvalidCursorError("the `next` cursor belongs to another listing; start again without it")
    if not low <= before <= high:
        raise InvalidCursorError("the `next` cursor lies outside what this listing asks for; start again without it")
    return before


def _check_cursor(start: Mapping[str, Any], index: str, values: Mapping[str, Any]) -> None:
    """Only a key of this index and this query, as the API returned it, is a cursor: anything else is bad input.

    A key of another partition (another person's or role's listing) or outside the queried time range
    would make DynamoDB start somewhere this query never reaches.
    """
    partition, sort = _INDEX_KEYS.get(index, ("", ""))
    if set(start) != {"pk", "sk", partition, sort} or not all(isinstance(v, str) and v for v in start.values()):
        raise InvalidCursorError()
    if start[partition] != values.get(":pk"):
        raise InvalidCursorError("the `next` cursor belongs to another listing; start again without it")
    # The sort-key conditions queries use: `BETWEEN :from AND :to` and `begins_with(…, :prefix)`.
    inside = (":from" not in values or values[":from"] <= start[sort] <= values[":to"]) and (
        ":prefix" not in values or start[sort].startswith(values[":prefix"])
    )
    if not inside:
        raise InvalidCursorError("the `next` cursor lies outside what this listing asks for; start again without it")
