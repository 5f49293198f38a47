"""The IAM statements template.yaml gives each function, and a small evaluator of them (tests only).

moto evaluates no IAM policy, so the tests read the template's statements and judge calls against them
here: actions (with `*` wildcards), resources (ARN globs) and the one condition TrustGate's table
statements use, `ForAllValues:StringLike` on `dynamodb:LeadingKeys`. Any other condition is unknown to
this evaluator and fails the judgement, so a new kind of condition cannot pass unexamined.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustgate_local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
EDITOR_TEMPLATE = ROOT / "templates" / "editor-role.yaml"

FUNCTIONS = (
    "ApiFunction",
    "DecideFunction",
    "NotifyApproversFunction",
    "GrantFunction",
    "FinalizeFunction",
    "ExpireFunction",
    "ReconcileFunction",
)
# The functions that run `sync_role` (grep sync_role in trustgate/app/ and follow each handler).
SYNC_FUNCTIONS = frozenset({"ApiFunction", "GrantFunction", "FinalizeFunction", "ExpireFunction", "ReconcileFunction"})
IAM_WRITES = frozenset({"iam:UpdateAssumeRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy"})
ITEM_ACTIONS = frozenset(
    {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",  # reads items by key like GetItem (a role's grants, read again consistently)
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:ConditionCheckItem",
    }
)
# The SAM policy templates the functions may use, and what each grants (action-wise).
SAM_TEMPLATES: dict[str, list[dict[str, Any]]] = {
    "EventBridgePutEventsPolicy": [{"Effect": "Allow", "Action": ["events:PutEvents"], "Resource": "event-bus"}],
}


@dataclass(frozen=True)
class Statement:
    sid: str | None
    effect: str
    actions: tuple[str, ...]
    resources: tuple[Any, ...]
    condition: dict[str, Any] = field(default_factory=dict)

    def grants(self, action: str) -> bool:
        return any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in self.actions)


def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _flatten(statements: Any) -> list[dict[str, Any]]:
    """Statements, with both branches of an `Fn::If` (a condition may be true in some deployment)."""
    found: list[dict[str, Any]] = []
    for statement in _as_list(statements):
        if isinstance(statement, dict) and set(statement) == {"Fn::If"}:
            _, yes, no = statement["Fn::If"]
            found += [s for s in _flatten([yes, no]) if s != {"Ref": "AWS::NoValue"}]
        elif statement != {"Ref": "AWS::NoValue"}:
            found.append(statement)
    return found


def _statement(raw: dict[str, Any]) -> Statement:
    return Statement(
        raw.get("Sid"),
        raw["Effect"],
        tuple(_as_list(raw["Action"])),
        tuple(_as_list(raw.get("Resource", []))),
        raw.get("Condition", {}),
    )


def function_statements(document: dict[str, Any], logical_id: str) -> list[Statement]:
    """Every statement the function's execution role (or a role such as SchedulerRole) holds through the template
    (inline, managed, SAM)."""
    resources = document["Resources"]
    raw: list[dict[str, Any]] = []
    for policy in resources[logical_id]["Properties"].get("Policies", []):
        if isinstance(policy, dict) and "Statement" in policy:
            raw += _flatten(policy["Statement"])
        elif isinstance(policy, dict) and "PolicyDocument" in policy:  # an AWS::IAM::Role's inline policy
            raw += _flatten(policy["PolicyDocument"]["Statement"])
        elif isinstance(policy, dict) and set(policy) == {"Ref"}:
            managed = resources[policy["Ref"]]
            assert managed["Type"] == "AWS::IAM::ManagedPolicy", policy
            raw += _flatten(managed["Properties"]["PolicyDocument"]["Statement"])
        elif isinstance(policy, dict) and len(policy) == 1 and next(iter(policy)) in SAM_TEMPLATES:
            raw += SAM_TEMPLATES[next(iter(policy))]
        else:
            raise AssertionError(f"{logical_id}: a policy this test does not know how to read: {policy}")
    return [_statement(s) for s in raw]


def actions_of(statements: Iterable[Statement]) -> set[str]:
    return {action for s in statements if s.effect == "Allow" for action in s.actions}


def leading_keys(statement: Statement) -> list[str] | None:
    """The LeadingKeys prefixes a statement allows; None when it has no such condition."""
    condition = statement.condition.get("ForAllValues:StringLike", {})
    values = condition.get("dynamodb:LeadingKeys")
    return None if values is None else [str(v) for v in _as_list(values)]


@dataclass(frozen=True)
class Call:
    """One AWS call as IAM judges it: the action, the resource ARN and (DynamoDB items) the partition key."""

    action: str
    resource: str
    partition_key: str | None = None


def allowed(statements: Iterable[Statement], call: Call, resolve: Callable[[Any], Any]) -> bool:
    """Would these Allow statements let `call` through? (There are no Deny statements in the template.)"""
    for statement in statements:
        if statement.effect != "Allow" or not statement.grants(call.action):
            continue
        arns = [arn for resource in statement.resources for arn in _as_list(resolve(resource))]
        if not any(fnmatch.fnmatchcase(call.resource, str(arn)) for arn in arns):
            continue
        if _conditions_hold(statement, call):
            return True
    return False


def _conditions_hold(statement: Statement, call: Call) -> bool:
    for operator, keys in statement.condition.items():
        for key, wanted in keys.items():
            if (operator, key) != ("ForAllValues:StringLike", "dynamodb:LeadingKeys"):
                return False  # unknown to this evaluator: never assume it holds
            if call.partition_key is None:
                return False  # this evaluator treats an absent key as not matching (stricter than IAM)
            if not any(fnmatch.fnmatchcase(call.partition_key, str(w)) for w in _as_list(wanted)):
                return False
    return True
