"""In-memory fakes of every port (`trustgate.core.ports`), for use-case tests that need no moto.

They keep the semantics the use cases rely on, as the adapters have them: the store's optimistic writes, its
one-open-request marker, append-only audit, versioned role policies, single-use tokens, the role lock and its
queue, and its index queries (newest first, `next` cursors that only their own listing accepts). Everything
stored is copied in and out, so a caller cannot change what the store holds by mutating what it got back.
Adapter behaviour (retries, DynamoDB's wire format, IAM's policy grammar) is not faked: moto tests cover that.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from trustgate.core import ports
from trustgate.core.clock import FixedClock, parse_rfc3339, to_rfc3339
from trustgate.core.errors import (
    ConflictError,
    DocumentRefusedError,
    InvalidCursorError,
    LockTimeoutError,
    NotFoundError,
)
from trustgate.core.messages import Notification
from trustgate.core.models import STORED, AccessRequest, AuditEvent, RequestStatus, RolePolicy
from trustgate.core.records import (
    SCHEDULE_KINDS,
    Decision,
    ExecutionStatus,
    LiveRole,
    Page,
    ScheduleKind,
    ScheduleRef,
    StoredPolicy,
    SyncQueue,
    role_key,
)
from trustgate.core.session_guard import GUARD_POLICY_NAME
from trustgate.core.settings import Settings
from trustgate.core.trust_policy import Document, policy_size

PAGE_LIMIT = 50
DECISION_LEASE = timedelta(seconds=60)
INLINE_POLICIES_QUOTA = 10_240  # IAM's limit on all of a role's inline policies together


def _created_key(request: AccessRequest) -> str:
    return f"{to_rfc3339(request.created_at)}#{request.id}"


def _cursor(partition: str, sort_key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"pk": partition, "sk": sort_key}).encode()).decode()


def _after(cursor: str | None, partition: str) -> str | None:
    """The sort key a cursor continues after; InvalidCursorError for one this listing did not issue."""
    if not cursor:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, RecursionError) as error:
        raise InvalidCursorError() from error
    if not isinstance(decoded, dict) or set(decoded) != {"pk", "sk"} or not isinstance(decoded["sk"], str):
        raise InvalidCursorError()
    if decoded["pk"] != partition:
        raise InvalidCursorError("the `next` cursor belongs to another listing; start again without it")
    return decoded["sk"]


def _page[T](
    partition: str, keyed: Iterable[tuple[str, T]], cursor: str | None, limit: int, keep: Callable[[T], bool]
) -> Page[T]:
    """A query newest first: `limit` items read after the cursor, then filtered (as DynamoDB filters: a page may
    come back short, or empty, and still carry `next`)."""
    start = _after(cursor, partition)
    ordered = sorted(keyed, key=lambda pair: pair[0], reverse=True)
    if start is not None:
        ordered = [pair for pair in ordered if pair[0] < start]
    read = ordered[:limit]
    more = len(ordered) > limit
    return Page([item for _, item in read if keep(item)], _cursor(partition, read[-1][0]) if more else None)


def _copy(request: AccessRequest) -> AccessRequest:
    return request.model_copy(deep=True)


@dataclass
class _Lock:
    wanted: int = 0
    done: int | None = None
    activate: set[str] = field(default_factory=set)
    changed: set[str] = field(default_factory=set)
    owner: str | None = None
    lease_until: str | None = None  # RFC 3339, compared as text as the table does
    intent: str | None = None  # JSON text


@dataclass
class _Policy:
    policy_json: str
    version: int
    hand_written: str | None
    changed_at: str
    unrenderable: str | None = None


class FakeStore:
    """The table, in memory (see store.Store for what each method promises)."""

    def __init__(self) -> None:
        self.requests: dict[str, AccessRequest] = {}
        self.task_tokens: dict[str, str] = {}
        self.decision_claims: dict[str, str] = {}
        self.open_markers: dict[tuple[str, str], str] = {}  # (role, person key) -> request id
        self.audits: dict[str, AuditEvent] = {}
        self.policies: dict[str, _Policy] = {}
        self.locks: dict[str, _Lock] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.review_reminders: dict[str, str] = {}  # request id -> when approvers were last reminded (RFC 3339)

    # -- requests

    def create_request(self, request: AccessRequest, audit: AuditEvent, *also: AuditEvent) -> None:
        self.create_requests([request], [audit, *also])

    def create_requests(self, requests: Sequence[AccessRequest], audits: Sequence[AuditEvent]) -> None:
        markers = [(r.role_arn, r.requester.key) for r in requests if r.status == RequestStatus.PENDING]
        if (
            any(r.id in self.requests for r in requests)
            or any(event.id in self.audits for event in audits)
            or any(marker in self.open_markers for marker in markers)
        ):
            roles = ", ".join(r.role_arn for r in requests)
            raise ConflictError(
                f"{requests[0].requester.label} already has a request open for {roles}; wait for its decision or "
                "cancel it before asking again",
                code="request_pending",
            )
        for request in requests:
            self.requests[request.id] = _copy(request)
            if request.status == RequestStatus.PENDING:
                self.open_markers[(request.role_arn, request.requester.key)] = request.id
        for event in audits:
            self.audits[event.id] = event.model_copy(deep=True)

    def get_request(self, request_id: str) -> AccessRequest:
        if request_id not in self.requests:
            raise NotFoundError(f"no request {request_id}; list yours with GET /requests?mine=true")
        return _copy(self.requests[request_id])

    def replace_request(self, before: AccessRequest, after: AccessRequest, audit: AuditEvent | None) -> None:
        if after.version != before.version + 1:
            raise ValueError("replace_request needs after.version == before.version + 1")
        stored = self.requests.get(before.id)
        if stored is None or stored.version != before.version or (audit is not None and audit.id in self.audits):
            raise ConflictError(f"request {before.id} changed meanwhile; read it again")
        self.requests[before.id] = _copy(after)
        if before.status == RequestStatus.PENDING and after.status != RequestStatus.PENDING:
            self.open_markers.pop((before.role_arn, before.requester.key), None)
        if audit is not None:
            self.audits[audit.id] = audit.model_copy(deep=True)

    def get_requests(self, request_ids: Iterable[str]) -> list[AccessRequest]:
        return [_copy(self.requests[i]) for i in dict.fromkeys(request_ids) if i in self.requests]

    def set_task_token(self, request_id: str, token: str) -> None:
        self.task_tokens[request_id] = token

    def get_task_token(self, request_id: str) -> str | None:
        return self.task_tokens.get(request_id)

    def claim_decision_delivery(self, request_id: str, now: datetime, lease: timedelta = DECISION_LEASE) -> bool:
        claimed = self.decision_claims.get(request_id)
        if request_id not in self.requests or (claimed is not None and not claimed < to_rfc3339(now - lease)):
            return False
        self.decision_claims[request_id] = to_rfc3339(now)
        return True

    def release_decision_delivery(self, request_id: str, claimed_at: datetime) -> None:
        if self.decision_claims.get(request_id) == to_rfc3339(claimed_at):
            del self.decision_claims[request_id]

    def requests_by_role(
        self, role_arn: str, status: RequestStatus | None = None, cursor: str | None = None, limit: int = PAGE_LIMIT
    ) -> Page[AccessRequest]:
        keyed = [
            (f"{r.status.value}#{role_key(r)}", _copy(r))
            for r in self.requests.values()
            if r.role_arn == role_arn and (status is None or r.status == status)
        ]
        if (
            status is not None
            and cursor
            and not (_after(cursor, f"ROLE#{role_arn}") or "").startswith(f"{status.value}#")
        ):
            raise InvalidCursorError(
                "the `next` cursor lies outside what this listing asks for; start again without it"
            )
        return _page(f"ROLE#{role_arn}", keyed, cursor, limit, lambda _: True)

    def requests_by_person(
        self, person_key: str, cursor: str | None = None, limit: int = PAGE_LIMIT
    ) -> Page[AccessRequest]:
        keyed = [(_created_key(r), _copy(r)) for r in self.requests.values() if r.requester.key == person_key]
        return _page(f"PERSON#{person_key}", keyed, cursor, limit, lambda _: True)

    def requests_by_status(
        self, status: RequestStatus, cursor: str | None = None, limit: int = PAGE_LIMIT
    ) -> Page[AccessRequest]:
        keyed = [(_created_key(r), _copy(r)) for r in self.requests.values() if r.status == status]
        return _page(f"STATUS#{status.value}", keyed, cursor, limit, lambda _: True)

    def all_requests(self, cursor: str | None = None, limit: int = PAGE_LIMIT) -> Page[AccessRequest]:
        keyed = [(_created_key(r), _copy(r)) for r in self.requests.values()]
        return _page("REQUEST", keyed, cursor, limit, lambda _: True)

    def review_pending(self, cursor: str | None = None, limit: int = PAGE_LIMIT) -> Page[AccessRequest]:
        keyed = [(_created_key(r), _copy(r)) for r in self.requests.values() if r.review_pending]
        return _page("REVIEW#pending", keyed, cursor, limit, lambda _: True)

    def claim_review_reminder(self, request_id: str, now: datetime, due_before: datetime) -> bool:
        request = self.requests.get(request_id)
        reminded = self.review_reminders.get(request_id)
        if (
            request is None
            or not request.review_pending
            or (reminded is not None and reminded >= to_rfc3339(due_before))
        ):
            return False
        self.review_reminders[request_id] = to_rfc3339(now)
        return True

    def active_grants(self, role_arn: str) -> list[AccessRequest]:
        return [_copy(r) for r in self.requests.values() if r.role_arn == role_arn and r.status == RequestStatus.ACTIVE]

    def recent_grants(
        self, role_arn: str, statuses: Iterable[RequestStatus], created_since: datetime
    ) -> list[AccessRequest]:
        found: list[AccessRequest] = []
        since = to_rfc3339(created_since)
        for status in statuses:
            if status == RequestStatus.ACTIVE:
                found.extend(self.active_grants(role_arn))
                continue
            found.extend(
                _copy(r)
                for r in self.requests.values()
                if r.role_arn == role_arn and r.status == status and role_key(r) >= since
            )
        return found

    def requests_by_status_since(self, status: RequestStatus, created_since: datetime) -> list[AccessRequest]:
        since = to_rfc3339(created_since)
        return [_copy(r) for r in self.requests.values() if r.status == status and _created_key(r) >= since]

    # -- audit

    def put_audit(self, event: AuditEvent) -> None:
        if event.id in self.audits:  # append-only
            raise ConflictError("already recorded")
        self.audits[event.id] = event.model_copy(deep=True)

    def put_audit_once(self, event: AuditEvent) -> bool:
        if event.id in self.audits:
            return False
        self.audits[event.id] = event.model_copy(deep=True)
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
        high = to_rfc3339(until) + "~" if until else "~"
        keyed = [
            (key, event.model_copy(deep=True))
            for event in self.audits.values()
            if (role_arn is None or event.role_arn == role_arn)
            and low <= (key := f"{to_rfc3339(event.at)}#{event.id}") <= high
        ]
        if cursor and not low <= (_after(cursor, f"AUDITROLE#{role_arn}" if role_arn else "AUDIT") or "") <= high:
            raise InvalidCursorError(
                "the `next` cursor lies outside what this listing asks for; start again without it"
            )
        partition = f"AUDITROLE#{role_arn}" if role_arn else "AUDIT"
        return _page(partition, keyed, cursor, limit, lambda event: actor is None or event.actor == actor)

    # -- role policies

    def get_role_policy(self, role_arn: str) -> tuple[RolePolicy, int]:
        stored = self.get_stored_policy(role_arn)
        return stored.policy, stored.version

    def get_stored_policy(self, role_arn: str) -> StoredPolicy:
        stored = self.policies.get(role_arn)
        if stored is None:
            return StoredPolicy(RolePolicy(), 0)
        return StoredPolicy(
            RolePolicy.model_validate_json(stored.policy_json, context=STORED),
            stored.version,
            tuple(json.loads(stored.hand_written)) if stored.hand_written is not None else None,
            stored.unrenderable,
            parse_rfc3339(stored.changed_at),
        )

    def put_role_policy(
        self,
        role_arn: str,
        policy: RolePolicy,
        expected_version: int,
        audit: AuditEvent,
        hand_written: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        stored = self.policies.get(role_arn)
        current = stored.version if stored is not None else 0
        if current != expected_version or audit.id in self.audits:
            raise ConflictError("the role policy changed meanwhile; read it again")
        self.policies[role_arn] = _Policy(
            policy.model_dump_json(exclude_defaults=True),
            expected_version + 1,
            json.dumps(list(hand_written)) if hand_written is not None else None,
            to_rfc3339(audit.at),
        )
        self.audits[audit.id] = audit.model_copy(deep=True)

    def mark_policy_unrenderable(self, role_arn: str, version: int, reason: str, audit: AuditEvent) -> bool:
        stored = self.policies.get(role_arn)
        if stored is None or stored.version != version or stored.unrenderable is not None or audit.id in self.audits:
            return False
        stored.unrenderable = reason
        self.audits[audit.id] = audit.model_copy(deep=True)
        return True

    # -- role locks and sync queues

    def try_lock(self, name: str, owner: str, now: datetime, lease_until: datetime) -> bool:
        lock = self.locks.setdefault(name, _Lock())
        if lock.lease_until is not None and not lock.lease_until < to_rfc3339(now) and lock.owner != owner:
            return False
        lock.owner, lock.lease_until = owner, to_rfc3339(lease_until)
        return True

    def unlock(self, name: str, owner: str) -> None:
        lock = self.locks.get(name)
        if lock is not None and lock.owner == owner:
            lock.owner = lock.lease_until = None

    def renew_lock(self, name: str, owner: str, lease_until: datetime) -> None:
        self._held(name, owner).lease_until = to_rfc3339(lease_until)

    def mark_dirty(self, name: str, activate: Sequence[str] = (), changed: Sequence[str] = ()) -> int:
        lock = self.locks.setdefault(name, _Lock())
        lock.wanted += 1
        lock.activate |= set(activate)
        lock.changed |= set(changed)
        return lock.wanted

    def sync_queue(self, name: str) -> SyncQueue:
        lock = self.locks.get(name) or _Lock()
        return SyncQueue(
            wanted=lock.wanted,
            done=lock.done or 0,
            activate=frozenset(lock.activate),
            changed=frozenset(lock.changed),
            owner=lock.owner,
            lease_until=parse_rfc3339(lock.lease_until) if lock.lease_until else None,
            intent=json.loads(lock.intent) if lock.intent is not None else None,
        )

    def record_intent(self, name: str, owner: str, intent: Mapping[str, Any]) -> None:
        self._held(name, owner).intent = json.dumps(intent, sort_keys=True)

    def finish_round(self, name: str, owner: str, done: int, served: Iterable[str], *, keep_intent: bool) -> int:
        lock = self._held(name, owner)
        ids = set(served)
        lock.done = done
        if not keep_intent:
            lock.intent = None
        lock.activate -= ids
        lock.changed -= ids
        return lock.wanted or done  # as the table: no `wanted` yet (never marked dirty) answers `done`

    def clear_intent(self, name: str, owner: str) -> None:
        self._held(name, owner).intent = None

    def _held(self, name: str, owner: str) -> _Lock:
        lock = self.locks.get(name)
        if lock is None or lock.owner != owner:
            raise LockTimeoutError(f"the lock on {name} lapsed while its holder was still syncing; retry")
        return lock

    # -- approval tokens

    def put_token(self, token_hash: str, values: Mapping[str, Any], expires_at: datetime) -> None:
        if token_hash in self.tokens:
            raise ConflictError(f"token {token_hash} already exists")
        self.tokens[token_hash] = json.loads(
            json.dumps(
                {
                    "pk": f"TOKEN#{token_hash}",
                    "sk": "TOKEN",
                    **{key: value for key, value in values.items() if value is not None},
                    "expires_at": to_rfc3339(expires_at),
                    "expiration": int(expires_at.timestamp()) + 86400,
                }
            )
        )

    def get_token(self, token_hash: str) -> dict[str, Any] | None:
        token = self.tokens.get(token_hash)
        return copy.deepcopy(token) if token is not None else None

    def use_token(self, token_hash: str, now: datetime) -> bool:
        token = self.tokens.get(token_hash)
        if token is None or "used_at" in token:
            return False
        token["used_at"] = to_rfc3339(now)
        return True

    def release_token(self, token_hash: str, used_at: datetime) -> bool:
        token = self.tokens.get(token_hash)
        if token is None or token.get("used_at") != to_rfc3339(used_at):
            return False
        del token["used_at"]
        return True


@dataclass
class FakeRole:
    trust_policy: Document
    role_id: str
    guard: Document | None = None
    other_inline_size: int = 0


class FakeRoleEditor:
    """IAM for the managed roles: each role's trust policy and session guard. Tell it to `refuse` a principal
    (IAM's "Invalid principal": say, a deleted user) or give it a `trust_policy_quota` to refuse a large one."""

    def __init__(self, trust_policy_quota: int | None = None) -> None:
        self.roles: dict[str, FakeRole] = {}
        self.refused: set[str] = set()
        self.trust_policy_quota = trust_policy_quota
        self.writes: list[tuple[str, str, Document | None]] = []  # (role, "trust" | "guard", document)

    def add_role(self, role_arn: str, trust_policy: Document, role_id: str = "AROAFAKEROLEID00000001") -> None:
        self.roles[role_arn] = FakeRole(copy.deepcopy(trust_policy), role_id)

    def refuse(self, principal: str) -> None:
        self.refused.add(principal)

    def _role(self, role_arn: str) -> FakeRole:
        if role_arn not in self.roles:
            raise NotFoundError(f"role {role_arn} does not exist in IAM; check the ManagedRoleArns parameter")
        return self.roles[role_arn]

    def trust_policy(self, role_arn: str) -> Document:
        return copy.deepcopy(self._role(role_arn).trust_policy)

    def read(self, role_arn: str) -> LiveRole:
        role = self._role(role_arn)
        return LiveRole(
            trust_policy=copy.deepcopy(role.trust_policy),
            role_id=role.role_id,
            guard=copy.deepcopy(role.guard),
            other_inline_size=role.other_inline_size,
        )

    def session_guard(self, role_arn: str) -> Document | None:
        return copy.deepcopy(self._role(role_arn).guard)

    def write_trust_policy(self, role_arn: str, document: Document) -> None:
        role = self._role(role_arn)
        text = json.dumps(document)
        for principal in self.refused:
            if f'"{principal}"' in text:
                raise DocumentRefusedError(f"Invalid principal in policy: {principal}")
        if self.trust_policy_quota is not None and policy_size(document) > self.trust_policy_quota:
            raise DocumentRefusedError(f"Cannot exceed quota for ACLSizePerRole: {self.trust_policy_quota}")
        role.trust_policy = copy.deepcopy(document)
        self.writes.append((role_arn, "trust", copy.deepcopy(document)))

    def write_session_guard(self, role_arn: str, document: Document | None) -> None:
        role = self._role(role_arn)
        if document is not None and policy_size(document) + role.other_inline_size > INLINE_POLICIES_QUOTA:
            raise DocumentRefusedError(
                f"Maximum policy size of {INLINE_POLICIES_QUOTA} bytes exceeded for role {GUARD_POLICY_NAME}"
            )
        role.guard = copy.deepcopy(document)
        self.writes.append((role_arn, "guard", copy.deepcopy(document)))


class FakeSchedules:
    """One-time schedules: (request id, kind) -> when."""

    def __init__(self) -> None:
        self.schedules: dict[tuple[str, ScheduleKind], datetime] = {}
        self.messages: dict[tuple[str, ScheduleKind], Notification] = {}  # what a reminder will say

    def create(
        self, request_id: str, at: datetime, kind: ScheduleKind = "expire", message: Notification | None = None
    ) -> None:
        self.schedules[(request_id, kind)] = at
        if message is not None:
            self.messages[(request_id, kind)] = message

    def delete(self, request_id: str, kinds: tuple[ScheduleKind, ...] = SCHEDULE_KINDS) -> None:
        for kind in kinds:
            self.schedules.pop((request_id, kind), None)
            self.messages.pop((request_id, kind), None)

    def listed(self) -> Iterator[ScheduleRef]:
        for request_id, kind in list(self.schedules):
            yield ScheduleRef(request_id, kind)


class FakeWorkflow:
    """Approval flows: records starts and resumes; a test plays the state machine's steps itself."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.inputs: dict[str, tuple[bool, int]] = {}  # request id -> (auto_approve, approval_window_seconds)
        self.resumed: list[tuple[str, Decision]] = []
        self.executions: dict[str, ExecutionStatus] = {}

    def start(self, request_id: str, *, auto_approve: bool, approval_window_seconds: int) -> bool:
        if request_id in self.executions:  # one execution per request, named after it
            return False
        self.started.append(request_id)
        self.inputs[request_id] = (auto_approve, approval_window_seconds)
        self.executions[request_id] = "RUNNING"
        return True

    def resume(self, task_token: str, decision: Decision) -> None:
        self.resumed.append((task_token, decision))

    def status(self, request_id: str) -> ExecutionStatus | None:
        return self.executions.get(request_id)


class FakeNotifier:
    def __init__(self) -> None:
        self.sent: list[Notification] = []

    def send(self, notification: Notification) -> None:
        self.sent.append(notification)


class FakeEventPublisher:
    def __init__(self) -> None:
        self.published: list[AuditEvent] = []

    def publish(self, event: AuditEvent) -> None:
        self.published.append(event.model_copy(deep=True))


def _no_sleep(_: float) -> None:
    """Sleeping moves nothing: the clock moves only when a test advances it."""


@dataclass
class FakeDependencies:
    """`ports.Dependencies` on the fakes, with a clock that moves only when told to."""

    settings: Settings
    clock: FixedClock
    sleep: Callable[[float], None] = _no_sleep
    store: FakeStore = field(default_factory=FakeStore)
    roles: FakeRoleEditor = field(default_factory=FakeRoleEditor)
    schedules: FakeSchedules = field(default_factory=FakeSchedules)
    flow: FakeWorkflow = field(default_factory=FakeWorkflow)
    notifier: FakeNotifier = field(default_factory=FakeNotifier)
    events: FakeEventPublisher = field(default_factory=FakeEventPublisher)


def as_ports(deps: FakeDependencies) -> ports.Dependencies:
    """The fakes as the use cases see them (and mypy's proof that they satisfy every port)."""
    return deps
