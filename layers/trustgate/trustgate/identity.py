"""Who is calling: turn the verified SigV4 identity into a principal a trust policy may name."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass

from trustgate.errors import InvalidPrincipalError, UnauthenticatedError

_USER = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):user/(?P<path>(?:[\w+=,.@-]+/)*)(?P<name>[\w+=,.@-]+)$"
)
_SESSION = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):sts::(?P<account>\d{12}):assumed-role/(?P<role>[\w+=,.@-]+)/(?P<session>[\w+=,.@-]+)$"
)
_ROLE = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role/(?:[\w+=,.@-]+/)*(?P<name>[\w+=,.@-]+)$"
)
_ROOT = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:root$")
# Unique ids IAM shows in place of a principal that was deleted (AIDA user, AROA role).
UNIQUE_ID = re.compile(r"^(AIDA|AROA)[A-Z0-9]{12,}$")


@dataclass(frozen=True)
class Caller:
    """A verified caller: the principal ARN a grant names, plus the ids IAM may show instead."""

    arn: str
    account: str
    unique_id: str | None
    kind: str  # "user" or "session"

    def matches(self, patterns: Iterable[str]) -> bool:
        return matches_any(self.arn, patterns)


def caller_from_identity(identity: dict[str, object], partition: str = "aws") -> Caller:
    """Build the caller from API Gateway's `requestContext.identity` (filled in by AWS_IAM auth)."""
    user_arn = identity.get("userArn")
    if not isinstance(user_arn, str) or not user_arn:
        raise UnauthenticatedError(
            "the request is not SigV4-signed; sign it with your AWS credentials (the trustgate CLI does)"
        )
    caller_id = identity.get("caller")
    caller = principal_for_arn(user_arn, partition)
    unique_id = caller_id.split(":", 1)[0] if isinstance(caller_id, str) and caller_id else None
    return Caller(arn=caller.arn, account=caller.account, unique_id=unique_id, kind=caller.kind)


def principal_for_arn(arn: str, partition: str = "aws") -> Caller:
    """Validate an ARN as a grantable principal: an IAM user or a role session of this partition."""
    if _ROOT.match(arn):
        raise InvalidPrincipalError(
            "the account root user cannot request access; sign in as an IAM user or an IAM Identity Center / role session"
        )
    for pattern, kind in ((_USER, "user"), (_SESSION, "session")):
        match = pattern.match(arn)
        if match:
            if match.group("partition") != partition:
                raise InvalidPrincipalError(
                    f"{arn} is in partition {match.group('partition')!r}; this TrustGate serves {partition!r} only"
                )
            return Caller(arn=arn, account=match.group("account"), unique_id=None, kind=kind)
    raise InvalidPrincipalError(
        f"{arn} is not an IAM user or an assumed-role session; only those can be granted access"
    )


def account_of(arn: str) -> str:
    parts = arn.split(":")
    if len(parts) < 6 or not re.fullmatch(r"\d{12}", parts[4]):
        raise InvalidPrincipalError(f"{arn} is not an ARN with an account id")
    return parts[4]


def role_name_of(role_arn: str) -> str:
    match = _ROLE.match(role_arn)
    if not match:
        raise InvalidPrincipalError(f"{role_arn} is not an IAM role ARN")
    return match.group("name")


def matches_any(arn: str, patterns: Iterable[str]) -> bool:
    """ARN glob match (`*`, `?`), case-sensitive as IAM compares ARNs; a 12-digit pattern means 'any principal of that account'."""
    for pattern in patterns:
        if re.fullmatch(r"\d{12}", pattern):
            if account_of_or_none(arn) == pattern:
                return True
        elif fnmatch.fnmatchcase(arn, pattern):
            return True
    return False


def account_of_or_none(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) >= 6 else None
