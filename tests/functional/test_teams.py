"""Microsoft Teams through the approval flow (issue 13, section 3): `TeamsWebhookSecretArn` set, the flow's notify
step posts Adaptive Cards, the approver's own chat gets the link as a button, a Teams channel never gets a link."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.support.aws import ALICE, BOB, World
from tests.support.flows import granted, request_access
from tests.support.links import call_page, form_for, received_by
from trustgate.adapters import chat
from trustgate_local.world import running_world, wait_for

pytestmark = pytest.mark.functional

SECRET = "trustgate/teams-webhooks"
# Bob's own chat: a Workflows flow ("post in a chat with Flow bot"); the team's channel: an incoming webhook.
BOB_CHAT = "https://prod-00.westeurope.logic.azure.com/workflows/bob-chat"
CHANNEL = "https://example.webhook.office.com/webhookb2/channel"
ALICE_CHAT = "https://prod-00.westeurope.logic.azure.com/workflows/alice-chat"


@pytest.fixture
def teams_world(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[World, list[tuple[str, dict[str, Any]]]]]:
    posted: list[tuple[str, dict[str, Any]]] = []

    def post(url: str, body: bytes) -> int:  # Teams' side of the webhook
        posted.append((url, json.loads(body)))
        return 202

    monkeypatch.setattr(chat, "post_json", post)
    # Secrets Manager takes a secret's name wherever it takes its ARN; the name is known before the secret exists.
    with running_world({"TeamsWebhookSecretArn": SECRET}) as world:
        world.session.client("secretsmanager").create_secret(
            Name=SECRET, SecretString=json.dumps({BOB: BOB_CHAT, "*": CHANNEL})
        )
        yield world, posted


def cards(posted: list[tuple[str, dict[str, Any]]], url: str) -> list[dict[str, Any]]:
    return [body["attachments"][0]["content"] for to, body in posted if to == url]


def test_the_flow_posts_the_approver_a_card_with_their_link_and_the_channel_one_without(
    teams_world: tuple[World, list[tuple[str, dict[str, Any]]]],
) -> None:
    world, posted = teams_world
    request_id = request_access(world)["id"]

    (bob_card,) = wait_for(lambda: cards(posted, BOB_CHAT), 10, "bob's card")
    (button,) = bob_card["actions"]
    assert button["type"] == "Action.OpenUrl"
    assert button["url"].startswith("http://127.0.0.1:3000/decide/")
    assert any(request_id in block["text"] for block in bob_card["body"])

    channel = wait_for(lambda: cards(posted, CHANNEL), 10, "the channel's card")
    assert all("actions" not in card for card in channel)
    assert "/decide/" not in json.dumps(channel)

    # The button is bob's approval link: approving on its page grants alice the role.
    token = button["url"].rsplit("/decide/", 1)[1]
    page = call_page(world, "GET", token)
    assert page.status == 200
    assert call_page(world, "POST", token, form=form_for(page.body, "approve")).status == 200
    world.wait_status(request_id, "active")


def test_the_outcome_for_the_requester_reaches_the_teams_channel(
    teams_world: tuple[World, list[tuple[str, dict[str, Any]]]],
) -> None:
    world, posted = teams_world
    request_id = request_access(world)["id"]
    world.wait_for_task_token(request_id)
    status, _ = world.api("POST", f"/requests/{request_id}/deny", BOB, {"comment": "not during the freeze"})
    assert status == 200

    wait_for(lambda: "not during the freeze" in json.dumps(cards(posted, CHANNEL)) or None, 10, "the denial's card")


def test_with_chat_webhooks_the_reminder_goes_through_the_expire_function_to_the_holders_chat_too(
    teams_world: tuple[World, list[tuple[str, dict[str, Any]]]],
) -> None:
    world, posted = teams_world
    world.session.client("secretsmanager").put_secret_value(
        SecretId=SECRET, SecretString=json.dumps({BOB: BOB_CHAT, ALICE: ALICE_CHAT, "*": CHANNEL})
    )
    request = granted(world)
    # SNS alone could not reach a chat: the reminder's schedule invokes the function that sends it everywhere.
    target = world.schedule(request["id"], "remind")["Target"]
    assert target["Arn"] == world.stack.functions["ExpireFunction"].arn
    world.advance(timedelta(minutes=51))
    assert world.fire_schedule(request["id"], "remind") == {"request_id": request["id"], "reminded": True}
    assert any(
        request["id"] in json.dumps(card) and "ends at" in json.dumps(card) for card in cards(posted, ALICE_CHAT)
    )
    assert [s.event for s in received_by(world, ALICE) if s.event == "grant.expiring"] == ["grant.expiring"]
