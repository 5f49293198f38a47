"""Who sees which requests and audit events, page by page; and the admin-only role use cases refuse anyone else.

Three roles: dave administers two of them (A and B), carol (the bootstrap admin) all three. Requests of role C
sit between theirs, as they would in the table's all-requests index, so a page of dave's must be filled from
several store pages, and following `next` must give every one of his requests exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from tests.usecases.conftest import CAROL, DAVE, JUSTIFICATION, MANAGEMENT, MEMBER, SETTINGS, VENDOR_TRUST, caller
from trustgate.app import audit, requests, roles
from trustgate.core.clock import FixedClock
from trustgate.core.errors import ForbiddenError
from trustgate.core.models import AccessRequest, AuditEvent, RequestStatus, RolePolicy
from trustgate.core.records import PAGES_TO_FILL, Page
from trustgate_local.fakes import FakeDependencies

pytestmark = pytest.mark.unit

ROLE_A, ROLE_B, ROLE_C = (f"arn:aws:iam::{MANAGEMENT}:role/{name}" for name in ("RoleA", "RoleB", "RoleC"))
ALICE = f"arn:aws:iam::{MEMBER}:user/alice"


@pytest.fixture
def three_roles(deps: FakeDependencies) -> FakeDependencies:
    fakes = FakeDependencies(SETTINGS.model_copy(update={"managed_role_arns": [ROLE_A, ROLE_B, ROLE_C]}), deps.clock)
    assert isinstance(fakes.clock, FixedClock)
    for number, role in enumerate((ROLE_A, ROLE_B, ROLE_C)):
        fakes.roles.add_role(role, VENDOR_TRUST, f"AROAEXAMPLEROLEID000{number}")
    for role in (ROLE_A, ROLE_B):
        roles.change_policy(fakes, caller(CAROL), role, RolePolicy(admins=[CAROL, DAVE]), dry_run=False)
    return fakes


def ask(deps: FakeDependencies, role: str, user: str) -> AccessRequest:
    deps.clock.advance(timedelta(seconds=1))  # newest first: each request a second after the last
    new = requests.NewRequest(role=role, duration=timedelta(hours=1), justification=JUSTIFICATION)
    return requests.create_request(deps, caller(f"arn:aws:iam::{MEMBER}:user/{user}"), new)


def every_page[T](read: Callable[[str | None, int], Page[T]], limit: int) -> list[Page[T]]:
    """Follow `next` from the first page to the last."""
    pages = [read(None, limit)]
    while pages[-1].next is not None:
        pages.append(read(pages[-1].next, limit))
    return pages


def request_pages(deps: FakeDependencies, who: str, **query: Any) -> Callable[[str | None, int], Page[AccessRequest]]:
    def read(cursor: str | None, limit: int) -> Page[AccessRequest]:
        return requests.list_requests(deps, caller(who), requests.RequestQuery(cursor=cursor, limit=limit, **query))

    return read


def audit_pages(deps: FakeDependencies, who: str) -> Callable[[str | None, int], Page[AuditEvent]]:
    def read(cursor: str | None, limit: int) -> Page[AuditEvent]:
        return audit.audit_trail(deps, caller(who), audit.AuditQuery(cursor=cursor, limit=limit))

    return read


def test_an_admin_of_some_roles_gets_full_pages_of_their_roles_requests_and_each_once(
    three_roles: FakeDependencies,
) -> None:
    deps = three_roles
    theirs = [ask(deps, ROLE_A, "u0")]
    theirs.append(ask(deps, ROLE_B, "u1"))
    for i in range(7):
        ask(deps, ROLE_C, f"c{i}")
    theirs.append(ask(deps, ROLE_A, "u2"))
    for i in range(7, 14):
        ask(deps, ROLE_C, f"c{i}")
    theirs.append(ask(deps, ROLE_B, "u3"))

    pages = every_page(request_pages(deps, DAVE), limit=2)

    # Full pages until the last: no page is empty or short while more of dave's requests follow.
    assert [len(page.items) for page in pages] == [2, 2]
    listed = [r.id for page in pages for r in page.items]
    assert listed == [r.id for r in reversed(theirs)]  # newest first, each once, none of role C
    # The bootstrap admin sees all 18, in pages of 5.
    everything = every_page(request_pages(deps, CAROL), limit=5)
    assert [len(page.items) for page in everything] == [5, 5, 5, 3]


def test_a_page_is_short_only_after_many_store_pages_held_nothing_the_caller_may_see(
    three_roles: FakeDependencies,
) -> None:
    deps = three_roles
    old = ask(deps, ROLE_A, "u0")
    for i in range(PAGES_TO_FILL + 3):  # more of role C in a row than one listing reads for a page of 1
        ask(deps, ROLE_C, f"c{i}")

    first = requests.list_requests(deps, caller(DAVE), requests.RequestQuery(limit=1))
    assert (first.items, first.next is not None) == ([], True)  # bounded work; `next` goes on from there
    pages = every_page(request_pages(deps, DAVE), limit=1)
    assert [r.id for page in pages for r in page.items] == [old.id]


def test_a_requester_sees_only_their_own_requests_and_the_status_filter_holds(three_roles: FakeDependencies) -> None:
    deps = three_roles
    on_a = ask(deps, ROLE_A, "alice")
    on_c = ask(deps, ROLE_C, "alice")
    ask(deps, ROLE_A, "bob")
    requests.cancel_request(deps, caller(ALICE), on_c.id)

    def listed(**query: Any) -> list[str]:
        pages = every_page(request_pages(deps, ALICE, **query), limit=1)
        return [r.id for page in pages for r in page.items]

    assert listed() == [on_c.id, on_a.id]
    assert listed(role="RoleA") == [on_a.id]
    assert listed(status=RequestStatus.CANCELLED) == [on_c.id]
    # An admin asking for only their own gets only their own (dave asked for nothing).
    assert every_page(request_pages(deps, DAVE, mine=True), limit=5)[0].items == []


def test_an_admin_of_some_roles_reads_only_their_roles_audit_in_full_pages(three_roles: FakeDependencies) -> None:
    deps = three_roles
    for i in range(6):
        ask(deps, ROLE_C, f"c{i}")
    ask(deps, ROLE_A, "u0")
    for i in range(6, 12):
        ask(deps, ROLE_C, f"c{i}")
    ask(deps, ROLE_B, "u1")

    pages = every_page(audit_pages(deps, DAVE), limit=2)
    assert [len(page.items) for page in pages] == [2, 2]  # full pages, though role C's events sit between
    events = [e for page in pages for e in page.items]
    # Two policy changes and two requests: every event of roles A and B, none of C.
    actions = sorted((e.role_arn or "", e.action) for e in events)
    assert actions == sorted(
        [
            (ROLE_A, "policy.changed"),
            (ROLE_B, "policy.changed"),
            (ROLE_A, "request.created"),
            (ROLE_B, "request.created"),
        ]
    )
    with pytest.raises(ForbiddenError):
        audit.audit_trail(deps, caller(ALICE), audit.AuditQuery())


def test_the_admin_only_role_use_cases_refuse_anyone_else_and_change_nothing(three_roles: FakeDependencies) -> None:
    deps = three_roles
    held = ask(deps, ROLE_C, "alice")
    writes = list(deps.roles.writes)
    stored = deps.store.get_stored_policy(ROLE_C)

    with pytest.raises(ForbiddenError):  # dave administers A and B, not C
        roles.revoke_person(deps, caller(DAVE), ROLE_C, ALICE, "not his role")
    with pytest.raises(ForbiddenError):
        roles.change_policy(deps, caller(DAVE), ROLE_C, RolePolicy(admins=[DAVE]), dry_run=False)
    with pytest.raises(ForbiddenError):  # refused before its If-Match is even parsed
        roles.change_policy(deps, caller(DAVE), ROLE_C, RolePolicy(admins=[DAVE]), dry_run=True, if_match="bogus")
    with pytest.raises(ForbiddenError):
        roles.policy_view(deps, caller(DAVE), ROLE_C)
    with pytest.raises(ForbiddenError):
        roles.role_overview(deps, caller(DAVE), ROLE_C)
    with pytest.raises(ForbiddenError):
        roles.revoke_person(deps, caller(DAVE), ROLE_C, "not a principal at all", None)
    with pytest.raises(ForbiddenError):
        roles.administered_roles(deps, caller(ALICE))
    assert [o.role_arn for o in roles.administered_roles(deps, caller(DAVE))] == [ROLE_A, ROLE_B]
    with pytest.raises(ForbiddenError):
        roles.sync_now(deps, caller(ALICE), ROLE_C)

    assert deps.store.get_request(held.id).status == RequestStatus.PENDING
    assert deps.store.get_stored_policy(ROLE_C) == stored
    assert deps.roles.writes == writes
