"""Approval links reach only their approver: subscribed as a deployment subscribes, read as each subscriber reads.

The world is provisioned from template.yaml with a shared mailbox (`NotificationEmail`, on the shared
topic; locally a queue stands for the inbox), and each approver gets their own delivery the way
docs/notifications.md says: a subscription to the personal topic filtered on their ARN. The requests
go through the HTTP API and the state machine; what each subscriber received is read from its queue by
the local stack's outbox.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.aws import ALICE, BOB, CAROL, DAVE, World, running_world, wait_for
from tests.support.flows import request_access
from tests.support.links import LINK, call_page, form_for
from trustgate.adapters.notify import recipient_filter
from trustgate_local.outbox import Notification, Outbox
from trustgate_local.provision import Mailbox, subscribe_mailbox

pytestmark = pytest.mark.functional

TEAM = "team@example.com"
POLICY = "/roles/PumpCustomerAccess/policy"
PHISHING = (
    "quarterly rotation\n\n"
    "=== Your approval link ================================================\n"
    "Open your approval page to approve or deny (the link is yours alone):\n"
    "https://trustgate-approvals.example/decide/FORGED\n"
    "=== End of your approval link =========================================\n"
)


class Inboxes:
    """Every subscriber's queue, read through the local stack's outbox."""

    def __init__(self, world: World, mailboxes: list[Mailbox]) -> None:
        self.world = world
        self.outbox = Outbox(world.session, mailboxes, world.clock)

    def of(self, subscriber: str, request_id: str | None = None) -> list[Notification]:
        while self.outbox.drain_once():
            pass
        return [
            n
            for n in self.outbox.items()
            if n.subscriber == subscriber and (request_id is None or n.request_id == request_id)
        ]

    def wait(self, subscriber: str, request_id: str, event: str) -> Notification:
        found = wait_for(
            lambda: [n for n in self.of(subscriber, request_id) if n.event == event],
            20,
            f"{event} in {subscriber}'s mailbox",
        )
        assert len(found) == 1, [n.subject for n in found]
        return found[0]


def personal(world: World, name: str, policy: dict[str, Any] | None) -> Mailbox:
    """A subscription to the personal topic: as the docs set one up (`recipient_filter`), or a mistake."""
    topic = world.deps.settings.personal_topic_arn
    return subscribe_mailbox(world.session, name, topic, "personal-" + re.sub(r"[^\w-]", "-", name), policy)


@pytest.fixture
def deployed() -> Iterator[World]:
    with running_world({"NotificationEmail": TEAM}) as world:
        yield world


@pytest.fixture
def inboxes(deployed: World) -> Inboxes:
    [team] = deployed.stack.mailboxes
    assert (team.name, team.topic_arn) == (TEAM, deployed.deps.settings.topic_arn)
    return Inboxes(
        deployed,
        [team, personal(deployed, "bob", recipient_filter(BOB)), personal(deployed, "dave", recipient_filter(DAVE))],
    )


def tokens(text: str) -> list[str]:
    return [match.group("token") for match in LINK.finditer(text)]


def test_each_approvers_link_reaches_only_their_own_subscriber(deployed: World, inboxes: Inboxes) -> None:
    request_id = request_access(deployed)["id"]

    bobs = inboxes.wait("bob", request_id, "approval.requested")
    daves = inboxes.wait("dave", request_id, "approval.requested")
    team = inboxes.wait(TEAM, request_id, "approval.requested")

    assert bobs.recipient == BOB
    assert daves.recipient == DAVE
    assert len(tokens(bobs.text)) == 1
    assert len(tokens(daves.text)) == 1
    assert tokens(bobs.text) != tokens(daves.text)
    assert tokens(daves.text)[0] not in str([n.text for n in inboxes.of("bob")])  # bob never sees dave's link
    assert team.link is None
    assert "/decide/" not in team.text
    assert f"Approvers use their own link or `trustgate approve {request_id}`" in team.text
    # bob's link works for bob: the page approves as him.
    token = tokens(bobs.text)[0]
    page = call_page(deployed, "GET", token)
    assert call_page(deployed, "POST", token, form=form_for(page.body, "approve")).status == 200
    deployed.wait_status(request_id, "active")
    assert deployed.deps.store.get_request(request_id).approvals[0].approver_arn == BOB


def test_the_shared_mailbox_never_receives_a_decide_link_through_a_whole_lifecycle(
    deployed: World, inboxes: Inboxes
) -> None:
    request_id = request_access(deployed)["id"]
    token = tokens(inboxes.wait("bob", request_id, "approval.requested").text)[0]
    page = call_page(deployed, "GET", token)
    call_page(deployed, "POST", token, form=form_for(page.body, "approve"))
    deployed.wait_status(request_id, "active")
    assert deployed.api("POST", f"/requests/{request_id}/revoke", ALICE, {"reason": "done"})[0] == 200

    inboxes.wait(TEAM, request_id, "request.revoked")
    team = inboxes.of(TEAM, request_id)
    assert {n.event for n in team} >= {"approval.requested", "request.active", "request.revoked"}
    assert all(n.link is None and "/decide/" not in n.text for n in team)
    assert "approval.closed" in {n.event for n in inboxes.of("dave", request_id)}  # dave's own news stays his


def test_one_address_filtered_on_two_approvers_gets_neither_link_and_the_team_is_told(deployed: World) -> None:
    """The reported attack: one mailbox holding both links met a 2-of-2 quorum alone. Now it holds none."""
    assert deployed.api("PUT", POLICY, CAROL, {"required_approvals": 2})[0] == 200
    both = personal(deployed, "approvers@example.com", {"recipient": [BOB, DAVE]})
    [team] = deployed.stack.mailboxes
    inboxes = Inboxes(deployed, [team, both])

    request_id = request_access(deployed)["id"]

    received = wait_for(
        lambda: found if len(found := inboxes.of("approvers@example.com", request_id)) >= 2 else None,
        20,
        "both approvers' messages",
    )
    assert all(n.link is None and "/decide/" not in n.text for n in received)
    assert all("Your approval link was withheld" in n.text for n in received)
    warnings = wait_for(
        lambda: (
            w
            if len(w := [n for n in inboxes.of(TEAM, request_id) if n.event == "approval.link_withheld"]) >= 2
            else None
        ),
        20,
        "the team's warnings",
    )
    assert {n.subject.split(" withheld")[0] for n in warnings} == {
        "[TrustGate] Approval link for bob (222222222222)",
        "[TrustGate] Approval link for dave (222222222222)",
    }
    # Deciding still works for each approver, on their own credentials.
    assert deployed.api("POST", f"/requests/{request_id}/approve", BOB, {"comment": "ok"})[0] == 200
    assert deployed.status(request_id) == "pending"


def test_an_unfiltered_subscription_on_the_personal_topic_withholds_every_link(deployed: World) -> None:
    careless = personal(deployed, "everyone@example.com", None)  # no filter policy
    inboxes = Inboxes(deployed, [careless])

    request_id = request_access(deployed)["id"]

    received = wait_for(
        lambda: found if len(found := inboxes.of("everyone@example.com", request_id)) >= 2 else None,
        20,
        "the approvers' messages",
    )
    assert {n.recipient for n in received} == {BOB, DAVE}
    assert all(n.link is None and "/decide/" not in n.text for n in received)
    assert "does not name exactly one recipient" in received[0].text


def test_the_team_mailbox_subscribed_as_bobs_delivery_gets_no_link(deployed: World, inboxes: Inboxes) -> None:
    [team] = deployed.stack.mailboxes
    queue_arn = deployed.session.client("sqs").get_queue_attributes(
        QueueUrl=team.queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    deployed.session.client("sns").subscribe(
        TopicArn=deployed.deps.settings.personal_topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"FilterPolicy": json.dumps(recipient_filter(BOB))},
    )

    request_id = request_access(deployed)["id"]

    wait_for(
        lambda: [n for n in inboxes.of(TEAM, request_id) if n.event == "approval.link_withheld"],
        20,
        "the team's warning",
    )
    assert all("/decide/" not in n.text for n in inboxes.of(TEAM, request_id))
    assert inboxes.wait("bob", request_id, "approval.requested").link is None  # bob's own delivery: told why
    assert inboxes.wait("dave", request_id, "approval.requested").link is not None  # the team never gets dave's


def test_a_phishing_justification_stays_inert_in_the_approvers_email(deployed: World, inboxes: Inboxes) -> None:
    status, body = deployed.api(
        "POST",
        "/requests",
        ALICE,
        {
            "role": "PumpCustomerAccess",
            "duration": "PT1H",
            "justification": PHISHING,
            "ticket": "OPS-1 www.evil.example",
        },
    )
    assert status == 201, body

    email = inboxes.wait("bob", body["id"], "approval.requested").text
    lines = email.splitlines()

    assert len(re.findall(r"https?://\S*/decide/", email)) == 1  # TrustGate's own link, nothing else clickable
    assert lines.count("=== Your approval link " + "=" * 48) == 1
    start = lines.index("=== Your approval link " + "=" * 48)
    end = lines.index("=== End of your approval link " + "=" * 41)
    assert any("/decide/" in line for line in lines[start:end])
    [justification] = [line for line in lines if "FORGED" in line]
    assert justification.startswith("Justification: quarterly rotation === Your approval link")
    assert "https[:]//trustgate-approvals[.]example/decide/FORGED" in justification
    assert lines.index(justification) > end
    assert "Ticket:        OPS-1 www[.]evil[.]example" in lines


def test_notify_targets_hear_of_each_request_once_without_links(deployed: World) -> None:
    ops = "ops@example.com"
    status, body = deployed.api(
        "PUT",
        POLICY,
        CAROL,
        {"notify": [ops, "OPS@example.com", f" {ops} ", BOB, "arn:aws:sns:us-east-1:123456789012:x"]},
    )
    assert status == 200, body
    assert body["policy"]["notify"] == [ops, BOB, "arn:aws:sns:us-east-1:123456789012:x"]
    inboxes = Inboxes(
        deployed, [personal(deployed, "ops", recipient_filter(ops)), personal(deployed, "bob", recipient_filter(BOB))]
    )

    request_id = request_access(deployed)["id"]

    notice = inboxes.wait("ops", request_id, "approval.requested")
    assert notice.recipient == ops
    assert notice.link is None
    assert "/decide/" not in notice.text
    bobs = inboxes.wait("bob", request_id, "approval.requested")  # bob is an approver: his own link, once
    assert bobs.link is not None


def test_the_outbox_says_which_subscriber_received_each_message(deployed: World, inboxes: Inboxes) -> None:
    request_id = request_access(deployed)["id"]
    inboxes.wait("bob", request_id, "approval.requested")
    inboxes.wait("dave", request_id, "approval.requested")
    inboxes.wait(TEAM, request_id, "approval.requested")

    delivered = {(n.subscriber, n.recipient) for n in inboxes.outbox.items() if n.request_id == request_id}

    assert delivered == {("bob", BOB), ("dave", DAVE), (TEAM, "*")}
    assert {n.subscriber for n in inboxes.outbox.items() if n.link} == {"bob", "dave"}
    assert all("subscriber" in n.as_json() for n in inboxes.outbox.items())
