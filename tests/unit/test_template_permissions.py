"""Least privilege in template.yaml (issue 10, section 8): who may write IAM, who may touch which table items,
whom the editor role trusts, and how /decide is throttled. tests/functional/test_least_privilege.py checks
that the real flows stay within these grants."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.support.permissions import (
    EDITOR_TEMPLATE,
    FUNCTIONS,
    IAM_WRITES,
    ITEM_ACTIONS,
    ROOT,
    SYNC_FUNCTIONS,
    Statement,
    actions_of,
    function_statements,
    leading_keys,
    template,
)
from trustgate_local.template import load_template

pytestmark = pytest.mark.unit

TABLE_ARN = {"Fn::GetAtt": ["Table", "Arn"]}
INDEXES = ("ByRole", "ByPrincipal", "ByStatus", "ByKind", "ByReview")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return template()


def statements(document: dict[str, Any], function: str) -> list[Statement]:
    return function_statements(document, function)


def table_statements(document: dict[str, Any], function: str) -> list[Statement]:
    return [s for s in statements(document, function) if any(a.startswith("dynamodb:") for a in s.actions)]


def grants_on(document: dict[str, Any], function: str, action: str) -> set[str]:
    """The partition-key patterns under which `function` may perform the item action `action`."""
    found: set[str] = set()
    for statement in table_statements(document, function):
        if action in statement.actions:
            found |= set(leading_keys(statement) or ["<any>"])
    return found


def test_the_template_lists_every_function_this_test_knows(document: dict[str, Any]) -> None:
    functions = {name for name, r in document["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    assert functions == set(FUNCTIONS)


def test_only_the_sync_functions_may_write_iam(document: dict[str, Any]) -> None:
    for function in FUNCTIONS:
        actions = actions_of(statements(document, function))
        writes = {a for a in actions if a in IAM_WRITES or a in ("iam:*", "*") or a == "sts:AssumeRole"}
        if function in SYNC_FUNCTIONS:
            assert writes == IAM_WRITES | {"sts:AssumeRole"}, function
        else:
            assert not {a for a in actions if a.startswith(("iam:", "sts:"))}, f"{function} holds IAM rights"


def test_iam_writes_reach_only_the_managed_roles_or_the_editor_role(document: dict[str, Any]) -> None:
    for function in SYNC_FUNCTIONS:
        for statement in statements(document, function):
            if set(statement.actions) & IAM_WRITES:
                assert statement.resources == ({"Ref": "ManagedRoleArns"},), statement
            if "sts:AssumeRole" in statement.actions:
                assert statement.resources == ({"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/${EditorRoleName}"},)


def test_no_other_role_of_the_stack_may_write_iam(document: dict[str, Any]) -> None:
    text = (ROOT / "template.yaml").read_text()
    for action in IAM_WRITES:
        # Only RoleEditorPolicy names them (tests above tie it to the sync functions).
        assert text.count(action) == 1, action


def test_the_sync_functions_roles_and_only_theirs_live_under_the_sync_path(document: dict[str, Any]) -> None:
    default = document["Globals"]["Function"]["RolePath"]
    assert default == "/trustgate/"
    for function in FUNCTIONS:
        path = document["Resources"][function]["Properties"].get("RolePath", default)
        assert (path == "/trustgate/sync/") is (function in SYNC_FUNCTIONS), function
    output = document["Outputs"]["SyncRoleArns"]["Value"]["Fn::Join"][1]
    assert {value["Fn::GetAtt"][0] for value in output} == {f"{f}Role" for f in SYNC_FUNCTIONS}


def test_no_function_has_broad_table_rights(document: dict[str, Any]) -> None:
    for function in FUNCTIONS:
        policies = document["Resources"][function]["Properties"].get("Policies", [])
        assert not any(isinstance(p, dict) and "DynamoDBCrudPolicy" in p for p in policies), function
        for statement in table_statements(document, function):
            assert not any("*" in action for action in statement.actions), (function, statement)
            assert set(statement.actions) <= ITEM_ACTIONS | {"dynamodb:Query"}, (function, statement)


def test_every_table_statement_is_scoped_to_the_table_or_an_index_by_name(document: dict[str, Any]) -> None:
    indexes = {index["IndexName"] for index in document["Resources"]["Table"]["Properties"]["GlobalSecondaryIndexes"]}
    assert indexes == set(INDEXES)
    for function in FUNCTIONS:
        for statement in table_statements(document, function):
            if set(statement.actions) <= ITEM_ACTIONS:
                # Items: the table itself, and only the partition-key prefixes named.
                assert statement.resources == (TABLE_ARN,), (function, statement)
                keys = leading_keys(statement)
                assert keys, f"{function}: {statement} has no dynamodb:LeadingKeys condition"
                assert all(re.fullmatch(r"[A-Za-z]+#\*", key) for key in keys), keys
            else:
                # Queries: global secondary indexes by name, never the table, never every index.
                assert statement.actions == ("dynamodb:Query",), (function, statement)
                for resource in statement.resources:
                    name = resource["Fn::Sub"].removeprefix("${Table.Arn}/index/")
                    assert name in indexes, (function, resource)


def test_the_unauthenticated_decide_function_writes_only_what_a_decision_changes(document: dict[str, Any]) -> None:
    assert grants_on(document, "DecideFunction", "dynamodb:GetItem") == {"REQUEST#*", "ROLE#*", "TOKEN#*"}
    assert grants_on(document, "DecideFunction", "dynamodb:UpdateItem") == {"REQUEST#*", "TOKEN#*"}
    # A deny moves the request out of `pending`: its open-request marker goes, and the audit record is added.
    assert grants_on(document, "DecideFunction", "dynamodb:DeleteItem") == {"OPEN#*"}
    assert grants_on(document, "DecideFunction", "dynamodb:PutItem") == {"AUDIT#*"}
    assert not grants_on(document, "DecideFunction", "dynamodb:ConditionCheckItem")
    assert "dynamodb:Query" not in actions_of(table_statements(document, "DecideFunction"))


@pytest.mark.parametrize(
    ("function", "action", "keys"),
    [
        ("NotifyApproversFunction", "dynamodb:PutItem", {"TOKEN#*"}),
        ("NotifyApproversFunction", "dynamodb:UpdateItem", {"REQUEST#*"}),
        ("NotifyApproversFunction", "dynamodb:DeleteItem", set()),
        ("GrantFunction", "dynamodb:PutItem", {"AUDIT#*"}),
        ("GrantFunction", "dynamodb:UpdateItem", {"REQUEST#*", "ROLE#*", "LOCK#*"}),
        ("ApiFunction", "dynamodb:PutItem", {"AUDIT#*", "REQUEST#*", "OPEN#*", "ROLE#*", "idempotency#*"}),
        ("ApiFunction", "dynamodb:DeleteItem", {"OPEN#*", "idempotency#*"}),
    ],
)
def test_each_function_writes_only_its_own_kinds_of_items(
    document: dict[str, Any], function: str, action: str, keys: set[str]
) -> None:
    assert grants_on(document, function, action) == keys


def test_only_the_api_creates_requests_or_changes_role_policies(document: dict[str, Any]) -> None:
    for function in FUNCTIONS:
        creates = grants_on(document, function, "dynamodb:PutItem") & {"REQUEST#*", "ROLE#*", "OPEN#*"}
        # The reconciler saves a role's first policy, and only in a deployment with InitialStandingAccess=none.
        expected = {"ApiFunction": {"REQUEST#*", "ROLE#*", "OPEN#*"}, "ReconcileFunction": {"ROLE#*"}}
        assert creates == expected.get(function, set()), function
        # The sync path only notes on a role policy that it no longer renders (Store.mark_policy_unrenderable).
        notes = "ROLE#*" in grants_on(document, function, "dynamodb:UpdateItem")
        assert notes is (function in SYNC_FUNCTIONS), function


def test_the_reconciler_may_save_a_first_role_policy_only_when_deployed_just_in_time(document: dict[str, Any]) -> None:
    policies = document["Resources"]["ReconcileFunction"]["Properties"]["Policies"]
    inline = [s for p in policies if isinstance(p, dict) and "Statement" in p for s in p["Statement"]]
    writes = [s for s in inline if "ROLE#*" in json.dumps(s) and "PutItem" in json.dumps(s)]
    assert writes == [
        {
            "Fn::If": [
                "StartsJustInTime",
                {
                    "Sid": "InitialRolePolicies",
                    "Effect": "Allow",
                    "Action": "dynamodb:PutItem",
                    "Resource": {"Fn::GetAtt": ["Table", "Arn"]},
                    "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["ROLE#*"]}},
                },
                {"Ref": "AWS::NoValue"},
            ]
        }
    ]
    assert document["Conditions"]["StartsJustInTime"] == {"Fn::Equals": [{"Ref": "InitialStandingAccess"}, "none"]}


def test_the_editor_role_trusts_only_trustgates_sync_roles(document: dict[str, Any]) -> None:
    editor = load_template(EDITOR_TEMPLATE)
    (trust,) = editor["Resources"]["EditorRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${TrustGateAccountId}:root"}}
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"]["ArnLike"] == {"aws:PrincipalArn": {"Ref": "TrustGateSyncRoleArns"}}
    # The session name TrustGate uses when it assumes the editor role (wiring.py) is the one trusted.
    wiring = (ROOT / "layers/trustgate/trustgate/adapters/wiring.py").read_text()
    session_name = trust["Condition"]["StringEquals"]["sts:RoleSessionName"]
    assert f'RoleSessionName="{session_name}"' in wiring
    parameter = editor["Parameters"]["TrustGateSyncRoleArns"]
    assert "Default" not in parameter  # the deployer must name them
    pattern = parameter["AllowedPattern"]
    assert re.fullmatch(pattern, "arn:aws:iam::111111111111:role/trustgate/sync/trustgate-ApiFunctionRole-AB12")
    assert re.fullmatch(pattern, "arn:aws:iam::111111111111:role/trustgate/sync/*")
    for outside in (
        "arn:aws:iam::111111111111:role/trustgate/trustgate-DecideFunctionRole-AB12",  # not a sync role
        "arn:aws:iam::111111111111:role/*",
        "arn:aws:iam::111111111111:root",
    ):
        assert not re.fullmatch(pattern, outside), outside


def test_decide_is_throttled_per_method_and_per_source(document: dict[str, Any]) -> None:
    api = document["Resources"]["TrustGateApi"]["Properties"]
    settings = {(s["ResourcePath"], s["HttpMethod"]): s for s in api["MethodSettings"]}
    default = settings[("/*", "*")]
    for method in ("GET", "POST"):
        decide = settings[("/~1decide~1{token}", method)]
        assert decide["ThrottlingRateLimit"] < default["ThrottlingRateLimit"]
        assert decide["ThrottlingBurstLimit"] < default["ThrottlingBurstLimit"]
    acl = document["Resources"]["DecideWebAcl"]
    assert acl["Condition"] == "HasDecideRateLimit"
    (rule,) = acl["Properties"]["Rules"]
    rate = rule["Statement"]["RateBasedStatement"]
    assert rate["AggregateKeyType"] == "IP"
    assert rate["Limit"] == {"Ref": "DecideRateLimitPerIp"}
    assert rate["ScopeDownStatement"]["ByteMatchStatement"]["SearchString"] == "/decide/"
    assert rule["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429
    association = document["Resources"]["DecideWebAclAssociation"]
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": ["DecideWebAcl", "Arn"]}
    assert "/restapis/${TrustGateApi}/stages/prod" in association["Properties"]["ResourceArn"]["Fn::Sub"]
    assert document["Parameters"]["DecideRateLimitPerIp"]["Default"] > 0  # on unless the deployer opts out


def test_only_this_account_may_subscribe_to_or_publish_on_the_personal_topic(document: dict[str, Any]) -> None:
    policy = document["Resources"]["PersonalTopicPolicy"]["Properties"]
    assert policy["Topics"] == [{"Ref": "PersonalTopic"}]
    [statement] = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert set(statement["Action"]) == {"sns:Subscribe", "sns:Publish"}
    assert statement["Condition"] == {"StringNotEquals": {"aws:PrincipalAccount": {"Ref": "AWS::AccountId"}}}


def test_the_scheduler_role_publishes_reminders_to_the_personal_topic_only_and_uses_its_key_only_through_sns(
    document: dict[str, Any],
) -> None:
    granted = statements(document, "SchedulerRole")
    publish = [s for s in granted if s.grants("sns:Publish")]
    assert [s.resources for s in publish] == [({"Ref": "PersonalTopic"},)]  # never the shared topic
    (key,) = [s for s in granted if any(a.startswith("kms:") for a in s.actions)]
    assert set(key.actions) == {"kms:GenerateDataKey*", "kms:Decrypt"}
    assert key.resources == ({"Fn::GetAtt": ["NotificationKey", "Arn"]},)
    assert key.condition == {"StringEquals": {"kms:ViaService": {"Fn::Sub": "sns.${AWS::Region}.${AWS::URLSuffix}"}}}
