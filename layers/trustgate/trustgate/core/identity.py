"""Who is calling, and the ARNs TrustGate reads: the verified SigV4 identity turned into a principal a trust
policy may name; role ARNs (partition, account, path, name) and the console's Switch Role link for each partition.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, urlencode

from trustgate.core.errors import ForbiddenError, InvalidPrincipalError, NotAPersonError, UnauthenticatedError
from trustgate.core.patterns import glob_matches

# ASCII only (re.ASCII: `\w` and `\d` as IAM means them) and anchored with \Z: `$` would also accept a
# trailing newline. These are TrustGate's own fixed expressions; admins' patterns go through `patterns` (RE2).
_USER = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):user/(?P<path>(?:[\w+=,.@-]+/)*)(?P<name>[\w+=,.@-]+)\Z",
    re.ASCII,
)
_SESSION = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):sts::(?P<account>\d{12}):assumed-role/(?P<role>[\w+=,.@-]+)/(?P<session>[\w+=,.@-]+)\Z",
    re.ASCII,
)
_ROLE = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role/(?P<path>(?:[\w+=,.@-]+/)*)(?P<name>[\w+=,.@-]+)\Z",
    re.ASCII,
)
_ROOT = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:root\Z", re.ASCII)
_ACCOUNT_ID = re.compile(r"[0-9]{12}\Z")
# Unique ids IAM shows in place of a principal that was deleted (AIDA user, AROA role).
UNIQUE_ID = re.compile(r"^(AIDA|AROA)[A-Z0-9]{12,}\Z")
# Identity Center's roles: AWSReservedSSO_<permission set>_<16 hex>; it sets their session name to the user name.
_IDENTITY_CENTER_ROLE = re.compile(r"^AWSReservedSSO_[\w+=,.@-]+_[0-9a-f]{16}\Z", re.ASCII)

PersonKind = Literal["iam_user", "identity_center", "identity_role"]
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
    * A session of any other role → `role:<session>`; it names a person only where a role policy lists the
      role in `identity_roles` (e.g. a SAML role whose session name the IdP sets, so one IdP user is one
      person through every such role and account).
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
        return f"{self.session_name} (session of {self.role_name})"


def person_of(arn: str, trusted_identity_center: bool = True) -> Person:
    """The person an IAM user or role-session ARN stands for (structural; see `check_person` for acceptance).

    With `trusted_identity_center` False, a session of a role named like Identity Center's is taken for what
    it may be, a role anyone with iam:CreateRole could name so: an ordinary role session.
    """
    user = _USER.match(arn)
    if user:
        name = user.group("name")
        return Person(f"iam:{user.group('account')}:{name.lower()}", "iam_user", name)
    session = _SESSION.match(arn)
    if session:
        role, name = session.group("role"), session.group("session")
        if trusted_identity_center and _IDENTITY_CENTER_ROLE.match(role):
            return Person(f"idc:{name.lower()}", "identity_center", name, role)
        # Identity roles are federation roles whose session name the IdP sets: the same name through two
        # of them (or two accounts) is the same IdP user.
        return Person(f"role:{name.lower()}", "identity_role", name, role)
    raise InvalidPrincipalError(f"{arn} is not an IAM user or an assumed-role session; only those can be persons")


def looks_like_identity_center(arn: str) -> bool:
    session = _SESSION.match(arn)
    return bool(session and _IDENTITY_CENTER_ROLE.match(session.group("role")))


def is_identity_role_session(arn: str, identity_roles: Iterable[str]) -> bool:
    """Is `arn` a session of one of `identity_roles` (role ARNs, any path)? Session ARNs carry no path."""
    session = _SESSION.match(arn)
    if not session:
        return False
    for role_arn in identity_roles:
        role = role_arn_or_none(role_arn)
        if role and role.name == session.group("role") and role.account == session.group("account"):
            return True
    return False


@dataclass(frozen=True)
class Caller:
    """A verified caller: the principal ARN a grant names, plus the ids IAM may show instead."""

    arn: str
    account: str
    unique_id: str | None
    kind: str  # "user" or "session"
    # Is a session of an `AWSReservedSSO_*` role here Identity Center's own? Only in accounts the deployer
    # lists (IdentityCenterAccountIds), where an SCP keeps anyone else from creating a role so named.
    trusted_identity_center: bool = False

    @property
    def person(self) -> Person:
        return person_of(self.arn, self.trusted_identity_center)

    def matches(self, patterns: Iterable[str]) -> bool:
        """ARN patterns match the ARN; person patterns (`iam:…`, `idc:…`, `role:…`) match the person key.

        A session that only looks like Identity Center's (an untrusted account) matches nothing: patterns
        naming `AWSReservedSSO_*` roles mean Identity Center, which it may merely imitate.
        """
        if looks_like_identity_center(self.arn) and not self.trusted_identity_center:
            return False
        try:
            person = self.person
        except InvalidPrincipalError:  # no person behind it: only ARN patterns can match
            return matches_any(self.arn, patterns)
        return matches_person(self.arn, patterns, person)


def matches_person(arn: str, patterns: Iterable[str], person: Person | None = None) -> bool:
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
        key = (person or person_of(arn)).key
    except InvalidPrincipalError:
        return False
    return any(glob_matches(key, pattern.lower()) for pattern in person_patterns)


def check_person(caller: Caller, identity_roles: Iterable[str]) -> Person:
    """The caller's person, or 403 `not_a_person` for a session whose name its caller chose freely."""
    person = caller.person
    if person.kind == "identity_role" and not is_identity_role_session(caller.arn, identity_roles):
        if looks_like_identity_center(caller.arn):
            raise NotAPersonError(
                f"{caller.arn} looks like an IAM Identity Center session, but this deployment does not trust "
                f"Identity Center sessions from account {caller.account}: the deployer lists such accounts in "
                "IdentityCenterAccountIds once an SCP there denies creating roles named *AWSReservedSSO_*. "
                f"{ACCEPTED_IDENTITIES}"
            )
        raise NotAPersonError(
            f"{caller.arn} is a session of role {person.role_name}, whose session name its caller chooses, so it "
            f"does not identify a person. {ACCEPTED_IDENTITIES}; sign in as one of those, or ask an admin to list "
            f"the role in identity_roles (within the deployment's IdentityRoleArns)"
        )
    return person


@dataclass(frozen=True)
class CallerPolicy:
    """The deployment-wide rules every caller meets, whatever they do (from the deploy ceiling)."""

    partition: str = "aws"
    allowed_account_ids: frozenset[str] = frozenset()
    identity_center_account_ids: frozenset[str] = frozenset()


def caller_for_arn(arn: str, policy: CallerPolicy, unique_id: str | None = None) -> Caller:
    """A caller from a verified ARN: refused (403) outside the partition or the allowed accounts."""
    caller = principal_for_arn(arn, policy.partition)
    if policy.allowed_account_ids and caller.account not in policy.allowed_account_ids:
        raise ForbiddenError(f"account {caller.account} is not allowed to use TrustGate in this deployment")
    return Caller(
        arn=caller.arn,
        account=caller.account,
        unique_id=unique_id,
        kind=caller.kind,
        trusted_identity_center=caller.account in policy.identity_center_account_ids,
    )


def caller_from_identity(identity: dict[str, object], policy: CallerPolicy) -> Caller:
    """Build the caller from API Gateway's `requestContext.identity` (filled in by AWS_IAM auth)."""
    user_arn = identity.get("userArn")
    if not isinstance(user_arn, str) or not user_arn:
        raise UnauthenticatedError(
            "the request is not SigV4-signed; sign it with your AWS credentials (the trustgate CLI does)"
        )
    caller_id = identity.get("caller")
    unique_id = caller_id.split(":", 1)[0] if isinstance(caller_id, str) and caller_id else None
    return caller_for_arn(user_arn, policy, unique_id)


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
    if len(parts) < 6 or not _ACCOUNT_ID.match(parts[4]):
        raise InvalidPrincipalError(f"{arn} is not an ARN with an account id")
    return parts[4]


def role_name_of(role_arn: str) -> str:
    """The role's name without its path: what IAM's role APIs take as `RoleName`."""
    return parse_role_arn(role_arn).name


# -- role ARNs and the console ------------------------------------------------------------------


@dataclass(frozen=True)
class RoleArn:
    """An IAM role ARN taken apart: `arn:<partition>:iam::<account>:role/<path><name>`."""

    partition: str
    account: str
    path: str  # "" or "vendor/team/": IAM's path without its leading "/"
    name: str

    @property
    def path_and_name(self) -> str:
        """`vendor/team/Name`: what the console's Switch Role asks for as the role (path included)."""
        return self.path + self.name

    @property
    def arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role/{self.path_and_name}"


def role_arn_or_none(text: str) -> RoleArn | None:
    """The role `text` names, or None when it is no IAM role ARN (ASCII names, no wildcards)."""
    match = _ROLE.match(text)
    if not match:
        return None
    return RoleArn(match.group("partition"), match.group("account"), match.group("path"), match.group("name"))


def parse_role_arn(text: str) -> RoleArn:
    """The role an IAM role ARN names; `invalid_principal` (403) for anything else."""
    role = role_arn_or_none(text)
    if role is None:
        raise InvalidPrincipalError(f"{text} is not an IAM role ARN")
    return role


@dataclass(frozen=True)
class ConsoleHosts:
    """Where a partition's AWS Management Console lives: its sign-in host (which serves Switch Role) and itself."""

    signin: str
    console: str


# Each partition has a console of its own; a link to another partition's console just fails to load.
# * aws: signin.aws.amazon.com (Switch Role links), console.aws.amazon.com.
# * aws-us-gov: the AWS GovCloud (US) User Guide links "the AWS Management Console for AWS GovCloud (US)" as
#   https://signin.amazonaws-us-gov.com ("AWS Identity and Access Management in AWS GovCloud (US)",
#   https://docs.aws.amazon.com/govcloud-us/latest/UserGuide/govcloud-iam.html); the console is
#   console.amazonaws-us-gov.com (which that page does not name).
# * aws-cn: "The domain for Amazon Web Services China is www.amazonaws.cn" ("General Information About Amazon
#   Web Services China", https://docs.amazonaws.cn/en_us/aws/latest/userguide/general-info.html); sign-in and
#   console are signin.amazonaws.cn and console.amazonaws.cn under it (hosts that page does not name either).
CONSOLE_HOSTS: dict[str, ConsoleHosts] = {
    "aws": ConsoleHosts("signin.aws.amazon.com", "console.aws.amazon.com"),
    "aws-us-gov": ConsoleHosts("signin.amazonaws-us-gov.com", "console.amazonaws-us-gov.com"),
    "aws-cn": ConsoleHosts("signin.amazonaws.cn", "console.amazonaws.cn"),
}


def console_hosts(partition: str) -> ConsoleHosts:
    """The console of `partition`; a partition without a public console (the ISO ones) gets the commercial one's,
    as TrustGate always gave: a link there cannot work, and the `aws sts assume-role` command still does."""
    return CONSOLE_HOSTS.get(partition, CONSOLE_HOSTS["aws"])


def switch_role_url(role_arn: str, display_name: str | None = None) -> str:
    """The console's Switch Role link for a role, on its partition's sign-in host; `displayName` defaults to the
    role's name.

    `roleName` carries the role's path and name (`vendor/team/Name`): the console's Switch Role takes the role
    as path and name, which is why IAM limits the two together to 64 characters for roles used there ("if you
    intend to use a role with the Switch Role feature in the AWS Management Console, then the combined Path and
    RoleName cannot exceed 64 characters", IAM User Guide, "Methods to assume a role",
    https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use.html). Every value is percent-encoded but the
    path's `/` (`+` becomes %2B, `=` %3D, `,` %2C, `@` %40, a space %20).
    """
    role = parse_role_arn(role_arn)
    query = urlencode(
        {"roleName": role.path_and_name, "account": role.account, "displayName": display_name or role.name},
        quote_via=quote,
        safe="/",
    )
    return f"https://{console_hosts(role.partition).signin}/switchrole?{query}"


def matches_any(arn: str, patterns: Iterable[str]) -> bool:
    """ARN glob match (`*`, `?`), case-sensitive as IAM compares ARNs; a 12-digit pattern means 'any principal of that account'.

    Linear in the ARN's length whatever the pattern (RE2, see `patterns.glob_matches`): patterns are admins' text.
    """
    for pattern in patterns:
        if _ACCOUNT_ID.match(pattern):
            if account_of_or_none(arn) == pattern:
                return True
        elif glob_matches(arn, pattern):
            return True
    return False


def account_of_or_none(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) >= 6 else None
