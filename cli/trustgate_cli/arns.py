"""Role ARNs, names and account ids as people type them. The links and commands that use a grant (the console's
Switch Role link, `aws sts assume-role`) come from the server (`switch_url`, `access`): the CLI builds none."""

from __future__ import annotations

import re
from dataclasses import dataclass

from trustgate_cli.errors import UsageError

_ROLE_ARN = re.compile(r"arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role/(?P<path_name>.+)")
_ACCOUNT_ID = re.compile(r"\d{12}")


@dataclass(frozen=True)
class RoleRef:
    """A role as a person names it: account, `path/name` and partition."""

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
