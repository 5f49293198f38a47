"""Role ARNs and names, and the two ways to use a grant: the console Switch Role link and `aws sts assume-role`."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from trustgate_cli.errors import UsageError

_ROLE_ARN = re.compile(r"arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role/(?P<path_name>.+)")
_ACCOUNT_ID = re.compile(r"\d{12}")
# The console's sign-in host differs per partition; a link to the wrong one just fails to load.
_SIGNIN_HOSTS = {
    "aws": "signin.aws.amazon.com",
    "aws-us-gov": "signin.amazonaws-us-gov.com",
    "aws-cn": "signin.amazonaws.cn",
}
# What STS accepts as a role session name.
_SESSION_UNSAFE = re.compile(r"[^\w+=,.@-]")


@dataclass(frozen=True)
class RoleRef:
    """A role as the console and STS need it: account, `path/name` and partition."""

    account: str
    path_name: str
    partition: str = "aws"

    @property
    def name(self) -> str:
        """The role name without its path."""
        return self.path_name.rsplit("/", 1)[-1]

    @property
    def arn(self) -> str:
        """The role's ARN."""
        return f"arn:{self.partition}:iam::{self.account}:role/{self.path_name}"


def parse_role_arn(text: str) -> RoleRef | None:
    """The role an IAM role ARN names, or None when `text` is not a role ARN (e.g. a bare role name)."""
    match = _ROLE_ARN.fullmatch(text.strip())
    if match is None:
        return None
    return RoleRef(account=match["account"], path_name=match["path_name"], partition=match["partition"])


def check_account_id(text: str) -> str:
    """An AWS account id (12 digits), or a UsageError saying what one looks like."""
    if not _ACCOUNT_ID.fullmatch(text):
        raise UsageError("bad_account", f"account id {text!r} is not 12 digits (e.g. 111122223333)")
    return text


def role_name(role: str) -> str:
    """The bare name of a role given as a name, `path/name` or ARN; for tables."""
    return role.rsplit("/", 1)[-1]


def switch_role_url(role: RoleRef, display_name: str | None = None) -> str:
    """The console's Switch Role link for `role`; `displayName` defaults to the role name."""
    query = urlencode(
        {"roleName": role.path_name, "account": role.account, "displayName": display_name or role.name},
        quote_via=quote,
        safe="/",
    )
    host = _SIGNIN_HOSTS.get(role.partition, _SIGNIN_HOSTS["aws"])
    return f"https://{host}/switchrole?{query}"


def session_name_for(principal_arn: str) -> str:
    """The role session name that matches how the console names it: the user name or the caller's own session.

    `arn:aws:iam::A:user/alice` -> `alice`; `arn:aws:sts::A:assumed-role/Role/alice@example.com` ->
    `alice@example.com`.
    """
    last = principal_arn.rsplit("/", 1)[-1] if "/" in principal_arn else ""
    cleaned = _SESSION_UNSAFE.sub("-", last)[:64]
    # STS wants 2..64 characters.
    return cleaned if len(cleaned) >= 2 else "trustgate"


def assume_role_command(role_arn: str, session_name: str, profile: str | None = None) -> str:
    """The `aws sts assume-role` command line that uses a grant, ready to paste into a shell."""
    words = ["aws", "sts", "assume-role", "--role-arn", role_arn, "--role-session-name", session_name]
    if profile:
        # The grant names the principal behind this profile, so assume from the same one.
        words += ["--profile", profile]
    return shlex.join(words)
