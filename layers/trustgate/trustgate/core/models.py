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
    ValidationInfo,
    computed_field,
    field_validator,
)
from pydantic_core import PydanticCustomError

from trustgate.core.clock import parse_rfc3339, to_rfc3339
from trustgate.core.durations import format_duration, parse_duration
from trustgate.core.errors import InvalidPrincipalError
from trustgate.core.identity import (
    Person,
    PersonKind,
    account_of,
    parse_role_arn,
    person_of,
    role_arn_or_none,
    switch_role_url,
)
from trustgate.core.patterns import PatternError, check_glob, compile_regex


def _label(arn: str) -> str:
    try:
        return person_of(arn).label
    except InvalidPrincipalError:
        return arn


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
    SCHEDULED = "scheduled"  # approved, waiting for its `start_at` (one-time schedule), nobody in IAM yet
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"
    DENIED = "denied"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    FAILED = "failed"


class Approval(BaseModel):
    approver_arn: str = Field(description="the ARN the approver used")
    decision: Literal["approve", "deny"]
    at: UtcDatetime
    comment: str | None = None

    @computed_field(description="who decided, as a person: `alice (IAM user, 111111111111)`")  # type: ignore[prop-decorator]
    @property
    def person(self) -> str:
        return _label(self.approver_arn)

    @property
    def approver(self) -> Person:
        return person_of(self.approver_arn)


ReviewVerdict = Literal["ok", "misuse"]


class Review(BaseModel):
    """An approver's verdict on a break-glass grant, given after the fact."""

    reviewer_arn: str = Field(description="the ARN the reviewer used")
    verdict: ReviewVerdict = Field(description="`ok`: the use was justified; `misuse`: it was not")
    at: UtcDatetime
    comment: str | None = None

    @computed_field(description="who reviewed, as a person")  # type: ignore[prop-decorator]
    @property
    def person(self) -> str:
        return _label(self.reviewer_arn)


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
    start_at: UtcDatetime | None = None  # asked for: access from then (scheduled access); None = once approved
    starts_at: UtcDatetime | None = None
    expires_at: UtcDatetime | None = None
    approval_deadline: UtcDatetime | None = None
    approvals: list[Approval] = Field(default_factory=list)
    required_approvals: int = 1
    approvers: list[str] = Field(default_factory=list)
    allow_self_approval: bool = False
    identity_roles: list[str] = Field(default_factory=list)
    approver_kinds: list[PersonKind] = Field(default_factory=list)
    require_mfa: bool = False
    auto_approved: bool = False
    break_glass: bool = False  # granted at once without approval; an approver reviews it afterwards
    announced_at: UtcDatetime | None = None  # break-glass: when approvers, the event and the alarm's metric went out
    review: Review | None = None
    extends: str | None = None
    covered_until: UtcDatetime | None = None
    # A multi-role request: the first role's request holds the decision and lists every role and the other roles'
    # requests (`parts`, one per role in `roles[1:]`); each part names it in `part_of`.
    roles: list[str] = Field(default_factory=list)
    parts: list[str] = Field(default_factory=list)
    part_of: str | None = None
    left_trust_at: UtcDatetime | None = None  # when a sync took the ended grant's person out of the trust policy
    reason: str | None = None
    version: int = 0

    @property
    def requester(self) -> Person:
        """The person who asked: every rule about ownership compares this, never the ARN."""
        return person_of(self.principal_arn)

    def approvals_by(self, decision: str) -> list[Approval]:
        return [a for a in self.approvals if a.decision == decision]

    def requested_end(self) -> datetime | None:
        """A scheduled request's end: one duration after the start asked for (None for one that starts on approval)."""
        return self.start_at + self.duration if self.start_at is not None else None

    @property
    def review_pending(self) -> bool:
        """A break-glass request no approver has reviewed yet, unless it ended without ever beginning (nothing
        was used: a failed or cancelled attempt needs no verdict)."""
        never_began = self.starts_at is None and self.status in (RequestStatus.FAILED, RequestStatus.CANCELLED)
        return self.break_glass and self.review is None and not never_began

    @property
    def bundle(self) -> bool:
        """The decision of a multi-role request (its first role's request, with the other roles as `parts`)."""
        return bool(self.parts)

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
    start_at: UtcDatetime | None = Field(
        default=None,
        description="scheduled access: when the requester asked the access to begin (it then ends one `duration` "
        "later); absent: it begins once approved",
    )
    starts_at: UtcDatetime | None = Field(default=None, description="when the access began (the grant's window)")
    expires_at: UtcDatetime | None = None
    approval_deadline: UtcDatetime | None = None
    approvals: list[Approval]
    required_approvals: int
    auto_approved: bool = False
    break_glass: bool = Field(
        default=False, description="granted at once without approval (break-glass); an approver reviews it afterwards"
    )
    review: Review | None = Field(
        default=None, description="for break-glass: the approver's verdict after the fact; absent: not reviewed yet"
    )
    extends: str | None = None
    covered_until: UtcDatetime | None = Field(
        default=None, description="for an extension: the end of the access the person holds now"
    )
    roles: list[str] = Field(
        default_factory=list,
        description="a multi-role request: every role asked for (this request is the first role's and holds the one "
        "decision for all); empty for a request of one role",
    )
    parts: list[str] = Field(
        default_factory=list, description="a multi-role request: the requests of `roles[1:]`, in that order"
    )
    part_of: str | None = Field(
        default=None, description="one role of a multi-role request: the id of the request that holds its decision"
    )
    reason: str | None = None
    person: str = Field(default="", description="who asked, as a person")
    session_name: str = Field(default="", description="the session name the role's trust policy pins for them")
    access: WayIn | None = Field(default=None, description="how to use an active grant")
    switch_url: str | None = Field(
        default=None,
        description="for an active grant: the console's Switch Role link (the same as `access.console_url`)",
    )

    @classmethod
    def of(cls, request: AccessRequest) -> RequestView:
        view = cls.model_validate(request.model_dump(include=set(cls.model_fields)))
        person = request.requester
        access = way_in(request) if request.status == RequestStatus.ACTIVE else None
        return view.model_copy(
            update={
                "person": person.label,
                "session_name": person.session_name,
                "access": access,
                "switch_url": access.console_url if access else None,
            }
        )


class WayIn(BaseModel):
    """The exact way into a granted role: the session name is pinned, so nothing else works."""

    # defer_build: the schema is built when a route first needs it, not in every cold start.
    model_config = ConfigDict(defer_build=True)

    role_arn: str
    session_name: str
    console_url: str = Field(description="the console's Switch Role link")
    assume_role_command: str = Field(description="the AWS CLI command, with the pinned --role-session-name")
    mfa_required: bool = False


def way_in(request: AccessRequest) -> WayIn:
    """One rendering of the way in, used by the API (CLI `status`), the 'granted' email and the approval result."""
    person = request.requester
    command = f"aws sts assume-role --role-arn {request.role_arn} --role-session-name {person.session_name}"
    if request.require_mfa:
        partition = parse_role_arn(request.role_arn).partition
        command += (
            f" --serial-number arn:{partition}:iam::{account_of(request.principal_arn)}:mfa/<your MFA device name>"
            " --token-code <6-digit code>"
        )
    return WayIn(
        role_arn=request.role_arn,
        session_name=person.session_name,
        console_url=switch_role_url(request.role_arn),
        assume_role_command=command,
        mfa_required=request.require_mfa,
    )


RequestView.model_rebuild()


class AuditEvent(BaseModel):
    """One append-only audit record; `action` also names the EventBridge detail-type."""

    model_config = ConfigDict(defer_build=True)

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

    model_config = ConfigDict(extra="forbid", defer_build=True)

    principals: list[str] = Field(default_factory=list, description="ARN patterns of requesters")
    max_duration: Duration | None = None
    weekdays: list[int] = Field(default_factory=list, description="0 = Monday … 6 = Sunday (UTC)")
    hours_utc: tuple[int, int] | None = Field(default=None, description="[start, end) hours, UTC")

    @field_validator("principals")
    @classmethod
    def _principals(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return _check_globs(value, info)  # ARN and person globs, as requester_patterns

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


# A policy read back from the table is validated with this context (`Store.get_role_policy`): a check added
# later must not make a stored policy unreadable, since revoke, expiry and reconcile all read it. Where a
# stored value is used, it is still evaluated safely (an uncompilable ticket_pattern refuses requests).
STORED: dict[str, Any] = {"stored": True}


def _stored(info: ValidationInfo) -> bool:
    return isinstance(info.context, dict) and bool(info.context.get("stored"))


def _invalid_pattern(message: str) -> PydanticCustomError:
    """A pattern TrustGate will not evaluate: the API answers 422 `invalid_pattern` (see api/app.py)."""
    return PydanticCustomError("invalid_pattern", "{message}", {"message": message})


def _shown(value: str) -> str:
    return repr(value) if len(value) <= 80 else repr(value[:77]) + "…"


def _check_regex(value: str | None, info: ValidationInfo) -> str | None:
    """ticket_pattern: evaluated by RE2 (linear time), so it must compile there and stay short."""
    if value is not None and not _stored(info):
        try:
            compile_regex(value)
        except PatternError as error:
            raise _invalid_pattern(f"ticket_pattern {_shown(value)} {error}") from error
    return value


def _check_globs(values: list[str], info: ValidationInfo) -> list[str]:
    """ARN and person globs (`*`, `?`): ASCII name characters only, bounded length (see patterns.check_glob)."""
    if not _stored(info):
        for value in values:
            try:
                check_glob(value)
            except PatternError as error:
                raise _invalid_pattern(f"pattern {_shown(value)} {error}") from error
    return values


def _check_cidrs(values: list[str]) -> list[str]:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError as error:
            raise ValueError(f"{value!r} is not an IP range in CIDR form (203.0.113.0/24)") from error
    return values


# TrustGate's own checks of ARNs and tag keys: ASCII only (re.ASCII: `\w` is [A-Za-z0-9_], as in IAM names),
# anchored with \Z (`$` also matches before a trailing newline), and bounded (IAM's longest ARN is 2048).
MAX_ARN = 2048
_STANDING = re.compile(
    r"([0-9]{12}|arn:aws[a-z-]*:(iam::[0-9]{12}:(user|role)/[\w+=,.@/-]+|sts::[0-9]{12}:assumed-role/[\w+=,.@-]+/[\w+=,.@-]+))\Z",
    re.ASCII,
)
# IAM tags: keys 1-128 and values 0-256 characters of letters, digits, spaces (values only here) and _.:/=+-@;
# at most 50 tags per principal; the `aws:` prefix is reserved, so no principal can carry such a tag.
_TAG_KEY = re.compile(r"[A-Za-z0-9_.:/=+@-]{1,128}\Z")
_TAG_VALUE = re.compile(r"[A-Za-z0-9_.:/=+@ -]{0,256}\Z")
MAX_PRINCIPAL_TAGS = 50


def _check_tags(values: dict[str, str], info: ValidationInfo) -> dict[str, str]:
    if _stored(info):
        return values
    if len(values) > MAX_PRINCIPAL_TAGS:
        raise ValueError(f"at most {MAX_PRINCIPAL_TAGS} principal tags: IAM allows no more on one principal")
    for key, value in values.items():
        if not _TAG_KEY.match(key) or key.lower().startswith("aws:"):
            raise ValueError(
                f"{_shown(key)} is not an IAM tag key: ASCII letters, digits and _.:/=+-@, 1 to 128 characters, "
                "not starting with aws:"
            )
        if not _TAG_VALUE.match(value):
            raise ValueError(
                f"the value of tag {key!r} is not an IAM tag value: ASCII letters, digits, spaces and _.:/=+-@, "
                "up to 256 characters"
            )
    return values


def _check_standing(values: list[str], info: ValidationInfo) -> list[str]:
    if not _stored(info):
        for value in values:
            if len(value) > MAX_ARN or not _STANDING.match(value):
                raise ValueError(
                    f"{_shown(value)} is neither a 12-digit account id nor an IAM user, role or role-session ARN "
                    "(ASCII, no wildcards, nothing after the name)"
                )
    return values


def _check_role_arns(values: list[str], info: ValidationInfo) -> list[str]:
    if not _stored(info):
        for value in values:
            if len(value) > MAX_ARN or role_arn_or_none(value) is None:
                raise ValueError(
                    f"{_shown(value)} is not an IAM role ARN such as arn:aws:iam::111122223333:role/SamlUsers "
                    "(ASCII, no wildcards, nothing after the name)"
                )
    return values


# `notify` targets: who else hears of each request (without links), as the `recipient` that a subscription
# to the personal topic (or a Slack webhook key) filters on: an email address or an ARN, ASCII, no wildcards.
MAX_NOTIFY_TARGETS = 20
_NOTIFY_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+\Z",
    re.ASCII,
)
_NOTIFY_ARN = re.compile(r"arn:aws[a-z-]*:[a-z0-9-]{1,64}:[a-z0-9-]*:(?:[0-9]{12})?:[\w+=,.@/:-]{1,1024}\Z", re.ASCII)


def is_notify_target(value: str) -> bool:
    """An email address (up to 254 characters) or an ARN (up to 2048), as a subscription filters on it."""
    return (len(value) <= 254 and bool(_NOTIFY_EMAIL.match(value))) or (
        len(value) <= MAX_ARN and bool(_NOTIFY_ARN.match(value))
    )


def _unique_targets(values: list[str]) -> list[str]:
    """Trimmed, empty ones dropped, duplicates dropped (email addresses compared without case), order kept."""
    seen: dict[str, str] = {}
    for value in (v.strip() for v in values):
        if value:
            seen.setdefault(value.lower() if "@" in value and not value.startswith("arn:") else value, value)
    return list(seen.values())


def notify_targets(values: list[str]) -> list[str]:
    """The targets TrustGate tells: well-formed, unique, at most MAX_NOTIFY_TARGETS (whatever a stored policy holds)."""
    return [v for v in _unique_targets(values) if is_notify_target(v)][:MAX_NOTIFY_TARGETS]


def _check_notify(values: list[str], info: ValidationInfo) -> list[str]:
    """A bounded list of email addresses or ARNs; the API answers 422 `invalid_notify` (see api/app.py)."""
    unique = _unique_targets(values)
    if _stored(info):
        return unique
    if len(unique) > MAX_NOTIFY_TARGETS:
        raise PydanticCustomError(
            "invalid_notify",
            "notify names {count} targets; at most {limit} are allowed: name a team address or a chat channel "
            "instead of each person",
            {"count": len(unique), "limit": MAX_NOTIFY_TARGETS},
        )
    for value in unique:
        if not is_notify_target(value):
            raise PydanticCustomError(
                "invalid_notify",
                "notify target {value} is neither an email address (ops@example.com) nor an ARN "
                "(arn:aws:iam::111122223333:user/bob), ASCII and without wildcards",
                {"value": _shown(value)},
            )
    return unique


class BreakGlassRule(BaseModel):
    """Who may take the role at once, without approval, for how long; every use is reviewed afterwards."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    requesters: Annotated[list[str], AfterValidator(_check_globs)] = Field(
        description="ARN globs, account ids or person keys of who may break the glass (they must also be allowed to "
        "request the role)"
    )
    max_duration: Duration = Field(
        description="the longest break-glass grant; at most the deployer's MaxBreakGlassDuration"
    )


class RolePolicy(BaseModel):
    """A customer admin's rules for one role; every unset field falls back to the deploy ceiling."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    mode: Mode | None = Field(
        default=None,
        description="standing access: organization | accounts | none; unset leaves the role's own statements in charge",
    )
    adopt_statements: list[str] = Field(
        default_factory=list, description="Sids of hand-written statements TrustGate replaces by its baseline"
    )
    standing_principals: Annotated[list[str], AfterValidator(_check_standing)] = Field(default_factory=list)
    requester_accounts: list[Annotated[str, Field(pattern=r"^\d{12}$")]] = Field(default_factory=list)
    requester_patterns: Annotated[list[str], AfterValidator(_check_globs)] = Field(
        default_factory=list,
        description="ARN globs (* and ?), 12-digit account ids or person keys (iam:…, idc:…, role:…) of who may "
        "request; matched in linear time",
    )
    requester_principal_tags: Annotated[dict[str, str], AfterValidator(_check_tags)] = Field(
        default_factory=dict,
        description="IAM groups cannot be trust-policy principals: restrict to a group by tagging its members "
        "and naming the tag here (rendered as aws:PrincipalTag conditions)",
    )
    approvers: Annotated[list[str], AfterValidator(_check_globs)] = Field(default_factory=list)
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
    notify: Annotated[list[str], AfterValidator(_check_notify)] = Field(
        default_factory=list,
        description=f"up to {MAX_NOTIFY_TARGETS} email addresses or ARNs told of each request, without approval "
        "links (each receives it through a subscription filtered on it); duplicates are dropped",
    )
    admins: Annotated[list[str], AfterValidator(_check_globs)] = Field(default_factory=list)
    identity_roles: Annotated[list[str], AfterValidator(_check_role_arns)] = Field(
        default_factory=list,
        description="roles whose session names an identity provider sets (e.g. a SAML role): their sessions "
        "count as persons; must be within the deployment's IdentityRoleArns",
    )
    break_glass: BreakGlassRule | None = Field(
        default=None,
        description="off when absent: who may take the role at once without approval, and for how long; every use "
        "notifies the approvers, raises an alarm and waits for an approver's review",
    )
    approver_kinds: list[PersonKind] = Field(
        default_factory=list,
        description="restrict approvers to these kinds of identity (iam_user, identity_center, identity_role); "
        "empty allows every kind. One human holding both an IAM user and an Identity Center user is two persons "
        "to TrustGate: restrict approvers to one kind to rule that out",
    )
