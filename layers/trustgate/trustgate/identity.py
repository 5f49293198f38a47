"""Who is calling: turn the verified SigV4 identity into a principal a trust policy may name."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from trustgate.errors import InvalidPrincipalError, NotAPersonError, UnauthenticatedError

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
# Identity Center's roles: AWSReservedSSO_<permission set>_<16 hex>; it sets their session name to the user name.
_IDENTITY_CENTER_ROLE = re.compile(r"^AWSReservedSSO_[\w+=,.@-]+_[0-9a-f]{16}$")

PersonKind = Literal["iam_user", "identity_center", "identity_role"]
PERSON_KINDS: tuple[PersonKind, ...] = ("iam_user", "identity_center", "identity_role")
ACCEPTED_IDENTITIES = (
    "TrustGate accepts an IAM user, an IAM Identity Center session, or a session of a role the role policy "
    "lists in identity_roles"
)


@dataclass(frozen=True)
class Person:
    """One human behind possibly many ARNs: the key every rule about *who* compares, and their pinned session name.

    * IAM user `arn:…:user/path/alice` → `iam:<account>:alice` (IAM names are case-insensitive).
    * Identity Center session `…:assumed-role/AWSReservedSSO_<set>_<hash>/carol` → `idc:carol`: one person
      across every permission set and account, because Identity Center, not the caller, sets that name.
    * A session of any other role → `role:<account>:<role>/<session>`; it names a person only where a role
      policy lists the role in `identity_roles` (e.g. a SAML role whose session name the IdP sets).
    """

    key: str
    kind: PersonKind
    session_name: str  # the `sts:RoleSessionName` a grant pins; inside the role, aws:userid = <role id>:<this>
    role_name: str | None = None  # for sessions: the role they are a session of

    @property
    def label(self) -> str:
        """How people read this person: `alice (IAM user, 111111111111)`, `carol (Identity Center)`."""
        if self.kind == "iam_user":
            return f"{self.session_name} (IAM user, {self.key.split(':')[1]})"
        if self.kind == "identity_center":
            return f"{self.session_name} (Identity Center)"
        return f"{self.session_name} (session of {self.role_name}, {self.key.split(':')[1]})"


def person_of(arn: str) -> Person:
    """The person an IAM user or role-session ARN stands for (structural; see `check_person` for acceptance)."""
    user = _USER.match(arn)
    if user:
        name = user.group("name")
        return Person(f"iam:{user.group('account')}:{name.lower()}", "iam_user", name)
    session = _SESSION.match(arn)
    if session:
        role, name = session.group("role"), session.group("session")
        if _IDENTITY_CENTER_ROLE.match(role):
            return Person(f"idc:{name.lower()}", "identity_center", name, role)
        key = f"role:{session.group('account')}:{role.lower()}/{name.lower()}"
        return Person(key, "identity_role", name, role)
    raise InvalidPrincipalError(f"{arn} is not an IAM user or an assumed-role session; only those can be persons")


def is_identity_role_session(arn: str, identity_roles: Iterable[str]) -> bool:
    """Is `arn` a session of one of `identity_roles` (role ARNs, any path)? Session ARNs carry no path."""
    session = _SESSION.match(arn)
    if not session:
        return False
    for role_arn in identity_roles:
        role = _ROLE.match(role_arn)
        if (
            role
            and role.group("name") == session.group("role")
            and account_of_or_none(role_arn) == session.group("account")
        ):
            return True
    return False


@dataclass(frozen=True)
class Caller:
    """A verified caller: the principal ARN a grant names, plus the ids IAM may show instead."""

    arn: str
    account: str
    unique_id: str | None
    kind: str  # "user" or "session"

    @property
    def person(self) -> Person:
        return person_of(self.arn)

    def matches(self, patterns: Iterable[str]) -> bool:
        """ARN patterns match the ARN; person patterns (`iam:…`, `idc:…`, `role:…`) match the person key."""
        return matches_person(self.arn, patterns)


def matches_person(arn: str, patterns: Iterable[str]) -> bool:
    """Does an ARN, or the person behind it, match any of `patterns`? (ARN globs or person-key globs)"""
    arn_patterns: list[str] = []
    person_patterns: list[str] = []
    for pattern in patterns:
        (person_patterns if pattern.split(":", 1)[0] in ("iam", "idc", "role") else arn_patterns).append(pattern)
    if matches_any(arn, arn_patterns):
        return True
    if not person_patterns:
        return False
    try:
        key = person_of(arn).key
    except InvalidPrincipalError:
        return False
    return any(fnmatch.fnmatchcase(key, pattern.lower()) for pattern in person_patterns)


def check_person(caller: Caller, identity_roles: Iterable[str]) -> Person:
    """The caller's person, or 403 `not_a_person` for a session whose name its caller chose freely."""
    person = caller.person
    if person.kind == "identity_role" and not is_identity_role_session(caller.arn, identity_roles):
        raise NotAPersonError(
            f"{caller.arn} is a session of role {person.role_name}, whose session name its caller chooses, so it "
            f"does not identify a person. {ACCEPTED_IDENTITIES}; sign in as one of those, or ask an admin to list "
            f"the role in identity_roles (within the deployment's IdentityRoleArns)"
        )
    return person


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
