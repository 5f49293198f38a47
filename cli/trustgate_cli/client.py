"""The signed HTTP client for the TrustGate API: SigV4 (`execute-api`) over urllib, errors as typed exceptions."""

from __future__ import annotations

import difflib
import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import Message
from email.utils import parsedate_to_datetime
from http.client import HTTPException, HTTPMessage
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import boto3
import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials
from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

from trustgate_cli import __version__
from trustgate_cli.errors import ApiError, CliError, CredentialsError, TransportError, UsageError

SERVICE = "execute-api"
ENDPOINT_ENV = "TRUSTGATE_ENDPOINT"
DEFAULT_REGION = "us-east-1"
DEFAULT_TIMEOUT_SECONDS = 30.0
USER_AGENT = f"trustgate-cli/{__version__}"
# https://<api-id>.execute-api.<region>.amazonaws.com[.cn]/<stage>: the host names the region to sign for.
_EXECUTE_API_HOST = re.compile(r"[a-z0-9]+\.execute-api\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?")
_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}

CredentialSource = Callable[[], ReadOnlyCredentials]


def api_path(*segments: str) -> str:
    """An API path whose segments (role names, ARNs, ids) are percent-encoded, `/` included."""
    return "".join("/" + quote(segment, safe="") for segment in segments)


def resolve_region(explicit: str | None, endpoint: str, profile_region: str | None) -> str:
    """The SigV4 signing region: `--region`, else the execute-api host's region, else the profile's, else us-east-1.

    The host wins over the profile because API Gateway only accepts signatures for its own region.
    """
    if explicit:
        return explicit
    match = _EXECUTE_API_HOST.fullmatch(urlsplit(endpoint).hostname or "")
    if match:
        return match["region"]
    return profile_region or DEFAULT_REGION


def load_session(profile: str | None) -> tuple[CredentialSource, str | None]:
    """The standard credential chain (env, profile, SSO, ...) as a source of frozen credentials, and its region."""
    try:
        session = boto3.Session(profile_name=profile)
    except ProfileNotFound as error:
        raise CredentialsError(
            "unknown_profile", _unknown_profile(profile or os.environ.get("AWS_PROFILE", ""))
        ) from error
    except BotoCoreError as error:
        raise CredentialsError("no_credentials", str(error)) from error
    credentials = session.get_credentials()
    if credentials is None:
        raise CredentialsError(
            "no_credentials",
            "no AWS credentials found; run 'aws configure' or 'aws sso login', or pass --profile",
        )

    def frozen() -> ReadOnlyCredentials:
        # Frozen per request, so refreshable credentials (SSO, assumed roles) stay valid during a long --wait.
        try:
            return credentials.get_frozen_credentials()
        except (BotoCoreError, ClientError) as error:  # e.g. an expired SSO token
            hint = f" (try 'aws sso login --profile {profile}')" if profile else ""
            raise CredentialsError("no_credentials", f"cannot load AWS credentials: {error}{hint}") from error

    return frozen, session.region_name


def _unknown_profile(profile: str) -> str:
    """Which profiles there are, when the one asked for is not among them (and the closest one, if any)."""
    try:
        known = sorted(botocore.session.Session(profile=None).available_profiles)  # reads the files, needs no profile
    except BotoCoreError:
        known = []
    if not known:
        return f"there is no AWS profile {profile!r}, nor any other: create it with 'aws configure --profile {profile}'"
    close = difflib.get_close_matches(profile, known, n=1)
    guess = f"did you mean {close[0]!r}? " if close else ""
    return (
        f"there is no AWS profile {profile!r}; {guess}known profiles: {', '.join(known)} "
        "(from ~/.aws/config and ~/.aws/credentials, or AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE)"
    )


def check_endpoint(endpoint: str) -> str:
    """The endpoint without a trailing slash; only https, or http to this machine (the local stack)."""
    parts = urlsplit(endpoint.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            "bad_endpoint",
            f"endpoint {endpoint!r} is not a URL like https://abc123.execute-api.us-east-1.amazonaws.com/prod "
            "or http://127.0.0.1:3000",
        )
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
        # Signed requests and justifications do not belong on the wire in clear text.
        raise UsageError("bad_endpoint", f"refusing plain http to {parts.hostname}; use https (http is for localhost)")
    if parts.query or parts.fragment:
        raise UsageError("bad_endpoint", f"endpoint {endpoint!r} must not carry a query or fragment")
    return endpoint.strip().rstrip("/")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: it would resend a signed request somewhere the signature does not cover."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


@dataclass
class ApiClient:
    """Sends SigV4-signed JSON requests to one TrustGate endpoint and returns the decoded JSON answer."""

    endpoint: str
    region: str
    credentials: CredentialSource
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    def __post_init__(self) -> None:
        self.endpoint = check_endpoint(self.endpoint)
        self._opener = urllib.request.build_opener(_NoRedirects())
        # How far the API's clock (its `Date` header) is ahead of this machine's; the local stack's clock moves.
        self._clock_offset: timedelta | None = None

    def now(self) -> datetime | None:
        """TrustGate's time now, as its last answer's `Date` header told it; None before any answer."""
        if self._clock_offset is None:
            return None
        return datetime.now(timezone.utc) + self._clock_offset

    def _note_date(self, headers: Message) -> None:
        try:
            stamp = parsedate_to_datetime(headers.get("Date") or "")
        except (TypeError, ValueError):  # no Date header, or one that is no date
            return
        if stamp.tzinfo is not None:
            self._clock_offset = stamp - datetime.now(timezone.utc)

    def get(self, path: str, query: Mapping[str, str | int | bool | None] | None = None) -> Any:
        """GET `path` (already encoded, see `api_path`) with optional query parameters."""
        return self.request("GET", path, query=query)

    def post(self, path: str, body: Any = None, headers: Mapping[str, str] | None = None) -> Any:
        """POST a JSON body (or none) to `path`."""
        return self.request("POST", path, body=body, headers=headers)

    def put(
        self,
        path: str,
        body: Any,
        query: Mapping[str, str | int | bool | None] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """PUT a JSON body to `path` (with `headers`, e.g. If-Match)."""
        return self.request("PUT", path, body=body, query=query, headers=headers)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int | bool | None] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Sign and send one request; return the JSON answer (None for an empty one) or raise a CliError."""
        url = self.endpoint + path + _query_string(query)
        status, raw, answer_headers = self._send(method, url, body, headers or {})
        return _decode_success(status, raw, answer_headers, url)

    def get_text(self, path: str, query: Mapping[str, str | int | bool | None], accept: str) -> tuple[str, Message]:
        """GET a non-JSON representation (`accept`, e.g. text/csv): its text and the answer's headers."""
        url = self.endpoint + path + _query_string(query)
        status, raw, headers = self._send("GET", url, None, {"Accept": accept})
        if headers.get_content_type() != accept:
            raise TransportError(
                "invalid_response", f"{url} answered {status} with {headers.get_content_type()}, not {accept}"
            )
        return raw.decode(headers.get_content_charset() or "utf-8"), headers

    def _send(self, method: str, url: str, body: Any, headers: Mapping[str, str]) -> tuple[int, bytes, Message]:
        """Sign and send; the status, body and headers of a success, or the CliError of anything else."""
        data = b"" if body is None else json.dumps(body).encode()
        prepared = self._sign(method, url, data, headers)
        try:
            with self._opener.open(prepared, timeout=self.timeout) as response:
                self._note_date(response.headers)
                return response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            raw = error.read()
            self._note_date(error.headers)
            if 300 <= error.code < 400:
                raise TransportError(
                    "unexpected_redirect",
                    f"{url} redirected to {error.headers.get('Location')}; point --endpoint at the API itself",
                ) from error
            raise _api_error(error.code, raw, error.headers, url) from error
        except TimeoutError as error:
            raise TransportError("timeout", f"no answer from {self.endpoint} within {self.timeout:g} s") from error
        except urllib.error.URLError as error:
            raise _unreachable(self.endpoint, error.reason) from error
        except (HTTPException, OSError) as error:
            raise TransportError("connection_failed", f"connection to {self.endpoint} failed: {error}") from error

    def _sign(self, method: str, url: str, data: bytes, extra: Mapping[str, str]) -> urllib.request.Request:
        headers = {
            "Host": _host_header(url),
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            **extra,  # may name another Accept
        }
        if data:
            headers["Content-Type"] = "application/json"
        aws_request = AWSRequest(method=method, url=url, data=data, headers=headers)
        # Credentials are resolved first: without them this raises and nothing is sent.
        SigV4Auth(self.credentials(), SERVICE, self.region).add_auth(aws_request)
        # The scheme was checked in check_endpoint: only http(s) ever gets here.
        return urllib.request.Request(  # noqa: S310
            url,
            data=data if method in ("POST", "PUT", "PATCH") else None,
            headers=dict(aws_request.headers.items()),
            method=method,
        )


def next_link_query(headers: Message) -> dict[str, str] | None:
    """The query of the `Link: <…?…>; rel="next"` header (RFC 8288), or None on the last page."""
    for value in headers.get_all("Link") or []:
        for link in value.split(","):
            target, _, parameters = link.partition(";")
            if re.search(r'\brel="?next"?', parameters) and target.strip().startswith("<"):
                query = urlsplit(target.strip()[1:].rstrip(">")).query
                return {name: values[-1] for name, values in parse_qs(query, keep_blank_values=True).items()}
    return None


def _query_string(query: Mapping[str, str | int | bool | None] | None) -> str:
    """`?k=v&…` encoded the way SigV4 canonicalises it (RFC 3986, %20 for spaces), or ''."""
    pairs = [(key, _query_value(value)) for key, value in (query or {}).items() if value is not None]
    return "?" + urlencode(pairs, quote_via=quote, safe="") if pairs else ""


def _query_value(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _host_header(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    default_port = {"http": 80, "https": 443}[parts.scheme]
    return host if parts.port in (None, default_port) else f"{host}:{parts.port}"


def _decode_success(status: int, raw: bytes, headers: Message, url: str) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as error:
        raise TransportError(
            "invalid_response",
            f"{url} answered {status} with {headers.get_content_type()}, not JSON; is --endpoint the TrustGate API?",
        ) from error


def _unreachable(endpoint: str, reason: object) -> TransportError:
    """Nothing answers at the endpoint: say where TrustGate would be (the local stack, or the deployed API)."""
    where = f"check {ENDPOINT_ENV} (or --endpoint): it is the deployed stack's ApiUrl output"
    if isinstance(reason, ConnectionRefusedError):
        if urlsplit(endpoint).hostname in _LOOPBACK_HOSTS:
            return TransportError(
                "connection_failed",
                f"cannot reach {endpoint}: connection refused; is the local stack running? Start it with "
                f"'make local' in the TrustGate checkout, or point {ENDPOINT_ENV} (or --endpoint) at a deployed API",
            )
        return TransportError("connection_failed", f"cannot reach {endpoint}: connection refused; {where}")
    return TransportError("connection_failed", f"cannot reach {endpoint}: {reason}; {where}")


def _api_error(status: int, raw: bytes, headers: Message, url: str = "") -> CliError:
    """The typed error for an HTTP error answer: TrustGate's own body, or API Gateway's, or the bare status."""
    try:
        document = json.loads(raw) if raw.strip() else None
    except ValueError:
        document = None
    if isinstance(document, dict):
        error = document.get("error")
        if isinstance(error, dict) and error.get("code"):
            refusals = error.get("roles")  # a multi-role request's `roles_refused`: each refusing role's reason
            roles = [role for role in refusals if isinstance(role, dict)] if isinstance(refusals, list) else None
            return ApiError(status, str(error["code"]), str(error.get("message") or ""), roles)
    if status == 404:
        # TrustGate answers every 404 (an unknown route too) with its error body: this is some other server.
        body = raw.decode("utf-8", "replace").strip()[:100]
        return TransportError(
            "not_trustgate",
            f"{url or 'the endpoint'} answered 404 with "
            + (f"{body!r}" if body else "no body")
            + f": this is not a TrustGate endpoint; check {ENDPOINT_ENV} (or --endpoint): it is the deployed "
            "stack's ApiUrl output, stage included (https://abc123.execute-api.us-east-1.amazonaws.com/prod), "
            "or http://127.0.0.1:3000 for the local stack",
        )
    if isinstance(document, dict):
        # API Gateway itself (signature, authorizer, unknown path) answers {"message": …} or {"Message": …}.
        message = document.get("message") or document.get("Message")
        if message:
            code = (headers.get("x-amzn-ErrorType") or f"http_{status}").split(":", 1)[0]
            if code == "MissingAuthenticationTokenException":
                message = f"{message} (API Gateway says this for a path it does not serve: does --endpoint include the stage, e.g. /prod?)"
            return ApiError(status, code, str(message))
    text = raw.decode("utf-8", "replace").strip()[:200]
    return ApiError(status, f"http_{status}", text or f"HTTP {status} with no body")
