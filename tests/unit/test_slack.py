"""The optional Slack webhook adapter: routing, Block Kit, and never a personal link in a shared channel."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from tests.support.samples import BOB, DAVE
from tests.support.samples import a_request as sample_request
from trustgate.adapters.slack import CACHE_SECONDS, FanOut, SlackNotifier, SlackWebhooks, block_kit
from trustgate.core import messages
from trustgate.core.models import AccessRequest, RequestStatus

pytestmark = pytest.mark.unit

LINK = "https://api.example/prod/decide/PERSONAL-TOKEN"
BOB_DM = "https://hooks.slack.com/services/T0/B0/bob"
CHANNEL = "https://hooks.slack.com/services/T0/B0/channel"


class Secret:
    def __init__(self, routes: dict[str, str]) -> None:
        self.value = json.dumps(routes)
        self.reads = 0

    def get_secret_value(self, *, SecretId: str) -> Mapping[str, Any]:
        self.reads += 1
        return {"SecretString": self.value}


def a_request(**changes: object) -> AccessRequest:
    return sample_request(**{"justification": "<!channel> rotate the bucket & keys", **changes})


def notifier(routes: dict[str, str]) -> tuple[SlackNotifier, list[tuple[str, dict[str, Any]]]]:
    posted: list[tuple[str, dict[str, Any]]] = []

    def post(url: str, body: bytes) -> int:
        posted.append((url, json.loads(body)))
        return 200

    return SlackNotifier(SlackWebhooks(Secret(routes), "arn:secret"), post), posted


def test_an_approvers_own_webhook_gets_a_button_to_their_page() -> None:
    slack, posted = notifier({BOB: BOB_DM, "*": CHANNEL})

    slack.send(messages.approval_needed(a_request(), BOB, LINK))

    assert [url for url, _ in posted] == [BOB_DM]
    buttons = [b for b in posted[0][1]["blocks"] if b["type"] == "actions"]
    assert buttons[0]["elements"][0]["url"] == LINK


def test_a_shared_channel_never_sees_a_personal_link_nor_one_copy_per_approver() -> None:
    slack, posted = notifier({"*": CHANNEL})

    slack.send(messages.approval_needed(a_request(), BOB, LINK))
    slack.send(messages.already_decided(a_request(status=RequestStatus.CANCELLED), DAVE))
    slack.send(messages.request_notice(a_request(), "ops@example.com"))  # a role policy `notify` target
    slack.send(messages.request_notice(a_request()))  # the team copy
    slack.send(messages.outcome_for_requester(a_request(status=RequestStatus.DENIED), "no"))

    assert [url for url, _ in posted] == [CHANNEL, CHANNEL]
    assert "PERSONAL-TOKEN" not in json.dumps(posted)
    assert "/decide/" not in json.dumps(posted)
    assert not any(b["type"] == "actions" for _, body in posted for b in body["blocks"])


@pytest.mark.parametrize(
    "routes",
    [
        {BOB: CHANNEL, "*": CHANNEL},  # bob's "own" webhook is the shared channel
        {BOB: BOB_DM, DAVE: BOB_DM},  # one webhook for two approvers: a 2-of-2 quorum in one place
    ],
)
def test_a_webhook_that_is_not_the_approvers_alone_never_gets_the_link(routes: dict[str, str]) -> None:
    slack, posted = notifier(routes)

    slack.send(messages.approval_needed(a_request(required_approvals=2), BOB, LINK))
    slack.send(messages.approval_needed(a_request(required_approvals=2), DAVE, LINK.replace("PERSONAL", "DAVES")))

    assert posted, "the approvers still hear of the request"
    assert "TOKEN" not in json.dumps(posted)
    assert not any(b["type"] == "actions" for _, body in posted for b in body["blocks"])


def test_the_message_text_never_carries_the_link_only_the_button_does() -> None:
    body = block_kit(messages.approval_needed(a_request(), BOB, LINK), with_link=True)

    texts = json.dumps([b for b in body["blocks"] if b["type"] != "actions"]) + body["text"]
    assert "PERSONAL-TOKEN" not in texts
    assert [b["elements"][0]["url"] for b in body["blocks"] if b["type"] == "actions"] == [LINK]


def test_a_justification_link_is_defanged_and_cannot_be_a_slack_link() -> None:
    phishing = "urgent <https://evil.example/decide/x|Approve here> see https://evil.example/decide/y"
    body = block_kit(messages.request_notice(a_request(justification=phishing)), with_link=False)

    rendered = json.dumps(body)
    assert "://evil" not in rendered  # defanged: https[:]//evil[.]example, with the brackets escaped
    assert "evil" in rendered
    assert "<https" not in rendered


def test_request_text_cannot_ping_or_link_in_slack() -> None:
    body = block_kit(messages.approval_needed(a_request(), BOB, None), with_link=False)

    section = body["blocks"][1]["text"]["text"]
    assert "&lt;!channel" in section  # shown, escaped: Slack sees no control sequence
    assert "&amp; keys" in section
    assert "<!channel>" not in json.dumps(body)


def test_the_secret_is_cached_and_re_read_after_a_while() -> None:
    secret = Secret({BOB: BOB_DM})
    now = [0.0]
    webhooks = SlackWebhooks(secret, "arn:secret", clock=lambda: now[0])

    webhooks.routes()
    webhooks.routes()
    now[0] += CACHE_SECONDS + 1
    webhooks.routes()

    assert secret.reads == 2


def test_non_https_webhooks_are_ignored() -> None:
    webhooks = SlackWebhooks(Secret({BOB: "http://hooks.example/bob"}), "arn:secret")
    assert webhooks.urls_for(messages.approval_needed(a_request(), BOB, LINK)) == []


def test_fan_out_sends_through_every_sink_even_when_one_fails() -> None:
    delivered: list[str] = []

    class Broken:
        def send(self, notification: messages.Notification) -> None:
            raise RuntimeError("slack is down")

    class Recorder:
        def send(self, notification: messages.Notification) -> None:
            delivered.append(notification.event)

    with pytest.raises(RuntimeError):
        FanOut([Broken(), Recorder()]).send(messages.approval_needed(a_request(), BOB, LINK))
    assert delivered == ["approval.requested"]
