"""What API Gateway does before a function runs, done locally: SigV4 verification, the organization-only
resource policy, open approval-page routes, and refusals in the API's error shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.e2e.drive import ROLE, cli, credentials, send, signed
from trustgate_local.server import LocalStack

pytestmark = pytest.mark.e2e

BODY = {"role": ROLE, "duration": "PT1H", "justification": "tampering test, never created"}


def _refused(answer_status: int, body: object, *, says: str) -> None:
    assert answer_status == 403, body
    assert isinstance(body, dict)
    assert body["error"]["code"] == "forbidden", body
    assert says in body["error"]["message"], body


def test_unsigned_request_is_refused_like_api_gateway(local_stack: LocalStack) -> None:
    answer = send(f"{local_stack.endpoint}/requests")
    _refused(answer.status, answer.body, says="Missing authentication token")
    assert answer.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"


def test_signature_with_the_wrong_secret_is_refused(local_stack: LocalStack) -> None:
    real = credentials(local_stack, "requester")
    answer = signed(local_stack, Credentials(real.access_key, "not-the-secret-key"), "GET", "/requests")
    _refused(answer.status, answer.body, says="signature we calculated does not match")
    assert answer.headers["x-amzn-errortype"] == "InvalidSignatureException"


def test_body_changed_after_signing_is_refused(local_stack: LocalStack) -> None:
    tampered = json.dumps({**BODY, "duration": "PT12H"}).encode()
    answer = signed(local_stack, "requester", "POST", "/requests", BODY, send_body=tampered)
    _refused(answer.status, answer.body, says="signature we calculated does not match")


def test_stale_signature_is_refused(local_stack: LocalStack) -> None:
    answer = signed(local_stack, "requester", "GET", "/requests", at=datetime.now(UTC) - timedelta(minutes=20))
    _refused(answer.status, answer.body, says="Signature expired")


def test_signature_within_the_allowed_clock_skew_is_accepted(local_stack: LocalStack) -> None:
    answer = signed(
        local_stack, "requester", "GET", "/requests?mine=true", at=datetime.now(UTC) - timedelta(minutes=10)
    )
    assert answer.status == 200, answer.body


def test_unknown_access_key_is_refused(local_stack: LocalStack) -> None:
    answer = signed(local_stack, Credentials("AKIAIOSFODNN7EXAMPLE", "x" * 40), "GET", "/requests")
    _refused(answer.status, answer.body, says="security token included in the request is invalid")


def test_signature_for_another_service_is_refused(local_stack: LocalStack) -> None:
    request = AWSRequest("GET", f"{local_stack.endpoint}/requests")
    SigV4Auth(credentials(local_stack, "requester"), "sts", "us-east-1").add_auth(request)
    assert request.url is not None  # AWSRequest keeps the URL it was given
    answer = send(request.url, "GET", None, dict(request.headers.items()))
    _refused(answer.status, answer.body, says="execute-api")


def test_outsider_is_refused_by_the_resource_policy(local_stack: LocalStack) -> None:
    mallory = local_stack.organization.user("outsider")
    answer = signed(local_stack, "outsider", "POST", "/requests", BODY)
    _refused(answer.status, answer.body, says=f"User: {mallory.arn} is not authorized to perform: execute-api:Invoke")
    assert answer.headers["x-amzn-errortype"] == "AccessDeniedException"


def test_outsider_gets_a_clear_refusal_from_the_cli(local_stack: LocalStack) -> None:
    done = cli(
        local_stack, "--profile", "outsider", "request", ROLE, "--duration", "1h", "--reason", "let me in please"
    )
    assert done.returncode == 3, done.stderr  # not authenticated or not allowed
    assert "forbidden" in done.stderr
    assert "not authorized" in done.stderr


def test_member_account_role_session_is_identified_by_its_session_arn(local_stack: LocalStack) -> None:
    # An IAM Identity Center user reaches AWS as a role session; API Gateway names the session.
    alice = credentials(local_stack, "requester")
    sts = boto3.client(
        "sts",
        endpoint_url=local_stack.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id=alice.access_key,
        aws_secret_access_key=alice.secret_key,
    )
    member = local_stack.organization.member_accounts[0]
    session = sts.assume_role(RoleArn=f"arn:aws:iam::{member}:role/Developers", RoleSessionName="erin")["Credentials"]
    session_credentials = Credentials(session["AccessKeyId"], session["SecretAccessKey"], session["SessionToken"])

    answer = signed(local_stack, session_credentials, "GET", "/approvals")
    assert answer.status == 200, answer.body

    without_token = signed(
        local_stack, Credentials(session["AccessKeyId"], session["SecretAccessKey"]), "GET", "/approvals"
    )
    _refused(without_token.status, without_token.body, says="security token included in the request is invalid")


def test_unknown_route_answers_like_api_gateway_even_when_signed(local_stack: LocalStack) -> None:
    answer = signed(local_stack, "requester", "GET", "/no-such-route")
    _refused(answer.status, answer.body, says="Missing authentication token")
    wrong_method = signed(local_stack, "requester", "DELETE", "/requests")
    assert wrong_method.status == 403


def test_approval_page_route_needs_no_signature(local_stack: LocalStack) -> None:
    # The gateway lets it through to the page function, which refuses the bogus token itself.
    answer = send(f"{local_stack.endpoint}/decide/{'x' * 43}")
    assert "x-amzn-errortype" not in answer.headers
    assert answer.headers["content-type"].startswith("text/html")
