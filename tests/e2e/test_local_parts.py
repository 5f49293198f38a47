"""The local gateway's parts on their own (no stack): SigV4 verification, routing, the resource policy."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from unittest import mock
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from trustgate_local import sigv4
from trustgate_local.gateway import ApiDefinition, Caller, load_api
from trustgate_local.provision import ApiRoute
from trustgate_local.routes import RouteTable, parse_query
from trustgate_local.seed import ORGANIZATION_ID

pytestmark = pytest.mark.e2e

KEY = sigv4.SigningKey("AKIAEXAMPLEKEY000001", "secret" * 6)
SIGNED_AT = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)


def _signed(
    method: str, url: str, body: bytes = b"", key: sigv4.SigningKey = KEY, at: datetime = SIGNED_AT
) -> AWSRequest:
    request = AWSRequest(method, url, data=body, headers={"Content-Type": "application/json"})
    request.headers["Host"] = urlsplit(url).netloc
    with mock.patch("botocore.auth.get_current_datetime", return_value=at.replace(tzinfo=None)):
        SigV4Auth(
            Credentials(key.access_key_id, key.secret_access_key, key.session_token), "execute-api", "us-east-1"
        ).add_auth(request)
    return request


def _verify(request: AWSRequest, body: bytes = b"", now: datetime = SIGNED_AT) -> sigv4.VerifiedSignature:
    assert request.method is not None  # set by _signed
    assert request.url is not None  # set by _signed
    parts = urlsplit(request.url)
    return sigv4.verify(
        request.method,
        parts.path,
        parts.query,
        list(request.headers.items()),
        body,
        lambda key_id: KEY if key_id == KEY.access_key_id else None,
        now=now,
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:3000/requests",
        "http://127.0.0.1:3000/requests?status=active&mine=true&role=PumpCustomerAccess",
        "http://127.0.0.1:3000/roles/arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2FPumpCustomerAccess",
        "http://127.0.0.1:3000/audit?since=2026-11-26T10%3A00%3A00Z&actor=arn%3Aaws%3Aiam%3A%3A1%3Auser%2Fa%20b",
    ],
)
def test_botocore_signature_verifies(url: str) -> None:
    verified = _verify(_signed("GET", url))
    assert verified.access_key_id == KEY.access_key_id
    assert verified.region == "us-east-1"


def test_signed_body_verifies_and_a_changed_one_does_not() -> None:
    request = _signed("POST", "http://127.0.0.1:3000/requests", b'{"duration": "PT1H"}')
    _verify(request, b'{"duration": "PT1H"}')
    with pytest.raises(sigv4.SignatureError) as refused:
        _verify(request, b'{"duration": "PT9H"}')
    assert refused.value.kind == "invalid_signature"


def test_changed_query_does_not_verify() -> None:
    request = _signed("GET", "http://127.0.0.1:3000/requests?mine=true")
    request.url = "http://127.0.0.1:3000/requests?mine=false"
    with pytest.raises(sigv4.SignatureError, match="does not match"):
        _verify(request)


@pytest.mark.parametrize(
    ("skew", "accepted"),
    [(timedelta(minutes=14), True), (timedelta(minutes=16), False), (timedelta(minutes=-16), False)],
)
def test_clock_skew_allowance(skew: timedelta, accepted: bool) -> None:
    request = _signed("GET", "http://127.0.0.1:3000/requests")
    if accepted:
        _verify(request, now=SIGNED_AT + skew)
    else:
        with pytest.raises(sigv4.SignatureError, match="Signature expired"):
            _verify(request, now=SIGNED_AT + skew)


def test_missing_and_malformed_authorization() -> None:
    with pytest.raises(sigv4.SignatureError) as missing:
        sigv4.verify("GET", "/requests", "", [("Host", "x")], b"", lambda _: KEY)
    assert missing.value.kind == "missing"
    with pytest.raises(sigv4.SignatureError) as malformed:
        sigv4.verify("GET", "/requests", "", [("Authorization", "Bearer abc")], b"", lambda _: KEY)
    assert malformed.value.kind == "missing"


def test_unknown_key_is_its_own_refusal() -> None:
    other = sigv4.SigningKey("AKIAUNKNOWNKEY000001", "x" * 40)
    with pytest.raises(sigv4.SignatureError) as refused:
        _verify(_signed("GET", "http://127.0.0.1:3000/requests", key=other))
    assert refused.value.kind == "unknown_key"


def test_routes_prefer_literal_segments_and_decode_parameters() -> None:
    table = RouteTable(
        [
            ApiRoute("GET", "/roles/{role}", "Api", True),
            ApiRoute("GET", "/roles/{role}/policy", "Api", True),
            ApiRoute("POST", "/requests/{id}/approve", "Api", True),
            ApiRoute("GET", "/decide/{token}", "Decide", False),
        ]
    )
    match = table.match("GET", "/roles/arn%3Aaws%3Aiam%3A%3A1%3Arole%2FX/policy")
    assert match is not None
    assert (match.route.path, match.path_parameters) == ("/roles/{role}/policy", {"role": "arn:aws:iam::1:role/X"})
    assert table.match("POST", "/roles/X") is None
    assert table.match("GET", "/roles") is None
    assert parse_query("a=1&b=x%20y&c=1+2&flag") == [("a", "1"), ("b", "x y"), ("c", "1+2"), ("flag", "")]


@pytest.fixture(scope="module")
def api() -> ApiDefinition:
    """The template's API definition, resolved for the demo organization."""
    parameters = {
        "ManagedRoleArns": "arn:aws:iam::123456789012:role/PumpCustomerAccess",
        "OrganizationId": ORGANIZATION_ID,
        "BootstrapAdmins": "arn:aws:iam::222222222222:user/carol",
        "DefaultApprovers": "arn:aws:iam::222222222222:user/bob",
    }
    pseudo = {
        "AWS::Region": "us-east-1",
        "AWS::AccountId": "123456789012",
        "AWS::Partition": "aws",
        "AWS::StackName": "trustgate",
    }
    return load_api(parameters, pseudo)


def test_template_resource_policy_admits_the_organization_and_opens_only_the_approval_page(api: ApiDefinition) -> None:
    arn = "arn:aws:execute-api:us-east-1:123456789012:local"
    member = Caller("arn:aws:iam::222222222222:user/alice", "222222222222", ORGANIZATION_ID)
    outsider = Caller("arn:aws:iam::999999999999:user/mallory", "999999999999", None)
    anonymous = Caller()
    assert api.policy.decide(member, api.stage, "POST", "/requests", arn) is None
    assert api.policy.decide(outsider, api.stage, "POST", "/requests", arn) is not None
    assert api.policy.decide(anonymous, api.stage, "GET", "/requests", arn) is not None
    assert api.policy.decide(anonymous, api.stage, "GET", "/decide/abc", arn) is None
    assert api.policy.decide(anonymous, api.stage, "POST", "/decide/abc", arn) is None
    assert api.policy.decide(outsider, api.stage, "POST", "/decide/abc", arn) is None


def test_template_gateway_responses_use_the_api_error_shape(api: ApiDefinition) -> None:
    rendered = api.responses.render("INVALID_SIGNATURE", 'a "quoted" message', "req-1")
    assert rendered.status == 403
    assert json.loads(rendered.body) == {"error": {"code": "forbidden", "message": 'a "quoted" message'}}


def test_expired_session_credentials_are_refused() -> None:
    session = sigv4.SigningKey("ASIAEXAMPLEKEY000001", "s" * 40, "token", expires_at=SIGNED_AT - timedelta(seconds=1))
    request = _signed("GET", "http://127.0.0.1:3000/requests", key=session)
    with pytest.raises(sigv4.SignatureError) as refused:
        sigv4.verify("GET", "/requests", "", list(request.headers.items()), b"", lambda _: session, now=SIGNED_AT)
    assert refused.value.kind == "expired_token"
