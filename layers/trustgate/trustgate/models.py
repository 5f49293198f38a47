"""The values TrustGate reasons about: access requests, approvals, audit events, role policies."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
)

from trustgate.clock import parse_rfc3339, to_rfc3339
from trustgate.durations import format_duration, parse_duration


def _utc(value: Any) -> Any:
    return parse_rfc3339(value) if isinstance(value, str) else value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("times must carry a timezone (RFC 3339 with Z)")
    return value


UtcDatetime = Annotated[
    datetime,
    BeforeValidator(_utc),
    AfterValidator(_aware),
    PlainSerializer(to_rfc3339, return_type=str),
]


def _duration(value: Any) -> Any:
    return parse_duration(value) if isinstance(value, (str, int)) else value


Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    PlainSerializer(format_duration, return_type=str),
]


class RequestStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"
    DENIED = "denied"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    FAILED = "failed"


class Approval(BaseModel):
    approver_arn: str
    decision: Literal["approve", "deny"]
    at: UtcDatetime
    comment: str | None = None


class AccessRequest(BaseModel):
    """One request for access and, once approved, the grant it became (the source of truth)."""

    id: str
    role_arn: str
    principal_arn: str
    principal_id: str | None = None
    status: RequestStatus = RequestStatus.PENDING
    duration: Duration
    justification: str
    ticket: str | None = None
    created_at: UtcDatetime
    decided_at: UtcDatetime | None = None
    starts_at: UtcDatetime | None = None
    expires_at: UtcDatetime | None = None
    approval_deadline: UtcDatetime | None = None
    approvals: list[Approval] = Field(default_factory=list)
    required_approvals: int = 1
    approvers: list[str] = Field(default_factory=list)
    allow_self_approval: bool = False
    auto_approved: bool = False
    extends: str | None = None
    reason: str | None = None
    version: int = 0

    def approvals_by(self, decision: str) -> list[Approval]:
        return [a for a in self.approvals if a.decision == decision]

    def is_grant_live(self, now: datetime) -> bool:
        """An active grant whose expiry is still ahead: it belongs in the trust policy."""
        return self.status == RequestStatus.ACTIVE and self.expires_at is not None and self.expires_at > now


class RequestView(BaseModel):
    """The `Request` shape of the HTTP API."""

    id: str
    role_arn: str
    principal_arn: str
    status: RequestStatus
    duration: Duration
    justification: str
    ticket: str | None = None
    created_at: UtcDatetime
    decided_at: UtcDatetime | None = None
    starts_at: UtcDatetime | None = None
    expires_at: UtcDatetime | None = None
    approval_deadline: UtcDatetime | None = None
    approvals: list[Approval]
    required_approvals: int
    auto_approved: bool = False
    extends: str | None = None
    reason: str | None = None

    @classmethod
    def of(cls, request: AccessRequest) -> RequestView:
        return cls.model_validate(request.model_dump(include=set(cls.model_fields)))


class AuditEvent(BaseModel):
    """One append-only audit record; `action` also names the EventBridge detail-type."""

    id: str
    at: UtcDatetime
    actor: str
    action: str
    role_arn: str | None = None
    request_id: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class AutoApproveRule(BaseModel):
    """Every condition given must hold for a request to be approved without a person."""

    model_config = ConfigDict(extra="forbid")

    principals: list[str] = Field(default_factory=list, description="ARN patterns of requesters")
    max_duration: Duration | None = None
    weekdays: list[int] = Field(default_factory=list, description="0 = Monday … 6 = Sunday (UTC)")
    hours_utc: tuple[int, int] | None = Field(default=None, description="[start, end) hours, UTC")

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, value: list[int]) -> list[int]:
        if any(day < 0 or day > 6 for day in value):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday)")
        return value

    @field_validator("hours_utc")
    @classmethod
    def _hours(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and not (0 <= value[0] < value[1] <= 24):
            raise ValueError("hours_utc is [start, end) with 0 <= start < end <= 24")
        return value


Mode = Literal["organization", "accounts", "none"]


def _check_regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"ticket_pattern is not a valid regular expression: {error}") from error
    return value


def _check_cidrs(values: list[str]) -> list[str]:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError as error:
            raise ValueError(f"{value!r} is not an IP range in CIDR form (203.0.113.0/24)") from error
    return values


_TAG_KEY = re.compile(r"^[\w.:/=+@-]{1,128}$")
_STANDING = re.compile(
    r"^(\d{12}|arn:aws[a-z-]*:(iam::\d{12}:(user|role)/[\w+=,.@/-]+|sts::\d{12}:assumed-role/[\w+=,.@-]+/[\w+=,.@-]+))$"
)


def _check_tags(values: dict[str, str]) -> dict[str, str]:
    for key, value in values.items():
        if not _TAG_KEY.match(key) or len(value) > 256:
            raise ValueError(f"{key!r} is not an IAM tag key (letters, digits, and _.:/=+-@, up to 128 characters)")
    return values


def _check_standing(values: list[str]) -> list[str]:
    for value in values:
        if not _STANDING.match(value):
            raise ValueError(
                f"{value!r} is neither a 12-digit account id nor an IAM user, role or role-session ARN (no wildcards)"
            )
    return values


class RolePolicy(BaseModel):
    """A customer admin's rules for one role; every unset field falls back to the deploy ceiling."""

    model_config = ConfigDict(extra="forbid")

    mode: Mode | None = Field(
        default=None,
        description="standing access: organization | accounts | none; unset leaves the role's own statements in charge",
    )
    adopt_statements: list[str] = Field(
        default_factory=list, description="Sids of hand-written statements TrustGate replaces by its baseline"
    )
    standing_principals: Annotated[list[str], AfterValidator(_check_standing)] = Field(default_factory=list)
    requester_accounts: list[Annotated[str, Field(pattern=r"^\d{12}$")]] = Field(default_factory=list)
    requester_patterns: list[str] = Field(default_factory=list)
    requester_principal_tags: Annotated[dict[str, str], AfterValidator(_check_tags)] = Field(
        default_factory=dict,
        description="IAM groups cannot be trust-policy principals: restrict to a group by tagging its members "
        "and naming the tag here (rendered as aws:PrincipalTag conditions)",
    )
    approvers: list[str] = Field(default_factory=list)
    required_approvals: int = Field(default=1, ge=1, le=10)
    allow_self_approval: bool = False
    auto_approve: list[AutoApproveRule] = Field(default_factory=list)
    default_duration: Duration | None = None
    max_duration: Duration | None = None
    approval_window: Duration | None = None
    justification_min_length: int = Field(default=10, ge=0, le=1000)
    ticket_pattern: Annotated[str | None, AfterValidator(_check_regex)] = None
    require_mfa: bool = False
    source_ip_ranges: Annotated[list[str], AfterValidator(_check_cidrs)] = Field(default_factory=list)
    notify: list[str] = Field(default_factory=list)
    admins: list[str] = Field(default_factory=list)
