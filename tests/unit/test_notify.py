"""The SNS adapter: personal messages to the personal topic, team copies (never a link) to the shared one."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support.samples import ALICE, BOB, DAVE, a_request
from trustgate.adapters.notify import (
    GUARD_CACHE_SECONDS,
    DeliveryGuard,
    Notifier,
    reach,
    recipient_filter,
    subscribe_command,
)
from trustgate.adapters.scheduler import ExpirySchedules
from trustgate.core import messages
from trustgate.core.models import RequestStatus

pytestmark = pytest.mark.unit

SHARED = "arn:aws:sns:us-east-1:123456789012:trustgate-NotificationTopic"
PERSONAL = "arn:aws:sns:us-east-1:123456789012:trustgate-PersonalTopic"
LINK = "https://api.example/prod/decide/BOBS-TOKEN"


class FakeSns:
    """Records publishes; holds subscriptions as (topic, protocol, endpoint, filter policy or None)."""

    def __init__(self, subscriptions: list[tuple[str, str, str, dict[str, Any] | None]] | None = None) -> None:
        self.subscriptions = subscriptions or []
        self.published: list[dict[str, Any]] = []
        self.reads = 0

    def publish(self, **kwargs: Any) -> dict[str, str]:
        self.published.append(kwargs)
        return {"MessageId": "1"}

    def get_paginator(self, name: str) -> Any:
        assert name == "list_subscriptions_by_topic"
        fake = self

        class Pages:
            def paginate(self, TopicArn: str) -> list[dict[str, Any]]:
                fake.reads += 1
                listed = [
                    {"SubscriptionArn": f"{topic}:{i}", "Protocol": protocol, "Endpoint": endpoint, "TopicArn": topic}
                    for i, (topic, protocol, endpoint, _) in enumerate(fake.subscriptions)
                    if topic == TopicArn
                ]
                return [{"Subscriptions": listed}]

        return Pages()

    def get_subscription_attributes(self, SubscriptionArn: str) -> dict[str, Any]:
        _, _, _, policy = self.subscriptions[int(SubscriptionArn.rsplit(":", 1)[1])]
        return {"Attributes": {"FilterPolicy": json.dumps(policy)} if policy else {}}

    def sent(self, topic: str) -> list[dict[str, Any]]:
        return [p for p in self.published if p["TopicArn"] == topic]


def attributes(published: dict[str, Any]) -> dict[str, str]:
    return {k: v["StringValue"] for k, v in published["MessageAttributes"].items()}


@pytest.mark.parametrize(
    ("policy", "scope", "verdict"),
    [
        (None, None, "shared"),
        ({"recipient": [BOB]}, None, "only"),
        ({"recipient": [DAVE]}, None, "none"),
        ({"recipient": [BOB, DAVE]}, None, "shared"),
        ({"recipient": [{"prefix": "arn:aws:iam::222222222222:user/"}]}, None, "shared"),
        ({"recipient": [{"anything-but": DAVE}]}, None, "shared"),
        ({"event": ["approval.requested"]}, None, "shared"),
        ({"$or": [{"recipient": [BOB]}, {"event": ["x"]}]}, None, "shared"),
        ({"recipient": [BOB]}, "MessageBody", "shared"),
    ],
)
def test_reach_judges_whether_a_subscription_is_the_recipients_alone(
    policy: dict[str, Any] | None, scope: str | None, verdict: str
) -> None:
    assert reach(json.dumps(policy) if policy else None, scope, BOB) == verdict


def test_a_link_goes_to_the_personal_topic_only_with_the_recipient_attribute() -> None:
    sns = FakeSns([(PERSONAL, "email", "bob@example.com", recipient_filter(BOB)), (SHARED, "email", "team@x", None)])
    notifier = Notifier(sns, SHARED, PERSONAL)  # type: ignore[arg-type]

    notifier.send(messages.approval_needed(a_request(), BOB, LINK))

    [personal] = sns.sent(PERSONAL)
    assert attributes(personal).items() >= {"recipient": BOB, "personal": "true", "event": "approval.requested"}.items()
    assert LINK in json.loads(personal["Message"])["email"]
    assert LINK not in json.loads(personal["Message"])["default"]  # the chat card never holds it
    assert sns.sent(SHARED) == []


def test_the_team_copy_and_requester_news_reach_the_shared_topic_without_links() -> None:
    sns = FakeSns()
    notifier = Notifier(sns, SHARED, PERSONAL)  # type: ignore[arg-type]

    notifier.send(messages.request_notice(a_request()))
    notifier.send(messages.outcome_for_requester(a_request(status=RequestStatus.DENIED), "no"))

    shared = sns.sent(SHARED)
    assert [attributes(p)["personal"] for p in shared] == ["false", "false"]
    assert [attributes(p)["recipient"] for p in shared] == [messages.TEAM, ALICE]
    assert [attributes(p)["recipient"] for p in sns.sent(PERSONAL)] == [ALICE]  # alice's own copy
    assert "/decide/" not in json.dumps(shared)


@pytest.mark.parametrize(
    ("subscriptions", "why"),
    [
        ([(PERSONAL, "email", "team@example.com", None)], "does not name exactly one recipient"),
        ([(PERSONAL, "email", "both@example.com", {"recipient": [BOB, DAVE]})], "does not name exactly one"),
        (
            [
                (PERSONAL, "email", "team@example.com", recipient_filter(BOB)),
                (SHARED, "email", "team@example.com", None),
            ],
            "also receives the shared notification topic",
        ),
    ],
)
def test_a_link_is_withheld_while_a_delivery_that_would_receive_it_is_not_the_approvers_alone(
    subscriptions: list[tuple[str, str, str, dict[str, Any] | None]], why: str
) -> None:
    sns = FakeSns(subscriptions)
    notifier = Notifier(sns, SHARED, PERSONAL)  # type: ignore[arg-type]

    notifier.send(messages.approval_needed(a_request(required_approvals=2), BOB, LINK))

    assert "BOBS-TOKEN" not in json.dumps(sns.published)
    [personal] = sns.sent(PERSONAL)
    assert "Your approval link was withheld" in json.loads(personal["Message"])["email"]
    assert why in json.loads(personal["Message"])["email"]
    [warning] = sns.sent(SHARED)
    assert attributes(warning)["event"] == "approval.link_withheld"


def test_a_guard_that_cannot_read_the_subscriptions_fails_closed() -> None:
    class Broken(FakeSns):
        def get_paginator(self, name: str) -> Any:
            raise RuntimeError("AccessDenied")

    sns = Broken()
    Notifier(sns, SHARED, PERSONAL).send(messages.approval_needed(a_request(), BOB, LINK))  # type: ignore[arg-type]

    assert "BOBS-TOKEN" not in json.dumps(sns.published)


def test_the_subscriptions_are_read_once_a_minute() -> None:
    sns = FakeSns([(PERSONAL, "email", "bob@example.com", recipient_filter(BOB))])
    now = [0.0]
    guard = DeliveryGuard(sns, PERSONAL, SHARED, clock=lambda: now[0])  # type: ignore[arg-type]

    assert guard.problem(BOB) is None
    sns.subscriptions.append((PERSONAL, "email", "team@example.com", None))
    assert guard.problem(BOB) is None  # cached
    now[0] += GUARD_CACHE_SECONDS + 1
    assert guard.problem(BOB) is not None


def test_without_a_personal_topic_nothing_personal_is_published() -> None:
    sns = FakeSns()
    Notifier(sns, SHARED, "").send(messages.approval_needed(a_request(), BOB, LINK))  # type: ignore[arg-type]
    assert sns.published == []


def test_the_subscribe_command_filters_on_the_one_recipient() -> None:
    command = subscribe_command(PERSONAL, BOB, "bob@example.com")

    assert command.startswith(f"aws sns subscribe --topic-arn {PERSONAL} --protocol email")
    assert "--notification-endpoint bob@example.com" in command
    attributes_json = command.split("--attributes ", 1)[1].strip("'")
    assert json.loads(json.loads(attributes_json)["FilterPolicy"]) == {"recipient": [BOB]}


class FakeScheduler:
    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []

    def create_schedule(self, **kwargs: Any) -> None:
        self.created.append(kwargs)


def test_a_reminder_schedule_publishes_what_the_notifier_would_and_never_stores_a_link() -> None:
    role = "arn:aws:iam::123456789012:role/trustgate-SchedulerRole"
    scheduler = FakeScheduler()
    schedules = ExpirySchedules(scheduler, "group", "arn:expire", role, "", "", PERSONAL)  # type: ignore[arg-type]
    request = a_request().model_copy(
        update={"status": RequestStatus.ACTIVE, "expires_at": datetime(2026, 12, 1, 12, 10, tzinfo=UTC)}
    )
    reminder = messages.expiring_soon(request)
    at = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    schedules.create("R1", at, "remind", reminder)

    (made,) = scheduler.created
    sns = FakeSns()
    Notifier(sns, SHARED, PERSONAL).send(reminder)  # type: ignore[arg-type]
    assert made["Target"]["Arn"] == "arn:aws:scheduler:::aws-sdk:sns:publish"
    assert json.loads(made["Target"]["Input"]) == sns.sent(PERSONAL)[0]  # the same Publish request, byte for byte
    with pytest.raises(ValueError, match="never carries an approval link"):
        schedules.create("R1", at, "remind", messages.approval_needed(a_request(), BOB, LINK))
    assert len(scheduler.created) == 1
