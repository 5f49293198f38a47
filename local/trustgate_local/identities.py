"""Who owns an access key: the IAM users and role sessions moto knows, as API Gateway's IAM auth sees them.

Read from moto's in-process backends (the local stack runs moto in the same process), so any
user or `sts:AssumeRole` session created in moto — not only the demo's — can call the local API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Any

from moto.iam.models import iam_backends
from moto.sts.models import sts_backends

from trustgate_local.sigv4 import SigningKey


@dataclass(frozen=True)
class Identity:
    """What API Gateway puts in `requestContext.identity` for a SigV4-verified caller."""

    arn: str
    account: str
    caller: str  # unique id: AIDA… for a user, AROA…:session for a role session
    access_key_id: str

    def request_context(self, source_ip: str, user_agent: str) -> dict[str, Any]:
        return {
            "accountId": self.account,
            "caller": self.caller,
            "user": self.caller,
            "userArn": self.arn,
            "accessKey": self.access_key_id,
            "sourceIp": source_ip,
            "userAgent": user_agent,
            "cognitoIdentityPoolId": None,
            "cognitoIdentityId": None,
            "cognitoAuthenticationType": None,
            "cognitoAuthenticationProvider": None,
            "principalOrgId": None,
        }


def signing_key(access_key_id: str) -> SigningKey | None:
    """The active key's secret (and session token for temporary credentials), or None if unknown."""
    for account in list(iam_backends.values()):
        for backend in list(account.values()):
            key = backend.access_keys.get(access_key_id)
            if key is None or key.status != "Active":
                continue
            session = _session(access_key_id)
            if session is None:
                return SigningKey(access_key_id, key.secret_access_key)
            # moto keeps the session's expiry as naive UTC
            expires_at = session.expiration.replace(tzinfo=UTC)
            return SigningKey(access_key_id, key.secret_access_key, session.session_token, expires_at)
    return None


def identity_of(access_key_id: str) -> Identity | None:
    """The principal behind a verified access key: an IAM user or an assumed-role session."""
    session = _session(access_key_id)
    if session is not None:
        return Identity(session.arn, session.account_id, session.user_id, access_key_id)
    for account_id, account in list(iam_backends.items()):
        for backend in list(account.values()):
            user = backend.get_user_from_access_key_id(access_key_id)
            if user is not None:
                return Identity(user.arn, account_id, user.id, access_key_id)
    return None


def _session(access_key_id: str) -> Any:
    for account in list(sts_backends.values()):
        for backend in list(account.values()):
            session = backend.get_assumed_role_from_access_key(access_key_id)
            if session is not None:
                return session
    return None
