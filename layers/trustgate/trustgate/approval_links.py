"""Per-approver, single-use approval links. Only a hash of each token is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from trustgate.clock import parse_rfc3339
from trustgate.errors import ForbiddenError
from trustgate.store import Store

TOKEN_BYTES = 32  # 256 bits


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class LinkGrant:
    """What a valid token stands for."""

    token_hash: str
    request_id: str
    approver_arn: str
    expires_at: datetime
    used: bool


def mint(store: Store, request_id: str, approver_arn: str, expires_at: datetime) -> str:
    token = secrets.token_urlsafe(TOKEN_BYTES)
    store.put_token(token_hash(token), {"request_id": request_id, "approver_arn": approver_arn}, expires_at)
    return token


def look_up(store: Store, token: str, now: datetime) -> LinkGrant:
    """The grant behind a token; a forged, unknown or expired token is refused (used ones are reported)."""
    if not 20 <= len(token) <= 100:
        raise ForbiddenError("this approval link is not valid")
    digest = token_hash(token)
    item = store.get_token(digest)
    if item is None or not hmac.compare_digest(str(item.get("pk", "")), f"TOKEN#{digest}"):
        raise ForbiddenError("this approval link is not valid")
    expires_at = parse_rfc3339(str(item["expires_at"]))
    if expires_at <= now:
        raise ForbiddenError("this approval link has expired with the request's approval window")
    return LinkGrant(digest, str(item["request_id"]), str(item["approver_arn"]), expires_at, "used_at" in item)
