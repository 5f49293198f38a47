"""Retries are counted once (issue 11): one layer retries each kind of AWS error, within a budget that ends
before the functions that sync time out.

IAM: botocore makes one attempt, `iam.with_backoff` alone retries (throttling, IAM's eventual consistency, its
transient failures, transport errors) with full jitter under a time budget. Every other service: botocore's
standard mode, a few attempts. The worst case of each is computed here from the constants and compared with the
Timeout template.yaml gives every function that syncs.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from time import monotonic
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from tests.support.aws import api_event
from trustgate.adapters import iam, wiring
from trustgate.adapters.events import EventNotPublishedError, EventPublisher
from trustgate.adapters.iam import RoleEditor, with_backoff
from trustgate.adapters.throttling import is_throttling, throttles_as_throttled_error, throttling_in
from trustgate.api import app as api_app
from trustgate.api.app import TrustGateResolver
from trustgate.app import sync, transitions
from trustgate.app.transitions import publish_quietly
from trustgate.core.errors import ConflictError, ThrottledError
from trustgate.core.models import AuditEvent
from trustgate.core.retry_budget import retry_deadline, time_budget
from trustgate.core.settings import Settings
from trustgate_local.template import load_template

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
API_GATEWAY_LIMIT_SECONDS = 29  # API Gateway's integration timeout: the API must answer before it
ROLE_ARN = "arn:aws:iam::123456789012:role/PumpCustomerAccess"


def throttled(operation: str = "GetRole") -> ClientError:
    return ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, operation)


class FakeTime:
    """A monotonic clock that only moves when the code sleeps or an attempt takes time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.pauses: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


# -- the arithmetic, against template.yaml ------------------------------------------------------------


def sync_function_timeouts() -> dict[str, int]:
    """Each function that syncs (its role is under /trustgate/sync/, the path the editor role trusts) and its
    Timeout (its own, else the Globals one)."""
    template = load_template(ROOT / "template.yaml")
    default = int(template["Globals"]["Function"]["Timeout"])
    return {
        name: int(resource["Properties"].get("Timeout", default))
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
        and resource["Properties"].get("RolePath") == "/trustgate/sync/"
    }


def test_the_functions_that_sync_are_the_ones_the_budget_was_computed_for() -> None:
    timeouts = sync_function_timeouts()
    assert set(timeouts) == {"ApiFunction", "GrantFunction", "FinalizeFunction", "ExpireFunction", "ReconcileFunction"}
    assert min(timeouts.values()) == timeouts["ApiFunction"] == 30


def test_one_iam_call_with_all_its_retries_ends_before_any_function_that_syncs_times_out() -> None:
    attempt = iam.CONNECT_TIMEOUT_SECONDS + iam.READ_TIMEOUT_SECONDS  # an attempt that runs into its timeouts
    pauses = [min(iam.BACKOFF_CAP_SECONDS, iam.BACKOFF_BASE_SECONDS * 2**n) for n in range(iam.ATTEMPTS - 1)]
    every_attempt = iam.ATTEMPTS * attempt + sum(pauses)  # 6 x 7 + 11.5 = 53.5 s without a budget
    within_budget = iam.RETRY_BUDGET_SECONDS + attempt  # no pause ends past the budget: 8 + 7 = 15 s
    worst = min(every_attempt, within_budget)

    assert iam.worst_case_seconds() == worst == 15
    assert worst < min(min(sync_function_timeouts().values()), API_GATEWAY_LIMIT_SECONDS)


def test_one_iam_write_with_all_its_retries_ends_inside_the_lease_renewed_just_before_it() -> None:
    # Every IAM write of a sync begins inside a lease set at most FENCE_FRESH before (sync._fenced renews an
    # older one): it must end before the lease can lapse, or a second holder could write the same role at once.
    # Before the write, the IAM client may refresh a cross-account editor role's credentials (one STS call).
    write = wiring.worst_case_call_seconds() + iam.worst_case_seconds()
    assert write < (sync.LOCK_LEASE - sync.FENCE_FRESH).total_seconds()


def test_an_api_call_stops_all_its_iam_retries_after_its_lock_wait_and_before_api_gateways_limit() -> None:
    app = TrustGateResolver()
    left: list[float] = []

    @app.get("/probe")
    def probe() -> dict[str, str]:
        left.append(retry_deadline() - monotonic())
        return {}

    response = app.resolve(api_event("GET", "/probe", None), LambdaContext())

    assert response["statusCode"] == 200
    assert sync.LOCK_WAIT_SECONDS < left[0] <= api_app.RETRY_SECONDS < API_GATEWAY_LIMIT_SECONDS
    assert retry_deadline() == float("inf")  # only inside the call


def test_a_sync_round_bounds_the_retries_of_all_its_iam_calls() -> None:
    assert sync.LOCK_LEASE.total_seconds() > sync.ROUND_RETRY_SECONDS
    # A queued change (Grant, Finalize, Expire: 120 s) waits at most QUEUED_WAIT_SECONDS, then its round's
    # retries stop after ROUND_RETRY_SECONDS, plus the call under way then.
    queued = {name: t for name, t in sync_function_timeouts().items() if name not in ("ApiFunction",)}
    assert sync.QUEUED_WAIT_SECONDS + sync.ROUND_RETRY_SECONDS + iam.worst_case_seconds() < min(queued.values())


def test_one_call_to_any_other_service_with_botocores_retries_ends_before_any_function_that_syncs_times_out() -> None:
    attempt = wiring.AWS_CONNECT_TIMEOUT_SECONDS + wiring.AWS_READ_TIMEOUT_SECONDS
    # botocore's standard mode: pause n at most min(2**n, 20) s, raised by x-amz-retry-after by at most 5 s.
    pauses = [min(2**n, 20) + 5 for n in range(wiring.AWS_ATTEMPTS - 1)]
    worst = wiring.AWS_ATTEMPTS * attempt + sum(pauses)  # 3 x 5 + (6 + 7) = 28 s

    assert wiring.worst_case_call_seconds() == worst == 28
    assert worst < min(min(sync_function_timeouts().values()), API_GATEWAY_LIMIT_SECONDS)


def test_the_clients_are_built_with_these_numbers() -> None:
    deps = wiring.Dependencies(Settings(), boto3.Session(region_name="us-east-1"))

    iam_config = deps.client("iam").meta.config
    assert iam_config.retries == {"mode": "standard", "total_max_attempts": 1}
    assert (iam_config.connect_timeout, iam_config.read_timeout) == (2, 5)
    for service in ("dynamodb", "stepfunctions", "scheduler", "sns", "events", "sts"):
        config = deps.client(service).meta.config
        assert config.retries == {"mode": "standard", "total_max_attempts": wiring.AWS_ATTEMPTS}, service
        assert (config.connect_timeout, config.read_timeout) == (1, 4), service


# -- counted once, for real: a client that cannot reach IAM ---------------------------------------------


def attempts_made(client: Any) -> list[str]:
    """The HTTP requests a client really sends (each botocore attempt sends one)."""
    sent: list[str] = []
    client.meta.events.register("before-send", lambda request, **_: sent.append(request.url))
    return sent


def test_an_unreachable_iam_is_tried_exactly_attempts_times_not_attempts_times_botocores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens: the connection is refused
    deps = wiring.Dependencies(Settings(), boto3.Session(region_name="us-east-1"), sleep=lambda _: None)
    client = deps.client("iam")
    sent = attempts_made(client)
    editor = RoleEditor(lambda _: client, sleep=lambda _: None)

    with pytest.raises(EndpointConnectionError):
        editor.trust_policy(ROLE_ARN)

    assert len(sent) == iam.ATTEMPTS  # 6 calls; botocore's 5 times the loop's 6 made 30 before


def test_botocore_alone_retries_the_other_services(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    client = wiring.Dependencies(Settings(), boto3.Session(region_name="us-east-1")).client("dynamodb")
    sent = attempts_made(client)

    with pytest.raises(EndpointConnectionError):
        client.describe_table(TableName="trustgate")

    assert len(sent) == wiring.AWS_ATTEMPTS


# -- the loop: full jitter within the budget ------------------------------------------------------------


def test_throttling_is_retried_with_full_jitter_and_given_up_within_the_budget() -> None:
    time = FakeTime()
    calls = itertools.count(1)

    def get_role() -> None:
        next(calls)
        raise throttled()

    with pytest.raises(ClientError) as raised:
        with_backoff(get_role, sleep=time.sleep, clock=time.clock)

    assert raised.value.response["Error"]["Code"] == "Throttling"  # the caller sees the throttle (API: 429)
    made = next(calls) - 1
    assert 1 < made <= iam.ATTEMPTS
    assert all(0 <= pause <= iam.pause_cap(n) for n, pause in enumerate(time.pauses))
    assert time.now - 1000.0 <= iam.RETRY_BUDGET_SECONDS


def test_attempts_that_run_into_their_timeouts_stay_within_the_worst_case() -> None:
    time = FakeTime()
    attempt = iam.CONNECT_TIMEOUT_SECONDS + iam.READ_TIMEOUT_SECONDS

    def update() -> None:
        time.now += attempt  # the whole connect and read timeout, every time
        raise ReadTimeoutError(endpoint_url="https://iam.amazonaws.com/")

    with pytest.raises(ReadTimeoutError):
        with_backoff(update, sleep=time.sleep, clock=time.clock)

    assert time.now - 1000.0 <= iam.worst_case_seconds()


def test_a_pause_that_would_end_past_the_budget_is_not_taken() -> None:
    time = FakeTime()
    calls: list[float] = []

    def write() -> None:
        calls.append(time.now)
        time.now += 3.0  # slow answers: the budget runs out after a few
        raise throttled("UpdateAssumeRolePolicy")

    with pytest.raises(ClientError):
        with_backoff(write, sleep=time.sleep, clock=time.clock)

    assert calls[-1] - calls[0] <= iam.RETRY_BUDGET_SECONDS  # no attempt started after the budget
    assert len(calls) < iam.ATTEMPTS


def test_a_time_budget_bounds_the_retries_of_every_call_inside_it() -> None:
    time = FakeTime()
    attempts: list[str] = []

    def failing(name: str) -> Callable[[], None]:
        def call() -> None:
            attempts.append(name)
            time.now += 1.0
            raise throttled(name)

        return call

    with time_budget(2.5, clock=time.clock):
        for name in ("GetRole", "ListRolePolicies"):
            with pytest.raises(ClientError):
                with_backoff(failing(name), sleep=time.sleep, clock=time.clock)

    # The budget, the attempt under way when it ran out, and the next call's one attempt (a first attempt is
    # always made; only retries are bounded).
    assert time.now - 1000.0 <= 2.5 + 1.0 + 1.0
    assert attempts.count("ListRolePolicies") == 1  # the budget was spent: one attempt, no retry


def test_outside_a_time_budget_the_per_call_budget_applies_again() -> None:
    time = FakeTime()
    with time_budget(0.0, clock=time.clock):
        pass
    calls = itertools.count(1)

    def flaky() -> str:
        if next(calls) < 3:
            raise throttled()
        return "ok"

    assert with_backoff(flaky, sleep=time.sleep, clock=time.clock) == "ok"


def server_error(code: str, status: int) -> ClientError:
    response: Any = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "GetRole")


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (ClientError({"Error": {"Code": "Throttling"}}, "GetRole"), True),
        (server_error("ServiceFailure", 500), True),
        (server_error("InternalError", 503), True),
        (EndpointConnectionError(endpoint_url="https://iam.amazonaws.com/"), True),
        (ReadTimeoutError(endpoint_url="https://iam.amazonaws.com/"), True),
        (ClientError({"Error": {"Code": "LimitExceeded", "Message": "policy too large"}}, "PutRolePolicy"), False),
        (ClientError({"Error": {"Code": "AccessDenied"}}, "GetRole"), False),
        (ValueError("not AWS"), False),
    ],
)
def test_which_errors_the_iam_loop_retries(error: BaseException, retried: bool) -> None:
    assert iam.is_retryable(error) is retried


# -- which AWS errors are "busy, retry": the API answers them 429 throttled ----------------------------------


def cancelled(*reasons: str) -> ClientError:
    response: Any = {
        "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
        "CancellationReasons": [{"Code": reason} for reason in reasons],
    }
    return ClientError(response, "TransactWriteItems")


@pytest.mark.parametrize(
    ("error", "busy"),
    [
        (ClientError({"Error": {"Code": "ThrottlingException"}}, "GetItem"), True),
        (ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "Query"), True),
        (ClientError({"Error": {"Code": "RequestLimitExceeded"}}, "PutItem"), True),
        (ClientError({"Error": {"Code": "TooManyRequestsException"}}, "StartExecution"), True),
        (ClientError({"Error": {"Code": "Throttling"}}, "GetRole"), True),
        (cancelled("None", "ThrottlingError"), True),
        (cancelled("TransactionConflict", "None"), True),
        (cancelled("ConditionalCheckFailed", "None"), False),  # the item changed: a real conflict, 409
        (cancelled("ConditionalCheckFailed", "TransactionConflict"), False),
        (ClientError({"Error": {"Code": "ConditionalCheckFailedException"}}, "UpdateItem"), False),
        (ClientError({"Error": {"Code": "LimitExceeded"}}, "PutRolePolicy"), False),  # IAM's size quota
        (ClientError({"Error": {"Code": "AccessDenied"}}, "GetRole"), False),
    ],
)
def test_which_aws_errors_mean_busy(error: ClientError, busy: bool) -> None:
    assert is_throttling(error) is busy


def conflict_made_of(error: ClientError) -> ConflictError:
    """The store's ConflictError for a cancelled transaction, raised from the AWS error as the store does."""
    try:
        try:
            raise error
        except ClientError as cause:
            raise ConflictError("request r changed meanwhile; read it again") from cause
    except ConflictError as conflict:
        return conflict


def test_a_throttle_is_found_behind_the_domain_error_made_of_it() -> None:
    conflict = conflict_made_of(cancelled("ThrottlingError"))

    assert throttling_in(conflict) is conflict.__cause__
    assert throttling_in(conflict_made_of(cancelled("ConditionalCheckFailed"))) is None
    assert throttling_in(ConflictError("a real one")) is None


# -- events: a refused entry is a failure, and callers never fail an operation for it -----------------------


def audit_event() -> AuditEvent:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return AuditEvent(id="e-1", at=now, actor="test", action="request.approved", role_arn=ROLE_ARN)


def stubbed_events(response: dict[str, Any]) -> tuple[EventPublisher, Stubber]:
    client = boto3.client("events", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    stubber.add_response("put_events", response)
    stubber.activate()
    return EventPublisher(client, "default"), stubber


def test_an_entry_eventbridge_refused_raises_a_clear_error() -> None:
    publisher, _ = stubbed_events(
        {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}]}
    )

    with pytest.raises(EventNotPublishedError, match=r"trustgate\.request\.approved.*ThrottlingException"):
        publisher.publish(audit_event())


def test_an_accepted_entry_is_published() -> None:
    publisher, stubber = stubbed_events({"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]})

    publisher.publish(audit_event())

    stubber.assert_no_pending_responses()


def test_publishing_quietly_logs_and_counts_what_was_not_published(monkeypatch: pytest.MonkeyPatch) -> None:
    counted: list[str] = []
    monkeypatch.setattr(transitions, "count", counted.append)
    publisher, _ = stubbed_events({"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure"}]})

    assert publish_quietly(publisher, audit_event()) is False
    assert counted == ["EventsNotPublished"]


def test_a_workflow_step_turns_a_throttle_into_the_error_the_state_machine_retries() -> None:
    with pytest.raises(ThrottledError) as raised, throttles_as_throttled_error():
        raise ClientError({"Error": {"Code": "ThrottlingException"}}, "TransactWriteItems")
    assert raised.value.status == 429

    busy_table = conflict_made_of(cancelled("ThrottlingError"))
    with pytest.raises(ThrottledError), throttles_as_throttled_error():
        raise busy_table

    with pytest.raises(ConflictError), throttles_as_throttled_error():
        raise ConflictError("request r is denied; nothing to grant")
    with pytest.raises(ClientError), throttles_as_throttled_error():
        raise ClientError({"Error": {"Code": "AccessDenied"}}, "GetRole")
