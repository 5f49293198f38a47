"""The SIEM archive's EventBridge rule (template.yaml `AuditArchiveRule`) catches every event TrustGate publishes
and nothing else: its pattern, put on moto's default bus with a queue standing for the delivery stream, receives
one event per audit record of a whole lifecycle (issue 13, section 4)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.aws import CAROL, World
from tests.support.flows import granted
from trustgate_local.template import load_template

pytestmark = pytest.mark.functional

TEMPLATE = load_template(Path(__file__).resolve().parents[2] / "template.yaml")
RULE = TEMPLATE["Resources"]["AuditArchiveRule"]["Properties"]


def archive_queue(world: World) -> str:
    """The archive rule's pattern on the default bus, with an SQS queue as its target (moto delivers no Firehose)."""
    sqs, events = world.session.client("sqs"), world.session.client("events")
    url = sqs.create_queue(QueueName="archive-stand-in")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="archive", EventBusName=RULE["EventBusName"], EventPattern=json.dumps(RULE["EventPattern"]))
    events.put_targets(Rule="archive", EventBusName=RULE["EventBusName"], Targets=[{"Id": "archive", "Arn": arn}])
    return url


def archived(world: World, url: str) -> list[dict[str, Any]]:
    sqs, found = world.session.client("sqs"), []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        found += [json.loads(message["Body"]) for message in messages]
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]} for m in messages]
        )
    return found


def test_every_audit_record_of_a_lifecycle_reaches_the_archive_as_its_event(world: World) -> None:
    url = archive_queue(world)
    request_id = granted(world)["id"]
    assert world.api("POST", f"/requests/{request_id}/revoke", CAROL, {"reason": "done"})[0] == 200

    events = archived(world, url)
    trail = world.api("GET", "/audit", CAROL, query={"limit": "200"})[1]["items"]

    assert {"request.created", "request.approved", "request.granted", "grant.revoked"} <= {e["action"] for e in trail}
    assert sorted(event["detail"]["id"] for event in events) == sorted(record["id"] for record in trail)
    for event in events:
        assert event["source"] == "trustgate"
        assert event["detail-type"] == f"trustgate.{event['detail']['action']}"


@pytest.mark.parametrize(
    ("source", "detail_type", "archived_too"),
    [
        ("trustgate", "trustgate.request.granted", True),
        ("trustgate", "trustgate.policy.changed", True),
        ("aws.iam", "AWS API Call via CloudTrail", False),
        ("trustgate", "Scheduled Event", False),
        ("trustgatex", "trustgate.request.granted", False),
    ],
)
def test_the_rule_takes_trustgates_events_and_no_other(
    world: World, source: str, detail_type: str, archived_too: bool
) -> None:
    url = archive_queue(world)
    world.session.client("events").put_events(
        Entries=[{"Source": source, "DetailType": detail_type, "Detail": "{}", "EventBusName": "default"}]
    )
    assert [(e["source"], e["detail-type"]) for e in archived(world, url)] == (
        [(source, detail_type)] if archived_too else []
    )


def test_the_archive_is_private_encrypted_kept_as_long_as_asked_and_outlives_the_stack() -> None:
    resources = TEMPLATE["Resources"]
    archive = {name: r for name, r in resources.items() if r.get("Condition") == "ArchivesAudit"}
    assert set(archive) == {
        "AuditArchiveBucket",
        "AuditArchiveBucketPolicy",
        "AuditArchiveDeliveryRole",
        "AuditArchiveStream",
        "AuditArchiveRuleRole",
        "AuditArchiveRule",
        "AuditArchiveFailedAlarm",
        "AuditArchiveDeliveryAlarm",
    }
    assert TEMPLATE["Conditions"]["ArchivesAudit"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AuditArchiveRetentionDays"}, "0"]}]
    }
    assert TEMPLATE["Parameters"]["AuditArchiveRetentionDays"]["Default"] == "0"

    bucket = resources["AuditArchiveBucket"]
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")
    props = bucket["Properties"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    retention, delete_markers = props["LifecycleConfiguration"]["Rules"]
    assert retention["ExpirationInDays"] == {"Ref": "AuditArchiveRetentionDays"}
    assert delete_markers["ExpiredObjectDeleteMarker"] is True
    # Kept at least as long as at most: nothing in it can be deleted or rewritten before its retention ends.
    assert props["ObjectLockEnabled"] is True
    lock = props["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]
    assert lock == {"Mode": "GOVERNANCE", "Days": {"Ref": "AuditArchiveRetentionDays"}}

    (tls_only,) = resources["AuditArchiveBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert tls_only["Effect"] == "Deny"
    assert tls_only["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}

    stream = resources["AuditArchiveStream"]["Properties"]["ExtendedS3DestinationConfiguration"]
    assert stream["Prefix"].startswith("events/dt=")
    (delimiter,) = stream["ProcessingConfiguration"]["Processors"]
    assert delimiter["Type"] == "AppendDelimiterToRecord"  # one event per line, for Athena and SIEM readers

    # The delivery roles can do one thing each: write the bucket, put records on the stream.
    writer = resources["AuditArchiveDeliveryRole"]["Properties"]
    listing, write = writer["Policies"][0]["PolicyDocument"]["Statement"]
    assert not [a for s in (listing, write) for a in s["Action"] if not a.startswith("s3:") or "Delete" in a]
    assert write["Action"] == ["s3:AbortMultipartUpload", "s3:PutObject"]
    assert write["Resource"] == [
        {"Fn::Sub": "${AuditArchiveBucket.Arn}/events/*"},
        {"Fn::Sub": "${AuditArchiveBucket.Arn}/errors/*"},
    ]
    putter = resources["AuditArchiveRuleRole"]["Properties"]
    (put,) = putter["Policies"][0]["PolicyDocument"]["Statement"]
    assert put["Action"] == ["firehose:PutRecord", "firehose:PutRecordBatch"]
    assert put["Resource"] == {"Fn::GetAtt": ["AuditArchiveStream", "Arn"]}
    (trust,) = writer["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "AWS::AccountId"}}}
    (trust,) = putter["AssumeRolePolicyDocument"]["Statement"]
    rule_arn = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/${AWS::StackName}-audit-archive"
    assert trust["Condition"]["StringEquals"]["aws:SourceArn"] == {"Fn::Sub": rule_arn}
    assert RULE["Name"] == {"Fn::Sub": "${AWS::StackName}-audit-archive"}
