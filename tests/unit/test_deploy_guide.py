"""docs/deploy.md is true to template.yaml: every parameter, the resources it counts and keeps, the policies it
prints (issue 12, section 1). tests/functional/test_deploy_guide.py checks its break-glass and vendor sections."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from trustgate_local.template import load_template

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
TEMPLATE = load_template(ROOT / "template.yaml")
EDITOR = load_template(ROOT / "templates" / "editor-role.yaml")
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]


def section(number: int) -> str:
    start = GUIDE.index(f"\n## {number}. ")
    end = GUIDE.find("\n## ", start + 1)
    return GUIDE[start : end if end != -1 else None]


def counted(kind: str) -> int:
    """Resources of `kind` a default deployment has (the SIEM archive's are counted apart, in the guide too)."""
    return Counter(r["Type"] for r in RESOURCES.values() if r.get("Condition") != "ArchivesAudit")[kind]


def test_the_parameter_table_names_every_parameter_of_the_template_and_nothing_else() -> None:
    rows = re.findall(r"^\| `(\w+)` \|", section(3), flags=re.MULTILINE)

    assert sorted(rows) == sorted(TEMPLATE["Parameters"])
    for name in EDITOR["Parameters"]:
        assert f"`{name}`" in section(3), f"the editor role's parameter {name} is not explained"


def test_the_parameter_table_states_the_templates_defaults() -> None:
    table = dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|", section(3), flags=re.MULTILINE))

    for name, parameter in TEMPLATE["Parameters"].items():
        default = parameter.get("Default")
        if default is None:
            assert table[name].startswith("required"), name
        elif default == "":
            assert table[name].startswith("empty"), name
        else:
            assert table[name].startswith(f"`{default}`"), (
                f"{name}: the guide says {table[name]!r}, default {default!r}"
            )


def test_the_counts_and_what_the_stack_keeps_are_the_templates() -> None:
    functions = counted("AWS::Serverless::Function")
    assert functions == 7
    assert "seven Lambda functions" in GUIDE
    assert f"{functions} functions" in GUIDE
    assert f"{counted('AWS::CloudWatch::Alarm')} CloudWatch alarms" in GUIDE
    assert f"{counted('AWS::CloudWatch::Alarm')} alarms" in section(2)
    assert f"{counted('AWS::Logs::LogGroup')} log groups" in GUIDE
    for alarm in (name for name, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm"):
        assert alarm in section(6) or alarm.endswith("FunctionErrorsAlarm"), f"{alarm} is not in the alarm table"

    table = RESOURCES["Table"]
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert table["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["Properties"]["DeletionProtectionEnabled"] is True
    assert "point-in-time recovery** on" in section(6)
    assert "**deletion protection** on" in section(6)
    assert "**The table is retained** (`DeletionPolicy: Retain`)" in section(7)
    assert RESOURCES["ApiGatewayCloudWatchRole"]["DeletionPolicy"] == "Retain"
    assert "**The API Gateway logging role** (`ConfigureApiGatewayAccount=true`) is retained" in section(7)


def test_what_the_guide_says_initial_standing_access_none_adds_is_what_the_template_adds() -> None:
    statements = RESOURCES["ReconcileFunction"]["Properties"]["Policies"][2]["Statement"]
    (conditional,) = [s["Fn::If"] for s in statements if "Fn::If" in s]
    condition, granted, otherwise = conditional

    assert TEMPLATE["Conditions"][condition] == {"Fn::Equals": [{"Ref": "InitialStandingAccess"}, "none"]}
    assert granted["Action"] == "dynamodb:PutItem"
    assert granted["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == ["ROLE#*"]
    assert otherwise == {"Ref": "AWS::NoValue"}
    assert "Only in this mode does the reconciler's role get `dynamodb:PutItem` on `ROLE#*` items" in GUIDE
    schedule = RESOURCES["ReconcileFunction"]["Properties"]["Events"]["ReconcileSchedule"]["Properties"]
    assert schedule["Schedule"] == "rate(5 minutes)"


def test_what_the_guide_says_the_siem_archive_adds_is_what_the_template_adds() -> None:
    archive = [r["Type"] for r in RESOURCES.values() if r.get("Condition") == "ArchivesAudit"]

    assert Counter(archive) == {
        "AWS::S3::Bucket": 1,
        "AWS::S3::BucketPolicy": 1,
        "AWS::KinesisFirehose::DeliveryStream": 1,
        "AWS::Events::Rule": 1,
        "AWS::IAM::Role": 2,
        "AWS::CloudWatch::Alarm": 2,
    }
    assert "a bucket and its policy, a Firehose delivery\nstream, a rule, 2 more IAM roles and 2 more alarms" in GUIDE
    assert "AuditArchiveFailedAlarm" in section(6)
    assert "AuditArchiveDeliveryAlarm" in section(6)
    assert "**The audit archive bucket**" in section(7)
    deployer = json.loads(re.findall(r"```json\n(.*?)```", section(2), flags=re.DOTALL)[0])
    (archive_rights,) = [s for s in deployer["Statement"] if s["Sid"].startswith("SiemArchive")]
    assert not [a for a in archive_rights["Action"] if a in ("s3:DeleteBucket", "s3:PutObject", "s3:GetObject")]


def test_waf_is_in_the_cost_only_as_the_template_makes_it() -> None:
    assert RESOURCES["DecideWebAcl"]["Condition"] == "HasDecideRateLimit"
    assert TEMPLATE["Conditions"]["HasDecideRateLimit"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "DecideRateLimitPerIp"}, "0"]}]
    }
    assert "only when `DecideRateLimitPerIp` is not 0" in section(5)


def test_every_policy_document_in_the_guide_is_valid_json() -> None:
    blocks = re.findall(r"```json\n(.*?)```", GUIDE, flags=re.DOTALL)

    assert len(blocks) >= 5  # the deployer's, the editor deployer's, two SCPs, the break-glass statement, …
    documents = [json.loads(block) for block in blocks]
    policies = [d for d in documents if "Statement" in d]
    assert all(d["Version"] == "2012-10-17" for d in policies)


def test_the_scps_exempt_the_principals_trustgate_edits_with() -> None:
    scp = next(
        json.loads(block)
        for block in re.findall(r"```json\n(.*?)```", section(10), flags=re.DOTALL)
        if "OnlyTrustGateEditsManagedRoles" in block
    )
    (statement,) = scp["Statement"]
    exempt = statement["Condition"]["ArnNotLike"]["aws:PrincipalArn"]

    editor_default = EDITOR["Parameters"]["EditorRoleName"]["Default"]
    assert f"arn:aws:iam::*:role/{editor_default}" in exempt
    sync_path = RESOURCES["ApiFunction"]["Properties"]["RolePath"]
    assert f"arn:aws:iam::*:role{sync_path}*" in exempt
    assert sorted(statement["Action"]) == ["iam:DeleteRolePolicy", "iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy"]
