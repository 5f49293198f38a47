"""The approval page's wording through the real paths (issue 12, section 7): links from the notifications,
the DecideFunction handler, decisions through the API and the flow on moto.

* a link that expired on a decided request says who decided it and when;
* a denied request carries a red `Denied` badge;
* a refusal says "Nothing was changed" once per page, never twice.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.support.aws import ALICE, BOB, DAVE, World
from tests.support.flows import request_access
from tests.support.links import approval_links, call_page, form_for
from trustgate.core.messages import human_time

pytestmark = pytest.mark.functional

DAVE_PERSON = "dave (IAM user, 222222222222)"


def badge(body: str) -> tuple[str, str]:
    """The page's status badge: (its colour class, its text)."""
    match = re.search(r'<span class="badge ([a-z]*)">([^<]*)</span>', body)
    assert match, "the page has no status badge"
    return match.group(1), match.group(2)


def nothing_changed(body: str) -> int:
    return body.lower().count("nothing was changed")


def decided_by_dave(world: World, decision: str) -> tuple[str, dict[str, str]]:
    request_id = request_access(world, ALICE)["id"]
    links = approval_links(world, request_id)
    world.wait_for_task_token(request_id)
    status, body = world.api("POST", f"/requests/{request_id}/{decision}", DAVE, {"comment": "seen"})
    assert status == 200, body
    world.wait_execution(request_id)
    return request_id, links


def test_an_expired_link_on_a_denied_request_says_who_denied_it_and_when(world: World) -> None:
    request_id, links = decided_by_dave(world, "deny")
    decided_at = world.deps.store.get_request(request_id).approvals[-1].at

    world.advance(timedelta(hours=2, minutes=1))  # past the approval window: bob's link has expired
    page = call_page(world, "GET", links[BOB])

    assert page.status == 403
    assert "This approval link has expired" in page.body
    assert f"{DAVE_PERSON} denied it at {human_time(decided_at)}." in page.body
    assert "The requester can ask again" not in page.body  # it was decided: nobody needs to ask again
    assert badge(page.body) == ("bad", "Denied")


def test_an_expired_link_on_an_approved_request_says_who_approved_it_and_when(world: World) -> None:
    request_id, links = decided_by_dave(world, "approve")
    decided_at = world.deps.store.get_request(request_id).decided_at

    world.advance(timedelta(hours=2, minutes=1))
    page = call_page(world, "GET", links[BOB])

    assert page.status == 403
    assert f"{DAVE_PERSON} approved it at {human_time(decided_at)}." in page.body


def test_an_expired_link_on_a_request_nobody_decided_still_says_ask_again(world: World) -> None:
    request_id = request_access(world, ALICE)["id"]
    links = approval_links(world, request_id)

    world.advance(timedelta(hours=2, minutes=1))
    page = call_page(world, "GET", links[BOB])

    assert page.status == 403
    assert "The requester can ask again" in page.body
    assert " it at " not in page.body  # nobody decided it


def test_a_denied_request_has_a_red_denied_badge_and_says_nothing_changed_once(world: World) -> None:
    _, links = decided_by_dave(world, "deny")

    page = call_page(world, "GET", links[BOB])

    assert page.status == 409
    assert badge(page.body) == ("bad", "Denied")
    assert f"{DAVE_PERSON} denied it at" in page.body
    assert nothing_changed(page.body) == 1


def test_a_used_link_and_a_forged_form_say_nothing_changed_once(world: World) -> None:
    request_id = request_access(world, ALICE)["id"]
    links = approval_links(world, request_id)
    shown = call_page(world, "GET", links[BOB])
    assert call_page(world, "POST", links[BOB], form=form_for(shown.body, "approve")).status == 200

    used = call_page(world, "POST", links[BOB], form=form_for(shown.body, "approve"))
    forged = call_page(world, "POST", links[DAVE], form={**form_for(shown.body, "deny"), "csrf": "forged"})

    assert used.status == 409
    assert nothing_changed(used.body) == 1
    assert forged.status == 403
    assert nothing_changed(forged.body) == 1
