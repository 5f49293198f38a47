"""Crash injection for the functional tests, and the invariants that must hold after one reconcile.

A crash is injected at a named step boundary by wrapping the adapter method called there (the IAM editor, the
store, the scheduler, the approval flow) so that it raises once, before or after doing its work. It comes in two
flavours:

* `exception`: an ordinary exception (`Crashed`) escapes there; every `except` and `finally` block runs.
* `kill`: the process dies there. `Killed` is a BaseException, so no `except Exception` runs, and while it
  propagates the role lock's release (`Store.unlock`) does nothing, so the lease stays until it lapses, as a dead
  Lambda's would. The Lambda's caller (Step Functions, the scheduler, API Gateway) sees it fail as Lambda reports a
  crashed runtime (`LambdaDied`).

`leftovers` is the invariant checker: after the crash and one reconcile, what TrustGate left behind that it must
not (orphan principals, lost grants, stuck or stalled requests, leaked locks or schedules, nonconforming live
grants, unaudited IAM writes), each as one readable line; [] when nothing is.

The state machine's own Retry and Catch run as written (its pauses pass on the world clock, like every other
wait here). Deliberately not modelled: the scheduler's retries of a failed target (a fired schedule is deleted,
as `ActionAfterCompletion: DELETE` does once it gives up), so the reconcile alone must finish an expiry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, Literal, NoReturn

import pytest
from boto3.dynamodb.types import TypeDeserializer
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

from tests.support import iam_eval
from tests.support.aws import ALICE, BOB, CAROL, DAVE, ERIN, MALLORY, World
from trustgate.adapters.scheduler import schedule_name
from trustgate.app import sync
from trustgate.app.access import policy_for
from trustgate.app.sync import nonconforming_grants
from trustgate.core.clock import to_rfc3339
from trustgate.core.models import AccessRequest, AuditEvent, RequestStatus
from trustgate.core.records import SCHEDULE_KINDS, Page, iterate_pages
from trustgate.core.trust_policy import (
    GRANT_SID_PREFIX,
    Document,
    aws_principals,
    is_managed,
    same_policy,
    statements_of,
)

Flavour = Literal["kill", "exception"]
FLAVOURS: tuple[Flavour, ...] = ("kill", "exception")
INJECTED = "injected crash"  # in every crash's message: a reason that records a crash is recognisable
PEOPLE = (ALICE, BOB, DAVE, CAROL, ERIN, MALLORY)
# A dead holder's lease lapses in world-clock time while a waiter gives up in real time; with the world clock
# still, any wait shorter than the lease ends as the real 20 s one would: in a lock timeout. So wait 0.5 s.
LOCK_WAIT_SECONDS = 0.5
SETTLE_SECONDS = 20.0
DECISION_IN_TRANSIT_SECONDS = 0.75  # a flow just handed a decision starts moving within this
# The reconciler runs every 5 minutes (template.yaml): the one reconcile after a crash is its next run, by
# which time a dead holder's lease (sync.LOCK_LEASE, 60 s) has lapsed.
RECONCILE_PERIOD = timedelta(minutes=5)

_deserialize = TypeDeserializer()
_dying = threading.local()  # set in the thread whose process was just killed, until the kill leaves the Lambda


class Killed(BaseException):
    """The process died here: no `except Exception` runs, and no lock is released (see `Crash`)."""


class Crashed(Exception):
    """An ordinary exception escaped here: every except and finally block runs."""


class LambdaDied(Exception):
    """What the caller of a killed Lambda sees: the invocation failed without an answer."""


# Step Functions reports a Lambda that died (its runtime exited, ran out of memory, timed out) as Lambda.Unknown,
# and the local host names a handler's error after its exception's class.
LambdaDied.__name__ = LambdaDied.__qualname__ = "Lambda.Unknown"


# -- IAM writes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IamWrite:
    """One document IAM accepted: a role's trust policy or its session guard (None: the guard was deleted)."""

    role_arn: str
    kind: Literal["trust policy", "session guard"]
    document: Document | None


class IamWriteLog:
    """Every trust policy and session guard IAM held over a scenario, as TrustGate wrote them."""

    def __init__(self, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
        self.writes: list[IamWrite] = []
        roles = world.deps.roles
        write_trust = roles.write_trust_policy
        write_guard = roles.write_session_guard

        def trust(role_arn: str, document: Document) -> None:
            write_trust(role_arn, document)
            self.writes.append(IamWrite(role_arn, "trust policy", document))

        def guard(role_arn: str, document: Document | None) -> None:
            write_guard(role_arn, document)
            self.writes.append(IamWrite(role_arn, "session guard", document))

        monkeypatch.setattr(roles, "write_trust_policy", trust)
        monkeypatch.setattr(roles, "write_session_guard", guard)


# -- the crash -------------------------------------------------------------------------------------


class Crash:
    """One crash, armed at a named boundary with `at`, fired once by whichever thread gets there first.

    Installs, for the whole test: the IAM write log, the Lambda host's view of a killed process, and a role lock
    release that a dying process skips.
    """

    def __init__(self, world: World, monkeypatch: pytest.MonkeyPatch, flavour: Flavour) -> None:
        self.world = world
        self.monkeypatch = monkeypatch
        self.flavour = flavour
        self.iam = IamWriteLog(world, monkeypatch)
        self.step: str | None = None
        self.fired: str | None = None
        self._guard = threading.Lock()
        monkeypatch.setattr(sync, "LOCK_WAIT_SECONDS", LOCK_WAIT_SECONDS)
        monkeypatch.setattr(sync, "QUEUED_WAIT_SECONDS", LOCK_WAIT_SECONDS)  # a queued change (a Grant step) too
        self._install_flow_retries(world, monkeypatch)
        self._install_host(world, monkeypatch)
        self._install_unlock(world, monkeypatch)

    @staticmethod
    def _install_flow_retries(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
        """A state's Retry pauses on the world clock, as every other wait of the world does: a flow retrying a
        busy role sees a dead holder's lease lapse as it would in AWS, without the test sleeping for it."""

        def pause(seconds: float) -> None:
            world.advance(timedelta(seconds=seconds))
            time.sleep(0.01)

        monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=pause))

    @staticmethod
    def _install_host(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
        invoke = world.host.invoke

        def invoke_as_lambda(function: Any, event: Any) -> Any:
            try:
                return invoke(function, event)
            except Killed as killed:
                _dying.active = False  # the process is gone; the next invocation is a new one
                raise LambdaDied(f"{function.name} died ({killed})") from None

        monkeypatch.setattr(world.host, "invoke", invoke_as_lambda)

    @staticmethod
    def _install_unlock(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
        store = world.deps.store
        unlock = store.unlock

        def unlock_unless_dead(name: str, owner: str) -> None:
            if getattr(_dying, "active", False):
                return  # a dead process releases nothing: its lease stays until it lapses
            unlock(name, owner)

        monkeypatch.setattr(store, "unlock", unlock_unless_dead)

    def at(
        self,
        target: object,
        method: str,
        step: str,
        *,
        after: bool = False,
        when: Callable[..., bool] | None = None,
    ) -> None:
        """Crash at the next call of `target.method` (that `when` accepts): before it, or after it did its work.

        Arming several methods with the same step crashes at whichever is called first, once.
        """
        assert self.step in (None, step), f"one crash per scenario: {self.step!r} is armed already"
        self.step = step
        original = getattr(target, method)

        def crashing(*args: Any, **kwargs: Any) -> Any:
            if not self._take(when, args, kwargs):
                return original(*args, **kwargs)
            if after:
                original(*args, **kwargs)
            self._ignite(step)

        self.monkeypatch.setattr(target, method, crashing)

    def _take(self, when: Callable[..., bool] | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        if self.fired is not None or (when is not None and not when(*args, **kwargs)):
            return False
        with self._guard:
            if self.fired is not None:
                return False
            self.fired = f"{self.step} (in {threading.current_thread().name})"
            return True

    def _ignite(self, step: str) -> NoReturn:
        if self.flavour == "kill":
            _dying.active = True
            raise Killed(f"{INJECTED}: killed {step}")
        raise Crashed(f"{INJECTED}: exception {step}")

    def wait_fired(self, timeout: float = SETTLE_SECONDS) -> str:
        """Where the crash fired (the flows run on their own threads); fails if it never did."""
        deadline = time.monotonic() + timeout
        while self.fired is None:
            assert time.monotonic() < deadline, f"the crash at {self.step!r} never fired: the scenario missed it"
            time.sleep(0.05)
        return self.fired

    # -- driving -----------------------------------------------------------------------------------

    def api(self, method: str, path: str, caller: str, body: Any = None) -> tuple[int, Any]:
        """`world.api`, answering 502 as API Gateway does when the Lambda died."""
        try:
            return self.world.api(method, path, caller, body)
        except LambdaDied as died:
            return 502, {"message": str(died)}

    def fire_schedule(self, request_id: str) -> Any:
        """What the scheduler does at a grant's expiry: invoke its target, then delete the one-time schedule.

        Returns the target's answer, or the exception the invocation ended in."""
        world = self.world
        try:
            answer = world.fire_schedule(request_id)
        except (Crashed, LambdaDied) as error:
            answer = error
        world.session.client("scheduler").delete_schedule(
            Name=schedule_name(request_id), GroupName=world.stack.refs["ExpiryScheduleGroup"]
        )
        return answer

    def reconcile(self) -> list[str]:
        """Once the flows settled: wait for the reconciler's next run (a dead holder's lease has lapsed by then),
        run it ONCE, and let the flows it resumed settle.

        Returns what went wrong in the reconcile itself (an error it raised, or a failure it reported)."""
        settle(self.world)
        self.world.advance(RECONCILE_PERIOD + timedelta(seconds=1))
        try:
            report = self.world.invoke("ReconcileFunction", {})
        except Exception as error:
            return [f"reconcile error: the reconciler raised {type(error).__name__}: {error}"]
        finally:
            settle(self.world)
        failures = report.get("failures")
        if failures is None:  # a report of roles only
            failures = [{"part": r["role_arn"], "error": r["error"]} for r in report["roles"] if r.get("error")]
        return [f"reconcile error: {failure['part']}: {failure['error']}" for failure in failures]


# -- the approval flows ----------------------------------------------------------------------------


def _executions(world: World) -> list[dict[str, Any]]:
    sfn = world.session.client("stepfunctions")
    arn = world.stack.attributes["ApprovalStateMachine"]["Arn"]
    return [dict(execution) for execution in sfn.list_executions(stateMachineArn=arn)["executions"]]


def _awaits_decision(world: World, execution_arn: str) -> bool:
    """Is this flow parked in WaitForApproval (its notify step returned; only a task token resumes it)?"""
    sfn = world.session.client("stepfunctions")
    events = sfn.get_execution_history(executionArn=execution_arn)["events"]
    if not events:
        return False
    last = events[-1]
    resource = last.get("taskSubmittedEventDetails", {}).get("resource")
    return last["type"] == "TaskSubmitted" and resource == "invoke.waitForTaskToken"


def _undecided(world: World, request_id: str) -> bool:
    try:
        request = world.deps.store.get_request(request_id)
    except Exception:
        return False
    return request.status == RequestStatus.PENDING and request.decided_at is None


def settle(world: World, timeout: float = SETTLE_SECONDS) -> None:
    """Wait until every flow has finished or waits for a decision nobody made yet. A flow that waits although
    its request was decided is given a moment (the decision may be on its way), then left for the checker."""
    deadline = time.monotonic() + timeout
    waiting_since: dict[str, float] = {}
    while time.monotonic() < deadline:
        busy = False
        for execution in _executions(world):
            if execution["status"] != "RUNNING":
                continue
            if not _awaits_decision(world, execution["executionArn"]):
                busy = True
            elif not _undecided(world, execution["name"]):
                since = waiting_since.setdefault(execution["name"], time.monotonic())
                busy = busy or time.monotonic() - since < DECISION_IN_TRANSIT_SECONDS
        if not busy:
            return
        time.sleep(0.1)


# -- the invariants --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Role:
    arn: str
    trust_policy: Document
    grants: list[AccessRequest]  # every request of the role


def leftovers(world: World, crash: Crash) -> list[str]:
    """Everything the invariants forbid that is there now; [] when TrustGate left nothing behind."""
    deps = world.deps
    now = deps.clock.now()
    requests = list(iterate_pages(deps.store.all_requests))
    executions = {e["name"]: e for e in _executions(world)}
    found: list[str] = []
    for role_arn in deps.settings.managed_role_arns:
        role = _Role(role_arn, deps.roles.trust_policy(role_arn), [r for r in requests if r.role_arn == role_arn])
        audit = _audit_of(world, role_arn)
        found += _orphans_and_unnamed(role, now)
        found += _lost_grants(role, audit, now)
        found += _stuck(world, role, executions, now)
        found += _leaked_schedules(world, role, now)
        found += _nonconforming(world, role, now)
        found += _unaudited(crash, role, audit)
    found += _leaked_locks(world, now)
    return found


def _audit_of(world: World, role_arn: str) -> list[AuditEvent]:
    store = world.deps.store

    def page(cursor: str | None) -> Page[AuditEvent]:
        return store.audit_events(role_arn=role_arn, cursor=cursor)

    return list(iterate_pages(page))


def _live(grants: list[AccessRequest], now: datetime) -> list[AccessRequest]:
    return [g for g in grants if g.is_grant_live(now)]


def _named_until(document: Document, now: datetime) -> dict[str, datetime]:
    """Principals TrustGate's grant statements let in now, each with the statement's end."""
    named: dict[str, datetime] = {}
    for statement in statements_of(document):
        sid = statement.get("Sid")
        if not (isinstance(sid, str) and sid.startswith(GRANT_SID_PREFIX)):
            continue
        raw = statement.get("Condition", {}).get("DateLessThan", {}).get("aws:CurrentTime")
        ends = (
            datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if isinstance(raw, str)
            else datetime.max.replace(tzinfo=UTC)
        )
        if ends <= now:
            continue
        for arn in aws_principals(statement):
            named[arn] = max(named.get(arn, ends), ends)
    return named


def _orphans_and_unnamed(role: _Role, now: datetime) -> list[str]:
    """Orphan principals (named without a live grant), and live grants IAM does not let in (lost grants); the
    second judgement is AWS's, by the independent evaluator, over TrustGate's own statements."""
    found: list[str] = []
    live = {g.principal_arn: g for g in _live(role.grants, now)}
    named = _named_until(role.trust_policy, now)
    for arn, until in sorted(named.items()):
        if arn not in live:
            found.append(f"orphan principal: the trust policy names {arn} until {to_rfc3339(until)} with no live grant")
    managed = [s for s in statements_of(role.trust_policy) if is_managed(s)]
    people = sorted({*PEOPLE, *named, *live} - {"*"})
    if not managed or not people:
        return found
    policy = {"Version": "2012-10-17", "Statement": managed}
    cases = [_assume_case(f"case{i}", arn, role.arn, policy, now) for i, arn in enumerate(people)]
    for arn, decision in zip(people, iam_eval.evaluate(cases), strict=True):
        allowed = decision == iam_eval.ALLOWED
        if allowed and arn not in live:
            found.append(f"orphan principal: {arn} can assume {role.arn} (AWS's evaluation) with no live grant")
        if not allowed and arn in live:
            found.append(f"lost grant: {live[arn].id} is active but {arn} cannot assume the role ({decision})")
    return found


def _assume_case(case_id: str, arn: str, role_arn: str, policy: Document, now: datetime) -> iam_eval.IamCase:
    """`arn`, an IAM user, asks for a session named as TrustGate pins it (its user name), with MFA."""
    name = arn.rsplit("/", 1)[-1]
    context: dict[str, str] = {
        "aws:CurrentTime": to_rfc3339(now),
        "aws:PrincipalArn": arn,
        "aws:userid": "AIDA" + name.upper().ljust(16, "X"),
        "aws:MultiFactorAuthPresent": "true",
        "sts:RoleSessionName": name,
    }
    if ":user/" in arn:
        context["aws:username"] = name
    return iam_eval.assume_role(case_id, arn, role_arn, policy, context)


def _approved(request: AccessRequest) -> bool:
    return request.decided_at is not None and not request.approvals_by("deny")


def _lost_grants(role: _Role, audit: list[AuditEvent], now: datetime) -> list[str]:
    """Every approved request is active (named: see `_orphans_and_unnamed`) or ended for a recorded reason that
    is not the crash itself taking back a grant that had been given."""
    granted = {e.request_id for e in audit if e.action == "request.granted"}
    found: list[str] = []
    for r in role.grants:
        if not _approved(r):
            continue
        status = r.status
        if status == RequestStatus.PENDING:
            found.append(f"lost grant: {r.id} was approved at {to_rfc3339(r.decided_at or now)} and is still pending")
        elif status in (RequestStatus.TIMED_OUT, RequestStatus.DENIED):
            found.append(f"lost grant: {r.id} was approved, yet ended {status.value} ({r.reason})")
        elif status in (RequestStatus.FAILED, RequestStatus.REVOKED) and not r.reason:
            found.append(f"lost grant: {r.id} was approved and ended {status.value} with no recorded reason")
        elif status == RequestStatus.FAILED and r.id in granted and INJECTED in (r.reason or ""):
            found.append(f"lost grant: {r.id} was granted, then failed only because a step died after it: {r.reason}")
    return found


def _flow_of(world: World, execution: dict[str, Any] | None) -> str:
    """A request's flow in words: never started, waits for a decision, running, or how it ended."""
    if execution is None:
        return "never started"
    if execution["status"] != "RUNNING":
        return str(execution["status"]).lower()
    return "waits for a decision" if _awaits_decision(world, execution["executionArn"]) else "running"


def _stuck(world: World, role: _Role, executions: dict[str, dict[str, Any]], now: datetime) -> list[str]:
    """No pending request without a running flow or with a grant begun; no decision its flow still waits for;
    no active grant past its end; no change on the role's sync queue that no sync served."""
    found: list[str] = []
    for r in role.grants:
        flow = _flow_of(world, executions.get(r.id))
        running = flow in ("waits for a decision", "running")
        if r.status == RequestStatus.PENDING:
            if not running:
                found.append(f"stuck request: {r.id} is pending and its approval flow is not running ({flow})")
            if r.starts_at is not None:
                found.append(
                    f"stuck request: {r.id} is pending with a grant window recorded ({to_rfc3339(r.starts_at)})"
                )
            if running and r.decided_at is not None:
                found.append(f"stalled request: {r.id} was decided at {to_rfc3339(r.decided_at)}; its flow {flow}")
        elif running:
            found.append(f"stalled request: {r.id} is {r.status.value}; its flow {flow}")
        if r.status == RequestStatus.ACTIVE and r.expires_at is not None and r.expires_at <= now:
            found.append(f"stuck request: {r.id} is still active past its end ({to_rfc3339(r.expires_at)})")
    found += _unserved(world, role.arn)
    return found


def lock_items(world: World) -> dict[str, dict[str, Any]]:
    """Every role's lock item (`LOCK#<role>`: its lease and its sync queue), read from the table as stored."""
    store = world.deps.store
    scan = store.client.scan(
        TableName=store.table,
        FilterExpression="begins_with(pk, :lock)",
        ExpressionAttributeValues={":lock": {"S": "LOCK#"}},
        ConsistentRead=True,
    )
    items = [{key: _deserialize.deserialize(value) for key, value in item.items()} for item in scan["Items"]]
    return {str(item["pk"]).removeprefix("LOCK#"): item for item in items}


def lease_of(item: dict[str, Any] | None) -> datetime | None:
    """Until when the lock item's holder holds it (None: nobody does)."""
    lease = (item or {}).get("lease_until")
    if not (item or {}).get("owner") or not isinstance(lease, str):
        return None
    return datetime.fromisoformat(lease.replace("Z", "+00:00"))


def lock_held(world: World, role_arn: str) -> bool:
    lease = lease_of(lock_items(world).get(role_arn))
    return lease is not None and lease > world.deps.clock.now()


def _leaked_locks(world: World, now: datetime) -> list[str]:
    found = []
    for name, item in lock_items(world).items():
        lease = lease_of(item)
        if lease is not None and lease > now:
            found.append(f"leaked lock: LOCK#{name} is held by {item['owner']} until {to_rfc3339(lease)}")
    return found


def _unserved(world: World, role_arn: str) -> list[str]:
    """Changes recorded on the role's sync queue that no sync served (see sync.sync_role)."""
    item = lock_items(world).get(role_arn) or {}
    wanted, done = int(item.get("wanted", 0)), int(item.get("done", 0))
    activate, changed = sorted(item.get("activate", ())), sorted(item.get("changed", ()))
    if done >= wanted and not activate and not changed:
        return []
    return [
        f"stuck sync: {role_arn} has changes no sync served (wanted {wanted}, done {done}, activate {activate}, "
        f"changed {changed})"
    ]


def _schedules(world: World) -> dict[str, datetime]:
    """Every schedule in the expiry group: name -> when it fires."""
    client = world.session.client("scheduler")
    group = world.stack.refs["ExpiryScheduleGroup"]
    found = {}
    for summary in client.list_schedules(GroupName=group)["Schedules"]:
        expression = client.get_schedule(Name=summary["Name"], GroupName=group)["ScheduleExpression"]
        found[summary["Name"]] = datetime.fromisoformat(expression.removeprefix("at(").removesuffix(")")).replace(
            tzinfo=UTC
        )
    return found


def _leaked_schedules(world: World, role: _Role, now: datetime) -> list[str]:
    """No schedule still to fire for a request that is not active; every live grant has its expiry schedule, at
    its end. (One due already has fired: the scheduler deletes it then.)"""
    schedules = _schedules(world)
    found: list[str] = []
    for r in role.grants:
        for kind in SCHEDULE_KINDS:
            name = schedule_name(r.id, kind)
            at = schedules.get(name)
            owner = RequestStatus.SCHEDULED if kind == "start" else RequestStatus.ACTIVE  # whose schedule it is
            if at is not None and at > now and r.status != owner:
                found.append(
                    f"leaked schedule: {name} fires at {to_rfc3339(at)} for a request that is {r.status.value}"
                )
    for g in _live(role.grants, now):
        at = schedules.get(schedule_name(g.id))
        assert g.expires_at is not None
        if at is None:
            found.append(f"missing schedule: active grant {g.id} has no expiry schedule")
        elif at != g.expires_at.replace(microsecond=0):
            found.append(
                f"wrong schedule: {g.id}'s expiry fires at {to_rfc3339(at)}, its end is {to_rfc3339(g.expires_at)}"
            )
    return found


def _nonconforming(world: World, role: _Role, now: datetime) -> list[str]:
    deps = world.deps
    live = _live(role.grants, now)
    ending = nonconforming_grants(live, policy_for(deps, role.arn), deps.settings, now)
    return [f"nonconforming live grant: {grant_id} is active although {why}" for grant_id, why in ending.items()]


def _unaudited(crash: Crash, role: _Role, audit: list[AuditEvent]) -> list[str]:
    """Every document IAM was given has an audit record of its own: each write takes one `role.synced` /
    `guard.synced` record of the role whose `after` is that document (a second write of the same document
    needs a second record)."""
    unclaimed = {
        "trust policy": [e.after for e in audit if e.action == "role.synced"],
        "session guard": [e.after for e in audit if e.action == "guard.synced"],
    }
    found: list[str] = []
    for number, write in enumerate(crash.iam.writes, 1):
        if write.role_arn != role.arn:
            continue
        records = unclaimed[write.kind]
        match = next((i for i, after in enumerate(records) if _same(write.document, after)), None)
        if match is None:
            found.append(f"unaudited IAM write: write #{number}, a {write.kind} of {role.arn}, has no audit record")
        else:
            del records[match]
    return found


def _same(left: Document | None, right: Document | None) -> bool:
    if left is None or right is None:
        return left is None and right is None
    return same_policy(left, right)
