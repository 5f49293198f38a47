"""Malformed input through the local API gateway (issue 10, section 9): every answer is JSON in the API's error
shape and a 4xx, never an HTML page or a 5xx, and nothing changes."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from tests.e2e.drive import ROLE, Answer, credentials, send, signed
from trustgate_local.server import LocalStack

pytestmark = pytest.mark.e2e

POLICY = f"/roles/{ROLE}/policy"


def raw_exchange(local: LocalStack, data: bytes) -> bytes:
    """Bytes on the wire, for what urllib cannot send (a malformed request line or Content-Length)."""
    address = urlsplit(local.endpoint)
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(data)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    return received


def signed_bytes(local: LocalStack, profile: str, method: str, path: str, body: bytes, **headers: str) -> Answer:
    """A request whose body (and extra headers) are sent exactly as signed."""
    request = AWSRequest(method, f"{local.endpoint}{path}", data=body, headers=headers)
    SigV4Auth(credentials(local, profile), "execute-api", "us-east-1").add_auth(request)
    assert request.url is not None  # AWSRequest keeps the URL it was given
    return send(request.url, method, body, dict(request.headers.items()))


def error_code(answer: Answer) -> str:
    assert isinstance(answer.body, dict), answer.body
    return str(answer.body["error"]["code"])


@pytest.mark.parametrize("method", ["OPTIONS", "HEAD"])
def test_a_method_the_route_lacks_is_refused_like_api_gateway(local_stack: LocalStack, method: str) -> None:
    answer = send(f"{local_stack.endpoint}/requests", method)
    assert answer.status == 403
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    if method == "OPTIONS":
        assert error_code(answer) == "forbidden"
    else:
        assert answer.body is None  # a HEAD answer has no body


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND"])
def test_a_method_no_rest_api_has_is_405_json_with_allow(local_stack: LocalStack, method: str) -> None:
    answer = send(f"{local_stack.endpoint}/requests", method)
    assert answer.status == 405
    assert answer.headers["content-type"] == "application/json"
    assert error_code(answer) == "method_not_allowed"
    assert answer.headers["allow"] == "GET, POST"


def test_a_malformed_content_length_is_400_json(local_stack: LocalStack) -> None:
    host = urlsplit(local_stack.endpoint).netloc
    for length in (b"abc", b"-5"):
        reply = raw_exchange(
            local_stack,
            b"POST /requests HTTP/1.1\r\nHost: " + host.encode() + b"\r\nContent-Length: " + length + b"\r\n\r\n",
        )
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400"), reply
        assert json.loads(body)["error"]["code"] == "bad_request"


def test_the_http_servers_own_refusals_are_answered_in_json(local_stack: LocalStack) -> None:
    garbage = raw_exchange(local_stack, b"GARBAGE\r\n\r\n")  # no request line: answered without a status line
    assert json.loads(garbage)["error"]["code"] == "bad_request"
    reply = raw_exchange(local_stack, b"GET /requests HTTP/1.1\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431"), reply[:200]
    assert b"application/json" in head
    assert json.loads(body)["error"]["code"] == "bad_request"


def test_a_content_hash_header_with_non_ascii_text_is_refused_not_a_crash(local_stack: LocalStack) -> None:
    answer = signed_bytes(local_stack, "requester", "GET", "/requests", b"", **{"x-amz-content-sha256": "é" * 64})
    assert answer.status == 403, answer.body
    assert error_code(answer) == "forbidden"


def test_a_body_that_is_not_utf8_is_400_through_the_gateway(local_stack: LocalStack) -> None:
    body = b'{"role": "' + ROLE.encode() + b'\xff", "duration": "PT1H", "justification": "not utf-8 at all"}'
    answer = signed_bytes(local_stack, "requester", "POST", "/requests", body, **{"Content-Type": "application/json"})
    assert (answer.status, error_code(answer)) == (400, "invalid_input")


def test_an_xml_body_is_415_through_the_gateway(local_stack: LocalStack) -> None:
    answer = signed_bytes(local_stack, "admin", "PUT", POLICY, b"<policy/>", **{"Content-Type": "application/xml"})
    assert (answer.status, error_code(answer)) == (415, "unsupported_media_type")


def test_a_megabyte_policy_is_413_and_changes_nothing(local_stack: LocalStack) -> None:
    before = signed(local_stack, "admin", "GET", POLICY)
    huge = {"approvers": ["arn:aws:iam::222222222222:user/x"] * 30_000}
    answer = signed(local_stack, "admin", "PUT", POLICY, huge)
    assert (answer.status, error_code(answer)) == (413, "body_too_large")
    assert signed(local_stack, "admin", "GET", POLICY).body == before.body


@pytest.mark.parametrize("misspelled", ["dryrun", "dry-run", "DRY_RUN"])
def test_a_misspelled_dry_run_changes_nothing_through_the_gateway(local_stack: LocalStack, misspelled: str) -> None:
    before = signed(local_stack, "admin", "GET", POLICY)
    answer = signed(local_stack, "admin", "PUT", f"{POLICY}?{misspelled}=true", {"justification_min_length": 42})
    assert (answer.status, error_code(answer)) == (400, "unknown_parameter")
    assert "dry_run" in answer.body["error"]["message"]
    assert signed(local_stack, "admin", "GET", POLICY).body == before.body


def test_an_approval_form_that_is_not_utf8_is_400_before_the_token_is_checked(local_stack: LocalStack) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    answer = send(f"{local_stack.endpoint}/decide/{'x' * 43}", "POST", b"decision=approve&comment=\xff\xfe", headers)
    assert (answer.status, error_code(answer)) == (400, "invalid_input")
