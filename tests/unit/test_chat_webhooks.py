"""The optional chat webhooks (Slack, Teams): routing, their message shapes, and never a personal link in a shared
channel, whichever service it is."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import pytest

from tests.support.samples import BOB, DAVE
from tests.support.samples import a_request as sample_request
from trustgate.adapters.chat import CACHE_SECONDS, ChatNotifier, FanOut, Render, WebhookRoutes
from trustgate.adapters.slack import block_kit
from trustgate.adapters.teams import adaptive_card, may_carry_link
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


def notifier(
    routes: dict[str, str], render: Render = block_kit
) -> tuple[ChatNotifier, list[tuple[str, dict[str, Any]]]]:
    posted: list[tuple[str, dict[str, Any]]] = []

    def post(url: str, body: bytes) -> int:
        posted.append((url, json.loads(body)))
        return 200

    return ChatNotifier(WebhookRoutes(Secret(routes), "arn:secret"), render, post), posted


def buttons(body: dict[str, Any]) -> list[str]:
    """The URLs a message's buttons open, in Slack's Block Kit or in a Teams Adaptive Card."""
    if "blocks" in body:
        return [e["url"] for b in body["blocks"] if b["type"] == "actions" for e in b["elements"]]
    return [a["url"] for attachment in body["attachments"] for a in attachment["content"].get("actions", [])]


RENDERERS = pytest.mark.parametrize("render", [block_kit, adaptive_card], ids=["slack", "teams"])


@RENDERERS
def test_an_approvers_own_webhook_gets_a_button_to_their_page(render: Render) -> None:
    chat, posted = notifier({BOB: BOB_DM, "*": CHANNEL}, render)

    chat.send(messages.approval_needed(a_request(), BOB, LINK))

    assert [url for url, _ in posted] == [BOB_DM]
    assert buttons(posted[0][1]) == [LINK]


@RENDERERS
def test_a_shared_channel_never_sees_a_personal_link_nor_one_copy_per_approver(render: Render) -> None:
    slack, posted = notifier({"*": CHANNEL}, render)

    slack.send(messages.approval_needed(a_request(), BOB, LINK))
    slack.send(messages.already_decided(a_request(status=RequestStatus.CANCELLED), DAVE))
    slack.send(messages.request_notice(a_request(), "ops@example.com"))  # a role policy `notify` target
    slack.send(messages.request_notice(a_request()))  # the team copy
    slack.send(messages.outcome_for_requester(a_request(status=RequestStatus.DENIED), "no"))

    assert [url for url, _ in posted] == [CHANNEL, CHANNEL]
    assert "PERSONAL-TOKEN" not in json.dumps(posted)
    assert "/decide/" not in json.dumps(posted)
    assert not [url for _, body in posted for url in buttons(body)]


@pytest.mark.parametrize(
    "routes",
    [
        {BOB: CHANNEL, "*": CHANNEL},  # bob's "own" webhook is the shared channel
        {BOB: BOB_DM, DAVE: BOB_DM},  # one webhook for two approvers: a 2-of-2 quorum in one place
    ],
)
@RENDERERS
def test_a_webhook_that_is_not_the_approvers_alone_never_gets_the_link(routes: dict[str, str], render: Render) -> None:
    slack, posted = notifier(routes, render)

    slack.send(messages.approval_needed(a_request(required_approvals=2), BOB, LINK))
    slack.send(messages.approval_needed(a_request(required_approvals=2), DAVE, LINK.replace("PERSONAL", "DAVES")))

    assert posted, "the approvers still hear of the request"
    assert "TOKEN" not in json.dumps(posted)
    assert not [url for _, body in posted for url in buttons(body)]


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
    webhooks = WebhookRoutes(secret, "arn:secret", clock=lambda: now[0])

    webhooks.routes()
    webhooks.routes()
    now[0] += CACHE_SECONDS + 1
    webhooks.routes()

    assert secret.reads == 2


def test_non_https_webhooks_are_ignored() -> None:
    webhooks = WebhookRoutes(Secret({BOB: "http://hooks.example/bob"}), "arn:secret")
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


def test_the_teams_card_carries_the_request_its_commands_and_the_link_only_as_its_button() -> None:
    body = adaptive_card(messages.approval_needed(a_request(), BOB, LINK), True)

    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    texts = [block["text"] for block in card["body"]]
    assert texts[0].startswith("[TrustGate] alice")
    assert any(text.startswith("*Role:*") and "PumpCustomerAccess" in text for text in texts)
    assert any("trustgate approve" in text for text in texts)
    assert "PERSONAL-TOKEN" not in json.dumps(card["body"]) + body["summary"]
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open approval page", "url": LINK}]
    assert (
        "actions"
        not in adaptive_card(messages.approval_needed(a_request(), BOB, LINK), False)["attachments"][0]["content"]
    )


def test_request_text_in_a_teams_card_is_inert_markdown_and_links_are_defanged() -> None:
    phishing = "[Approve here](https://evil.example/decide/x) **urgent** <at>everyone</at>"
    body = adaptive_card(messages.request_notice(a_request(justification=phishing)), False)

    rendered = json.dumps(body)
    assert "://evil" not in rendered
    justification = next(b["text"] for b in body["attachments"][0]["content"]["body"] if "Justification" in b["text"])
    assert "\\[Approve here\\]" in justification  # escaped: no markdown link
    assert "\\*\\*urgent\\*\\*" in justification  # no bold
    assert "<at>" not in rendered  # no mention markup
    assert not buttons(body)


def test_slack_and_teams_are_sent_side_by_side_and_a_failing_one_stops_neither_nor_sns() -> None:
    slack, slack_posts = notifier({"*": CHANNEL}, block_kit)
    teams, teams_posts = notifier({"*": "https://example.webhook.office.com/channel"}, adaptive_card)
    delivered: list[str] = []

    class Sns:
        def send(self, notification: messages.Notification) -> None:
            delivered.append(notification.event)

    class Down:
        def send(self, notification: messages.Notification) -> None:
            raise RuntimeError("teams is down")

    notice = messages.request_notice(a_request())
    FanOut([Sns(), slack, teams]).send(notice)
    with pytest.raises(RuntimeError):
        FanOut([Sns(), Down(), slack]).send(notice)

    assert delivered == [notice.event, notice.event]
    assert [url for url, _ in slack_posts] == [CHANNEL, CHANNEL]
    assert [url for url, _ in teams_posts] == ["https://example.webhook.office.com/channel"]


def test_a_teams_incoming_webhook_never_carries_a_link_even_keyed_by_one_approver() -> None:
    """An Office 365 connector posts to a channel, whoever it is keyed by; only a flow to one's own chat can."""
    connector = "https://contoso.webhook.office.com/webhookb2/abc/IncomingWebhook/def"
    workflow = "https://prod-00.westeurope.logic.azure.com:443/workflows/bob/triggers/manual/paths/invoke"
    assert (may_carry_link(connector), may_carry_link(workflow)) == (False, True)
    posted: list[tuple[str, dict[str, Any]]] = []

    def post(url: str, body: bytes) -> int:
        posted.append((url, json.loads(body)))
        return 202

    for bobs_url in (connector, workflow):
        teams = ChatNotifier(WebhookRoutes(Secret({BOB: bobs_url}), "arn:secret"), adaptive_card, post, may_carry_link)
        teams.send(messages.approval_needed(a_request(), BOB, LINK))
    assert [(url, buttons(body)) for url, body in posted] == [(connector, []), (workflow, [LINK])]


def test_a_teams_message_without_a_chat_text_is_plain_text_runs_never_markdown() -> None:
    phishing = "[Open approval page](http:203.0.113.5/decide) ![x](http:1.2.3.4/p.png) **now**"
    notice = messages.outcome_for_requester(
        a_request(status=RequestStatus.DENIED, justification=phishing), comment=phishing
    )
    assert not notice.chat_text  # the case at hand: only `text`

    card = adaptive_card(notice, False)["attachments"][0]["content"]

    blocks = card["body"][1:-1]
    assert blocks
    assert all(block["type"] == "RichTextBlock" for block in blocks)  # TextRuns: Teams renders no markdown there
    runs = [run["text"] for block in blocks for run in block["inlines"]]
    assert any("Open approval page" in run for run in runs)


def test_one_failing_webhook_keeps_no_other_from_its_copy() -> None:
    posted: list[str] = []

    def post(url: str, body: bytes) -> int:
        if url == BOB_DM:
            raise OSError("bob's webhook is gone")
        posted.append(url)
        return 200

    slack = ChatNotifier(WebhookRoutes(Secret({BOB: BOB_DM, "*": CHANNEL}), "arn:secret"), block_kit, post)
    notice = messages.outcome_for_requester(a_request(status=RequestStatus.DENIED), "no")
    with pytest.raises(OSError, match="bob's webhook is gone"):
        slack.send(dataclasses.replace(notice, recipient=BOB))
    assert posted == [CHANNEL]
