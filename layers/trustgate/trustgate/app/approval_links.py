"""Per-approver, single-use approval links. Only a hash of each token is stored.

A link is a bearer credential: whoever holds it decides as the approver it was minted for, once,
until the request's approval window closes. Its item also holds a random `csrf_key`, so the page
can embed a value that proves a POST came from the page shown to the approver (see `csrf_for`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from trustgate.core.clock import parse_rfc3339
from trustgate.core.errors import ForbiddenError
from trustgate.core.ports import RequestStore

TOKEN_BYTES = 32  # 256 bits
CSRF_KEY_BYTES = 32


class InvalidLinkError(ForbiddenError):
    """A token that was never minted, was mangled, or belongs to something else."""

    code = "invalid_link"


class ExpiredLinkError(ForbiddenError):
    """A real token whose approval window has closed."""

    code = "link_expired"

    def __init__(self, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id  # the link's request: its page can say how the request ended


def token_hash(token: str) -> str:
    """The only form of a token that is ever stored or logged (as a prefix)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class LinkGrant:
    """What a valid token stands for."""

    token_hash: str
    request_id: str
    approver_arn: str
    expires_at: datetime
    used: bool
    csrf_key: str | None = None


def mint(store: RequestStore, request_id: str, approver_arn: str, expires_at: datetime) -> str:
    """Create a link token for one approver of one request; only its hash (and a CSRF key) is stored."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    store.put_token(
        token_hash(token),
        {
            "request_id": request_id,
            "approver_arn": approver_arn,
            "csrf_key": secrets.token_urlsafe(CSRF_KEY_BYTES),
        },
        expires_at,
    )
    return token


def look_up(store: RequestStore, token: str, now: datetime) -> LinkGrant:
    """The grant behind a token; a forged, unknown or expired token is refused (used ones are reported)."""
    if not 20 <= len(token) <= 100:
        raise InvalidLinkError("this approval link is not valid")
    digest = token_hash(token)
    item = store.get_token(digest)
    if item is None or not hmac.compare_digest(str(item.get("pk", "")), f"TOKEN#{digest}"):
        raise InvalidLinkError("this approval link is not valid")
    expires_at = parse_rfc3339(str(item["expires_at"]))
    if expires_at <= now:
        raise ExpiredLinkError(
            "this approval link has expired with the request's approval window", str(item["request_id"])
        )
    key = item.get("csrf_key")
    return LinkGrant(
        digest,
        str(item["request_id"]),
        str(item["approver_arn"]),
        expires_at,
        "used_at" in item,
        str(key) if key else None,
    )


def csrf_for(grant: LinkGrant) -> str:
    """The value the approval page embeds in its form: an HMAC of the token hash under the link's own key.

    Only someone who loaded the page (and so holds the token) can know it; a cross-site form cannot.
    """
    if not grant.csrf_key:
        return ""  # a link minted before CSRF keys existed: its form posts are refused, JSON still works
    mac = hmac.new(grant.csrf_key.encode(), grant.token_hash.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def csrf_matches(grant: LinkGrant, value: str | None) -> bool:
    """Constant-time check of a posted CSRF value against the link's."""
    expected = csrf_for(grant)
    return bool(expected) and bool(value) and hmac.compare_digest(expected.encode(), (value or "").encode())
