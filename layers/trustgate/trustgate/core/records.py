"""Values the ports speak in (pure: no boto3), shared by the application layer and the adapters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from trustgate.core.clock import to_rfc3339
from trustgate.core.models import AccessRequest, RolePolicy
from trustgate.core.trust_policy import Document


@dataclass(frozen=True)
class Page[T]:
    items: list[T]
    next: str | None


@dataclass(frozen=True)
class StoredPolicy:
    """A role policy as stored: its version (0 = never saved), and what TrustGate keeps on record with it."""

    policy: RolePolicy
    version: int
    # The role's hand-written statements when an admin set a mode (see trust_policy.drift_in); None without a mode.
    hand_written: tuple[dict[str, Any], ...] | None = None
    # Why this version could not be rendered (then syncs keep the standing access IAM holds until it is saved again).
    unrenderable: str | None = None
    # When this version was saved (None for versions saved before TrustGate kept it).
    changed_at: datetime | None = None


@dataclass(frozen=True)
class SyncQueue:
    """A role's lock and its queue of changes waiting for a sync (see sync.sync_role)."""

    wanted: int  # changes recorded so far (each change's ticket is the count after it)
    done: int  # every change up to this ticket was verified in IAM by a round that started after it
    activate: frozenset[str]  # approved requests waiting to be activated
    changed: frozenset[str]  # requests whose changed record the next round must read consistently
    owner: str | None
    lease_until: datetime | None
    intent: dict[str, Any] | None  # IAM writes a holder began and had not yet audited

    def is_free(self, now: datetime) -> bool:
        return self.owner is None or self.lease_until is None or self.lease_until < now


@dataclass(frozen=True)
class LiveRole:
    """What IAM holds for a managed role, as far as TrustGate renders it."""

    trust_policy: Document
    role_id: str  # AROA…: inside the role a session's aws:userid is <role_id>:<session name>
    guard: Document | None  # TrustGate's session-guard inline policy, if present
    other_inline_size: int  # characters the role's other inline policies use (shared 10,240 quota)


# A grant's one-time schedules: its expiry, the reminder before it, and (a scheduled request) its start.
ScheduleKind = Literal["expire", "remind", "start"]
SCHEDULE_KINDS: tuple[ScheduleKind, ...] = ("expire", "remind", "start")


@dataclass(frozen=True)
class ScheduleRef:
    """One of TrustGate's schedules, as the group lists it."""

    request_id: str
    kind: ScheduleKind


# A decision handed to a waiting approval flow, and what Step Functions says of an execution (RUNNING,
# SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE).
Decision = Literal["approve", "deny", "cancelled"]
ExecutionStatus = str


def iterate_pages[T](fetch: Callable[[str | None], Page[T]]) -> Iterator[T]:
    """Yield every item of a paginated store query: `fetch(cursor) -> Page`."""
    cursor: str | None = None
    while True:
        page = fetch(cursor)
        yield from page.items
        if not page.next:
            return
        cursor = page.next


PAGES_TO_FILL = 10  # store pages `filled_page` reads at most to fill one page with items the caller may see


def filled_page[T](
    fetch: Callable[[str | None, int], Page[T]], keep: Callable[[T], bool], cursor: str | None, limit: int
) -> Page[T]:
    """A page of up to `limit` kept items, read from the store a page at a time (`fetch(cursor, how_many)`), each
    read asking only for as many as are still missing, so the returned `next` never skips an item. It holds
    `limit` items unless the store has no more (on DynamoDB a page that ends exactly at the last item may still
    carry a `next`, whose page is then empty); fewer only when PAGES_TO_FILL store pages in a row held too few
    kept ones (`next` then goes on from there). At most PAGES_TO_FILL queries and PAGES_TO_FILL x `limit` items."""
    found: list[T] = []
    for _ in range(PAGES_TO_FILL):
        page = fetch(cursor, limit - len(found))
        found += [item for item in page.items if keep(item)]
        cursor = page.next
        if cursor is None or len(found) >= limit:
            break
    return Page(found, cursor)


def role_key(request: AccessRequest) -> str:
    """A request's place in its role's index (`ByRole`, after its status): when it could begin (a scheduled
    request's `start_at`, else when it was made), so the grants that may have begun since T are one range of the
    index whether they were scheduled or not (`recent_grants`)."""
    return f"{to_rfc3339(request.start_at or request.created_at)}#{request.id}"
