"""Every AWS call each function makes in the real flows is one template.yaml allows it (issue 10, section 8).

moto evaluates no IAM policy, so this test watches the calls the handlers make (botocore's parameter
hook, attributed to the function being invoked) while users go through the paths they take: request
with an Idempotency-Key, decide on the approval page, grant, list, audit, change the policy, sync,
revoke, deny, cancel, expire, remind and reconcile. Each call is then judged against that function's
statements in the template (tests/support/permissions.py): the action, the resource (table, index or
role ARN) and, for table items, the partition key against dynamodb:LeadingKeys. A function that starts
touching a new kind of item, or the API that starts doing what only the flow did, fails here.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.support.aws import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    ERIN,
    PARAMETERS,
    ROLE_ARN,
    VENDOR_TRUST,
    World,
    running_world,
    wait_for,
)
from tests.support.flows import JUSTIFICATION, approve, granted, request_access
from tests.support.links import approval_links, call_page, form_for
from tests.support.permissions import FUNCTIONS, Call, allowed, function_statements, template
from trustgate_local.template import Resolver, parameter_values

pytestmark = pytest.mark.functional

# boto3 service names whose IAM prefix differs.
PREFIX = {"stepfunctions": "states"}


class CallRecorder:
    """Records (function, call) for every AWS call a handler makes, whatever thread runs it."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.calls: set[tuple[str, Call]] = set()
        self._current = threading.local()
        self._lock = threading.Lock()
        original = world.host.invoke

        def invoke(function: Any, event: Any) -> Any:
            stack = self._stack()
            stack.append(function.logical_id)
            try:
                return original(function, event)
            finally:
                stack.pop()

        world.host.invoke = invoke  # type: ignore[method-assign]
        world.session.events.register("before-parameter-build", self._record)

    def _stack(self) -> list[str]:
        if not hasattr(self._current, "stack"):
            self._current.stack = []
        stack: list[str] = self._current.stack
        return stack

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        stack = self._stack()
        if not stack:
            return  # the test itself (reading state), not a function
        service = model.service_model.service_name
        with self._lock:
            for call in self._calls_of(PREFIX.get(service, service), model.name, params):
                self.calls.add((stack[-1], call))

    def _calls_of(self, prefix: str, operation: str, params: dict[str, Any]) -> Iterator[Call]:
        stack = self.world.stack
        if prefix == "dynamodb":
            table = stack.attributes["Table"]["Arn"]
            if operation == "TransactWriteItems":
                for item in params["TransactItems"]:
                    ((kind, spec),) = item.items()
                    action = {"ConditionCheck": "ConditionCheckItem"}.get(kind, f"{kind}Item")
                    yield Call(f"dynamodb:{action}", table, _partition_key(spec))
            elif operation == "BatchGetItem":  # dynamodb:LeadingKeys holds every key's partition key
                for request in params["RequestItems"].values():
                    for key in request["Keys"]:
                        yield Call("dynamodb:BatchGetItem", table, _partition_key({"Key": key}))
            elif operation == "Query" and params.get("IndexName"):
                yield Call("dynamodb:Query", f"{table}/index/{params['IndexName']}")
            else:
                yield Call(f"dynamodb:{operation}", table, _partition_key(params))
        elif prefix == "iam" and "RoleName" in params:
            yield Call(f"iam:{operation}", f"arn:aws:iam::{stack.account}:role/{params['RoleName']}")
        else:
            yield Call(f"{prefix}:{operation}", "*")


def _partition_key(spec: dict[str, Any]) -> str | None:
    key = spec.get("Key") or spec.get("Item") or {}
    value = key.get("pk", {})
    return value.get("S") if isinstance(value, dict) else None


OTHER_NAME = "PumpBilling"
OTHER_ARN = ROLE_ARN.replace("PumpCustomerAccess", OTHER_NAME)
# Break-glass allowed, and a second managed role for multi-role requests (each function's rights name both).
WATCHED = {"AllowBreakGlass": "true", "ManagedRoleArns": f"{ROLE_ARN},{OTHER_ARN}"}


@pytest.fixture
def watched() -> Iterator[tuple[World, CallRecorder]]:
    with running_world(WATCHED) as world:
        world.session.client("iam").create_role(RoleName=OTHER_NAME, AssumeRolePolicyDocument=json.dumps(VENDOR_TRUST))
        yield world, CallRecorder(world)


def resolver_for(world: World, document: dict[str, Any]) -> Resolver:
    stack = world.stack
    pseudo = {
        "AWS::Region": stack.region,
        "AWS::AccountId": stack.account,
        "AWS::Partition": "aws",
        "AWS::StackName": stack.name,
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::NoValue": "",
    }
    return Resolver(
        document, parameter_values(document, {**PARAMETERS, **WATCHED}), pseudo, stack.refs, stack.attributes
    )


def judge(world: World, calls: set[tuple[str, Call]]) -> list[str]:
    """Calls the template does not allow, as readable lines."""
    document = template()
    resolver = resolver_for(world, document)

    def resolve(resource: Any) -> Any:
        try:
            return resolver.resolve(resource)
        except KeyError:  # a reference the local stack does not model (e.g. SAM-generated): match nothing
            return []

    refused = []
    for function, call in sorted(calls, key=lambda c: (c[0], c[1].action, c[1].resource, c[1].partition_key or "")):
        statements = function_statements(document, function)
        if call.resource == "*":  # services judged by action only (their resources are not modelled here)
            ok = any(s.effect == "Allow" and s.grants(call.action) for s in statements)
        else:
            ok = allowed(statements, call, resolve)
        if not ok:
            refused.append(f"{function}: {call.action} {call.resource} {call.partition_key or ''}")
    return refused


def test_every_call_of_every_flow_is_allowed_by_the_template(watched: tuple[World, CallRecorder]) -> None:
    world, recorder = watched
    # A request with an Idempotency-Key, decided on the approval page (Decide), then granted (Grant).
    status, body = world.api(
        "POST",
        "/requests",
        ALICE,
        {"role": "PumpCustomerAccess", "duration": "PT1H", "justification": JUSTIFICATION},
        headers={"Idempotency-Key": "least-privilege"},
    )
    assert status == 201, body
    links = approval_links(world, body["id"])
    page = call_page(world, "GET", links[BOB])
    assert page.status == 200, page.body
    assert call_page(world, "POST", links[BOB], form=form_for(page.body, "approve")).status == 200
    world.wait_status(body["id"], "active")
    # Listings, audit, the admin's policy change and a manual sync (API).
    for path, caller, query in (
        ("/requests", ALICE, {"mine": "true"}),
        ("/requests", CAROL, {"role": "PumpCustomerAccess"}),
        ("/requests", CAROL, None),
        ("/approvals", BOB, None),
        ("/audit", CAROL, {"role": "PumpCustomerAccess"}),
        ("/audit", CAROL, None),
        ("/roles", CAROL, None),
        ("/roles/PumpCustomerAccess", CAROL, None),
    ):
        assert world.api("GET", path, caller, query=query)[0] == 200, path
    status, body = world.api("PUT", "/roles/PumpCustomerAccess/policy", CAROL, {"ticket_pattern": "OPS-[0-9]+"})
    assert status == 200, body
    assert world.api("POST", "/roles/PumpCustomerAccess/sync", CAROL)[0] == 200
    assert world.api("PUT", "/roles/PumpCustomerAccess/policy", CAROL, {})[0] == 200
    # Expiry and its reminder (Expire), a revoke (API), a denial (Decide, Finalize), a cancel, reconcile.
    expiring = granted(world, ERIN)
    world.advance(timedelta(minutes=61))
    world.fire_schedule(expiring["id"])
    world.wait_status(expiring["id"], "expired")
    revoked = granted(world, DAVE)
    assert world.api("POST", f"/requests/{revoked['id']}/revoke", CAROL, {"reason": "done"})[0] == 200
    denied = request_access(world, ALICE)
    links = approval_links(world, denied["id"])
    page = call_page(world, "GET", links[DAVE])
    assert call_page(world, "POST", links[DAVE], form=form_for(page.body, "deny")).status == 200
    world.wait_status(denied["id"], "denied")
    cancelled = request_access(world, ALICE)
    world.wait_for_task_token(cancelled["id"])
    assert world.api("POST", f"/requests/{cancelled['id']}/cancel", ALICE)[0] == 200
    # Scheduled access: approved for later (Grant schedules it under the role lock), its start (a new execution,
    # Grant activates it), and a second one cancelled before it begins (API deletes its start schedule).
    later = request_access(world, ALICE, start_at="PT2H")["id"]
    approve(world, later)
    assert world.wait_execution(later)["status"] == "SUCCEEDED"  # scheduled, its start schedule made
    assert world.status(later) == "scheduled"
    world.advance(timedelta(hours=2, minutes=1))
    world.fire_schedule(later, "start")
    wait_for(lambda: world.status(later) == "active" or None, 20, "the scheduled grant to begin")
    unwanted = request_access(world, ERIN, start_at="PT1H")["id"]
    approve(world, unwanted)
    world.wait_status(unwanted, "scheduled")
    assert world.api("POST", f"/requests/{unwanted}/cancel", ERIN)[0] == 200
    # A removed approver opens their link (Decide reads when the policy changed, without any index).
    orphaned = request_access(world, ALICE)
    links = approval_links(world, orphaned["id"])
    assert world.api("PUT", "/roles/PumpCustomerAccess/policy", CAROL, {"approvers": [DAVE]})[0] == 200
    assert call_page(world, "GET", links[BOB]).status == 403
    assert world.api("POST", f"/requests/{orphaned['id']}/cancel", ALICE)[0] == 200
    assert world.api("PUT", "/roles/PumpCustomerAccess/policy", CAROL, {})[0] == 200
    carol = request_access(world, CAROL)["id"]
    approve(world, carol, BOB)
    world.wait_status(carol, "active")
    # Steps a crash interrupted: a failure reported after a grant became active (Finalize keeps it and makes its
    # schedules), a request whose flow never started and a grant without its schedule (Reconcile finishes both).
    error = {"Error": "Lambda.Unknown", "Cause": "died after the activation"}
    world.invoke("FinalizeFunction", {"request_id": carol, "outcome": "failed", "error": error})
    world.session.client("scheduler").delete_schedule(
        Name=f"trustgate-expire-{carol}", GroupName=world.stack.refs["ExpiryScheduleGroup"]
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(world.deps.flow, "start", _killed)
        with pytest.raises(_Killed):
            world.api(
                "POST",
                "/requests",
                ALICE,
                {"role": "PumpCustomerAccess", "duration": "PT1H", "justification": JUSTIFICATION},
            )
    world.advance(timedelta(minutes=3))
    report = world.invoke("ReconcileFunction", {})
    assert [f["done"] for f in report["flows"]] == ["flow started"]
    assert report["schedules"]["created"] == [carol]
    # Break-glass: active at once (API, Grant), listed and reviewed (API); another, unreviewed, is reminded a day
    # later (Reconcile).
    rule = {"break_glass": {"requesters": [ERIN], "max_duration": "PT30M"}}
    assert world.api("PUT", "/roles/PumpCustomerAccess/policy", CAROL, rule)[0] == 200
    glass = {"role": "PumpCustomerAccess", "duration": "PT15M", "justification": JUSTIFICATION, "break_glass": True}
    status, body = world.api("POST", "/requests", ERIN, glass)
    assert (status, body["status"]) == (201, "active"), body
    assert world.api("GET", "/requests", BOB, query={"review": "pending"})[0] == 200
    assert world.api("POST", f"/requests/{body['id']}/review", BOB, {"verdict": "ok"})[0] == 200
    world.wait_status(body["id"], "active")  # the flow finished: its expiry schedule is made
    world.advance(timedelta(minutes=20))
    world.fire_schedule(body["id"])
    world.wait_status(body["id"], "expired")
    status, body = world.api("POST", "/requests", ERIN, glass)
    assert status == 201, body
    world.advance(timedelta(days=1, minutes=1))
    assert world.invoke("ReconcileFunction", {})["reviews_reminded"] == [body["id"]]

    # Multi-role: one request for two roles approved on the page (Decide) and granted role by role (Grant), one
    # denied there (Decide ends the other role's request too), one cancelled (API).
    roles = {"roles": ["PumpCustomerAccess", OTHER_NAME], "duration": "PT15M", "justification": JUSTIFICATION}
    for caller, action in ((DAVE, "approve"), (ERIN, "deny"), (CAROL, "cancel")):
        status, body = world.api("POST", "/requests", caller, roles)
        assert status == 201, body
        if action == "cancel":
            world.wait_for_task_token(body["id"])
            assert world.api("POST", f"/requests/{body['id']}/cancel", caller)[0] == 200
            continue
        links = approval_links(world, body["id"], expected=1 if caller == DAVE else 2)  # never the requester
        page = call_page(world, "GET", links[BOB])
        assert call_page(world, "POST", links[BOB], form=form_for(page.body, action)).status == 200
        world.wait_status(body["id"], "active" if action == "approve" else "denied")
        assert world.status(body["parts"][0]) == ("active" if action == "approve" else "denied")

    seen = {function for function, _ in recorder.calls}
    assert seen == set(FUNCTIONS), f"the flows never ran {set(FUNCTIONS) - seen}"
    assert judge(world, recorder.calls) == []
    # And the unauthenticated page touched no IAM and no index.
    decide = {call for function, call in recorder.calls if function == "DecideFunction"}
    assert not any(call.action.startswith(("iam:", "sts:", "dynamodb:Query")) for call in decide)


class _Killed(BaseException):
    """The function dies (no clean-up runs)."""


def _killed(*_: Any, **__: Any) -> Any:
    raise _Killed


def test_the_judge_refuses_what_the_template_does_not_grant(watched: tuple[World, CallRecorder]) -> None:
    world, _ = watched
    table = world.stack.attributes["Table"]["Arn"]
    refused = [
        ("DecideFunction", Call("dynamodb:PutItem", table, "REQUEST#forged")),  # a request from the page
        ("DecideFunction", Call("dynamodb:PutItem", table, "ROLE#" + ROLE_ARN)),  # a role policy
        ("DecideFunction", Call("dynamodb:Query", f"{table}/index/ByKind")),
        ("DecideFunction", Call("iam:UpdateAssumeRolePolicy", ROLE_ARN)),
        ("NotifyApproversFunction", Call("dynamodb:PutItem", table, "LOCK#" + ROLE_ARN)),
        ("NotifyApproversFunction", Call("dynamodb:DeleteItem", table, "OPEN#x")),
        ("GrantFunction", Call("dynamodb:Scan", table)),
        ("ApiFunction", Call("iam:UpdateAssumeRolePolicy", ROLE_ARN.replace("PumpCustomerAccess", "Other"))),
    ]
    assert len(judge(world, set(refused))) == len(refused)
    assert judge(world, {("DecideFunction", Call("dynamodb:UpdateItem", table, "TOKEN#abc"))}) == []


def test_every_schedule_target_is_one_the_scheduler_role_may_call(world: World) -> None:
    """What EventBridge Scheduler does as SchedulerRole: invoke the expire function, start a scheduled request's flow,
    publish a reminder to the personal topic (its universal target) and dead-letter what fails, each allowed by the
    template, and not the shared topic. (Its use of the topic's key holds only via SNS, a condition this judge
    does not evaluate: test_template checks that statement.)"""
    grant = granted(world)
    scheduled = request_access(world, ALICE, start_at="PT3H")["id"]
    approve(world, scheduled)
    assert world.wait_execution(scheduled)["status"] == "SUCCEEDED"
    expire, remind = world.schedule(grant["id"])["Target"], world.schedule(grant["id"], "remind")["Target"]
    start = world.schedule(scheduled, "start")["Target"]
    assert remind["Arn"] == "arn:aws:scheduler:::aws-sdk:sns:publish"
    assert {expire["RoleArn"], remind["RoleArn"], start["RoleArn"]} == {world.stack.attributes["SchedulerRole"]["Arn"]}
    calls = {
        Call("lambda:InvokeFunction", expire["Arn"]),
        Call("states:StartExecution", start["Arn"]),
        Call("sns:Publish", json.loads(remind["Input"])["TopicArn"]),
        Call("sqs:SendMessage", expire["DeadLetterConfig"]["Arn"]),
    }
    assert judge(world, {("SchedulerRole", call) for call in calls}) == []
    refused = {Call("sns:Publish", world.stack.refs["NotificationTopic"]), Call("states:StartExecution", "arn:x")}
    assert len(judge(world, {("SchedulerRole", call) for call in refused})) == 2
