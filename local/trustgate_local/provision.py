"""Create template.yaml's resources in moto: the one list of resources is the template itself.

Resource types with a local meaning are created (tables, topics, subscriptions, queues, schedule groups,
roles, functions, state machines); the rest (alarms, log groups, KMS keys, API Gateway plumbing) only get a
placeholder id so references to them resolve.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from trustgate_local.template import Resolver, load_template, parameter_values

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


@dataclass(frozen=True)
class ApiRoute:
    method: str
    path: str  # API Gateway form, e.g. /requests/{id}
    function: str  # logical id
    authorized: bool  # False for Auth: NONE (the approval page)


@dataclass(frozen=True)
class ScheduleRule:
    function: str
    expression: str  # rate(5 minutes)


@dataclass
class LocalFunction:
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    timeout: int


@dataclass(frozen=True)
class Mailbox:
    """A subscriber the local stack can read: an SQS queue subscribed as a deployment subscribes an address.

    There is no mail locally, so an email subscription of the template (the shared mailbox) becomes a
    queue subscribed to the same topic with the same filter policy; `name` is the address it stands for.
    """

    name: str
    topic_arn: str
    queue_url: str
    subscription_arn: str
    filter_policy: dict[str, Any] | None = None


def subscribe_mailbox(
    session: boto3.Session, name: str, topic_arn: str, queue_name: str, filter_policy: dict[str, Any] | None = None
) -> Mailbox:
    """A queue subscribed to `topic_arn` (filtered as given) that stands for `name`'s inbox."""
    sqs = session.client("sqs")
    url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = {"FilterPolicy": json.dumps(filter_policy)} if filter_policy else {}
    arn = session.client("sns").subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes=attributes, ReturnSubscriptionArn=True
    )["SubscriptionArn"]
    return Mailbox(name, topic_arn, url, arn, filter_policy)


@dataclass
class Stack:
    """What was created, by logical id, and what the template says about events."""

    name: str
    region: str
    account: str
    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)
    functions: dict[str, LocalFunction] = field(default_factory=dict)
    routes: list[ApiRoute] = field(default_factory=list)
    schedules: list[ScheduleRule] = field(default_factory=list)
    mailboxes: list[Mailbox] = field(default_factory=list)  # the template's email subscriptions, as queues

    def function_by_arn(self, arn_or_name: str) -> LocalFunction:
        for function in self.functions.values():
            if arn_or_name in (function.arn, function.name) or arn_or_name.startswith(function.arn + ":"):
                return function
        raise KeyError(f"no local function {arn_or_name}")

    def environment(self) -> dict[str, str]:
        """The union of every function's environment (they share a process locally)."""
        merged: dict[str, str] = {}
        for function in self.functions.values():
            merged.update(function.environment)
        return merged


def _dummy_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def lambda_handler(event, context):\n    raise RuntimeError('runs in-process')\n")
    return buffer.getvalue()


def provision(
    session: boto3.Session,
    parameters: dict[str, str],
    *,
    stack_name: str = "trustgate",
    environment_overrides: dict[str, str] | None = None,
    template_path: Path = TEMPLATE,
) -> Stack:
    """Create the template's resources through `session` (moto) and describe the result."""
    template = load_template(template_path)
    region = session.region_name or "us-east-1"
    account = session.client("sts").get_caller_identity()["Account"]
    pseudo = {
        "AWS::Region": region,
        "AWS::AccountId": account,
        "AWS::Partition": "aws",
        "AWS::StackName": stack_name,
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::NoValue": "",
    }
    resolver = Resolver(template, parameter_values(template, parameters), pseudo)
    stack = Stack(stack_name, region, account, resolver.refs, resolver.attributes)
    globals_ = template.get("Globals", {}).get("Function", {})
    pending = dict(template["Resources"])
    creators = _Creators(session, stack, resolver, globals_, environment_overrides or {})
    while pending:
        progressed = False
        for logical_id, resource in list(pending.items()):
            condition = resource.get("Condition")
            if condition and not resolver.condition(condition):
                del pending[logical_id]
                progressed = True
                continue
            try:
                creators.create(logical_id, resource)
            except KeyError:
                continue  # depends on something not created yet
            del pending[logical_id]
            progressed = True
        if not progressed:
            raise RuntimeError(f"cannot resolve resources: {sorted(pending)}")
    return stack


class _Creators:
    def __init__(
        self,
        session: boto3.Session,
        stack: Stack,
        resolver: Resolver,
        globals_: dict[str, Any],
        overrides: dict[str, str],
    ) -> None:
        self.session = session
        self.stack = stack
        self.resolver = resolver
        self.globals = globals_
        self.overrides = overrides
        self.execution_role: str | None = None

    def create(self, logical_id: str, resource: dict[str, Any]) -> None:
        kind = resource["Type"]
        method = getattr(self, "_" + kind.replace("::", "_").lower(), None)
        physical = f"{self.stack.name}-{logical_id}"
        if method is None:  # no local meaning: a stable placeholder keeps references working
            self._record(logical_id, physical, {"Arn": f"arn:aws:local:::{physical}"})
            return
        method(logical_id, physical, resource.get("Properties", {}))

    def _record(self, logical_id: str, ref: str, attributes: dict[str, str]) -> None:
        self.stack.refs[logical_id] = ref
        self.stack.attributes[logical_id] = attributes

    def _aws_dynamodb_table(self, logical_id: str, name: str, props: dict[str, Any]) -> None:
        p = self.resolver.resolve(props)
        client = self.session.client("dynamodb")
        arguments: dict[str, Any] = {
            "TableName": p.get("TableName", name),
            "AttributeDefinitions": p["AttributeDefinitions"],
            "KeySchema": p["KeySchema"],
            "BillingMode": p.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if p.get("GlobalSecondaryIndexes"):
            arguments["GlobalSecondaryIndexes"] = p["GlobalSecondaryIndexes"]
        description = client.create_table(**arguments)["TableDescription"]
        ttl = p.get("TimeToLiveSpecification")
        if ttl:
            client.update_time_to_live(TableName=arguments["TableName"], TimeToLiveSpecification=ttl)
        self._record(logical_id, arguments["TableName"], {"Arn": description["TableArn"]})

    def _aws_sns_topic(self, logical_id: str, name: str, props: dict[str, Any]) -> None:
        arn = self.session.client("sns").create_topic(Name=name)["TopicArn"]
        self._record(logical_id, arn, {"TopicArn": arn, "TopicName": name})

    def _aws_sns_subscription(self, logical_id: str, name: str, props: dict[str, Any]) -> None:
        p = self.resolver.resolve(props)
        policy = p.get("FilterPolicy")
        policy = json.loads(policy) if isinstance(policy, str) else policy
        if p["Protocol"] == "email":  # no mail locally: a queue with the same topic and filter stands for the inbox
            mailbox = subscribe_mailbox(self.session, str(p["Endpoint"]), p["TopicArn"], name, policy)
            self.stack.mailboxes.append(mailbox)
            self._record(logical_id, mailbox.subscription_arn, {})
            return
        attributes = {"FilterPolicy": json.dumps(policy)} if policy else {}
        arn = self.session.client("sns").subscribe(
            TopicArn=p["TopicArn"],
            Protocol=p["Protocol"],
            Endpoint=str(p["Endpoint"]),
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        self._record(logical_id, arn, {})

    def _aws_sqs_queue(self, logical_id: str, name: str, props: dict[str, Any]) -> None:
        client = self.session.client("sqs")
        url = client.create_queue(QueueName=name)["QueueUrl"]
        arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self._record(logical_id, url, {"Arn": arn, "QueueName": name, "QueueUrl": url})

    def _aws_scheduler_schedulegroup(self, logical_id: str, name: str, props: dict[str, Any]) -> None:
        arn = self.session.client("scheduler").create_schedule_group(Name=name)["ScheduleGroupArn"]
        self._record(logical_id, name, {"Arn": arn})

    def _aws_iam_role(self, logical_id: str, name: str, props: dict[str, Any]) -> None:
        p = self.resolver.resolve(props)
        role = self.session.client("iam").create_role(
            RoleName=name[:64],
            Path=p.get("Path", "/"),
            AssumeRolePolicyDocument=json.dumps(p.get("AssumeRolePolicyDocument", {})),
        )["Role"]
        self._record(logical_id, role["RoleName"], {"Arn": role["Arn"], "RoleId": role["RoleId"]})

    def _role_for_functions(self) -> str:
        if self.execution_role is None:
            trust = {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
            role = self.session.client("iam").create_role(
                RoleName=f"{self.stack.name}-local-execution", AssumeRolePolicyDocument=json.dumps(trust)
            )
            self.execution_role = role["Role"]["Arn"]
        return self.execution_role

    def _aws_serverless_function(self, logical_id: str, name: str, props: dict[str, Any]) -> None:
        variables = {
            **self.resolver.resolve(self.globals.get("Environment", {}).get("Variables", {})),
            **self.resolver.resolve(props.get("Environment", {}).get("Variables", {})),
        }
        environment = {key: str(value) for key, value in variables.items()}
        environment.update({k: v for k, v in self.overrides.items() if k in environment})
        function_name = name[:64]
        arn = self.session.client("lambda").create_function(
            FunctionName=function_name,
            Runtime=props.get("Runtime", self.globals.get("Runtime", "python3.13")),
            Role=self._role_for_functions(),
            Handler=props.get("Handler", self.globals.get("Handler", "app.lambda_handler")),
            Code={"ZipFile": _dummy_zip()},
            Timeout=int(props.get("Timeout", self.globals.get("Timeout", 30))),
        )["FunctionArn"]
        function = LocalFunction(
            logical_id,
            function_name,
            arn,
            ROOT / props["CodeUri"],
            props.get("Handler", "app.lambda_handler"),
            environment,
            int(props.get("Timeout", self.globals.get("Timeout", 30))),
        )
        self.stack.functions[logical_id] = function
        for event in props.get("Events", {}).values():
            spec = event.get("Properties", {})
            if event["Type"] == "Api":
                auth = spec.get("Auth", {}).get("Authorizer", "AWS_IAM")
                self.stack.routes.append(ApiRoute(spec["Method"].upper(), spec["Path"], logical_id, auth != "NONE"))
            elif event["Type"] == "Schedule":
                self.stack.schedules.append(ScheduleRule(logical_id, self.resolver.resolve(spec["Schedule"])))
        self._record(logical_id, function_name, {"Arn": arn})

    def _aws_serverless_statemachine(self, logical_id: str, name: str, props: dict[str, Any]) -> None:
        substitutions = self.resolver.resolve(props.get("DefinitionSubstitutions", {}))
        definition = (ROOT / props["DefinitionUri"]).read_text()
        for key, value in substitutions.items():
            definition = definition.replace("${" + key + "}", str(value))
        state_machine_name = self.resolver.resolve(props.get("Name", name))
        arn = self.session.client("stepfunctions").create_state_machine(
            name=state_machine_name,
            definition=definition,
            roleArn=self._role_for_functions(),
            type=props.get("Type", "STANDARD"),
        )["stateMachineArn"]
        self._record(logical_id, arn, {"Arn": arn, "Name": state_machine_name})
