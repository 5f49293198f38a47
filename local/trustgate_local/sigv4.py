"""SigV4 verification as API Gateway does it for `AWS_IAM` routes: recompute the signature, compare.

The canonical request is rebuilt from what arrived on the wire (method, raw path, query, the headers
the client says it signed, the body's SHA-256) with botocore's own `SigV4Auth`, so a request signed by
any SDK, the AWS CLI or the trustgate CLI verifies exactly as it would on AWS.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import ReadOnlyCredentials

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "execute-api"
MAX_CLOCK_SKEW = timedelta(minutes=15)  # SigV4's allowance between the signer's clock and ours
_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]{64})\s*$"
)
_AMZ_DATE = "%Y%m%dT%H%M%SZ"


class SignatureError(Exception):
    """Why a request is refused; `kind` names the API Gateway response it maps to."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # missing | invalid_signature | unknown_key | expired_token
        self.message = message


@dataclass(frozen=True)
class SigningKey:
    """The secret behind an access key id, and the session token temporary credentials must present."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None
    expires_at: datetime | None = None  # temporary credentials only


@dataclass(frozen=True)
class VerifiedSignature:
    access_key_id: str
    region: str
    signed_headers: tuple[str, ...]


KeyLookup = Callable[[str], SigningKey | None]


def verify(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    lookup: KeyLookup,
    *,
    now: datetime | None = None,
    service: str = SERVICE,
) -> VerifiedSignature:
    """Check a request's SigV4 signature; raise `SignatureError` exactly where API Gateway would refuse it.

    `raw_path` and `raw_query` are as received (still percent-encoded); `headers` keeps repeated
    headers as separate pairs. `now` is the real time (never the stack's movable clock).
    """
    header_map = _headers(headers)
    authorization = header_map.get("authorization")
    if not authorization:
        raise SignatureError("missing", "Missing Authentication Token")
    match = _AUTHORIZATION.match(authorization)
    if not match:
        raise SignatureError(
            "missing",
            f"Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' with {ALGORITHM}.",
        )
    credential = match["credential"].split("/")
    if len(credential) != 5 or credential[4] != "aws4_request":
        raise SignatureError("invalid_signature", f"Credential should be scoped correctly: {match['credential']}")
    access_key_id, scope_date, region, scope_service, _ = credential
    if scope_service != service:
        raise SignatureError("invalid_signature", f"Credential should be scoped to correct service: '{service}'.")
    signed = tuple(match["signed"].split(";"))
    if "host" not in signed:
        raise SignatureError(
            "invalid_signature", "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
        )
    missing = [name for name in signed if name not in header_map]
    if missing:
        raise SignatureError("invalid_signature", f"Signed header {missing[0]!r} is missing from the request.")

    amz_date = header_map.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(amz_date, _AMZ_DATE).replace(tzinfo=UTC)
    except ValueError:
        raise SignatureError(
            "invalid_signature", "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        ) from None
    if "x-amz-date" not in signed:
        raise SignatureError("invalid_signature", "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.")
    if scope_date != amz_date[:8]:
        raise SignatureError(
            "invalid_signature",
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope_date}' != '{amz_date[:8]}'",
        )
    current = now or datetime.now(UTC)
    if abs(current - signed_at) > MAX_CLOCK_SKEW:
        raise SignatureError(
            "invalid_signature",
            f"Signature expired: {amz_date} is now earlier than {(current - MAX_CLOCK_SKEW).strftime(_AMZ_DATE)} "
            f"({current.strftime(_AMZ_DATE)} - {int(MAX_CLOCK_SKEW.total_seconds() // 60)} min.)",
        )

    key = lookup(access_key_id)
    if key is None:
        raise SignatureError("unknown_key", "The security token included in the request is invalid.")
    if key.session_token is not None:
        token = header_map.get("x-amz-security-token", "")
        if not hmac.compare_digest(token.encode(), key.session_token.encode()):
            raise SignatureError("unknown_key", "The security token included in the request is invalid.")
    if key.expires_at is not None and key.expires_at <= current:
        raise SignatureError("expired_token", "The security token included in the request is expired")

    declared_hash = header_map.get("x-amz-content-sha256")
    # Compared as bytes: a header may carry any Latin-1 text, and compare_digest refuses non-ASCII str.
    computed_hash = hashlib.sha256(body).hexdigest().encode()
    if declared_hash is not None and not hmac.compare_digest(declared_hash.encode("latin-1", "replace"), computed_hash):
        # The signature covers the declared hash; it must also be the hash of what arrived.
        raise SignatureError(
            "invalid_signature", "The provided 'x-amz-content-sha256' header does not match what was computed."
        )

    try:
        expected = _signature(method, raw_path, raw_query, headers, signed, body, key, region, service, amz_date)
    except (ValueError, TypeError, UnicodeError):  # a path, query or header no signer could have signed
        expected = ""
    if not hmac.compare_digest(expected.encode(), match["signature"].encode()):
        raise SignatureError(
            "invalid_signature",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        )
    return VerifiedSignature(access_key_id, region, signed)


class _SignedHeadersOnly(SigV4Auth):
    """botocore's signer, limited to the headers the client listed (it would otherwise pick its own set)."""

    def __init__(self, credentials: ReadOnlyCredentials, service: str, region: str, signed: Sequence[str]) -> None:
        super().__init__(credentials, service, region)
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        selected = HTTPHeaders()
        for name in self._signed:
            for value in request.headers.get_all(name) or []:
                selected[name] = value
        return selected


def _signature(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Sequence[tuple[str, str]],
    signed: Sequence[str],
    body: bytes,
    key: SigningKey,
    region: str,
    service: str,
    amz_date: str,
) -> str:
    request = AWSRequest(method=method, url=f"http://signed-host{raw_path}", data=body)
    request.headers = HTTPHeaders()
    for name, value in headers:
        if name.lower() in signed:
            request.headers[name.lower()] = value
    # The canonical query string is built from the decoded parameters, re-encoded as SigV4 specifies.
    # (botocore accepts a list of pairs here, which keeps repeated keys.)
    request.params = [(unquote(k), unquote(v)) for k, _, v in (p.partition("=") for p in raw_query.split("&") if p)]  # type: ignore[assignment]
    request.context["timestamp"] = amz_date
    signer = _SignedHeadersOnly(
        ReadOnlyCredentials(key.access_key_id, key.secret_access_key, key.session_token), service, region, signed
    )
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))


def _headers(headers: Sequence[tuple[str, str]]) -> Mapping[str, str]:
    merged: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        merged[lower] = f"{merged[lower]},{value}" if lower in merged else value
    return merged
