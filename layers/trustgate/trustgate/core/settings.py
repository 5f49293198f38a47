"""The deploy-time ceiling and resource names, read from the function environment (template.yaml Globals)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from trustgate.core.durations import parse_duration
from trustgate.core.identity import CallerPolicy

# Environment variable names: template.yaml sets them, the local stack reads them from the template.
ENV = {
    "table_name": "TABLE_NAME",
    "managed_role_arns": "MANAGED_ROLE_ARNS",
    "organization_id": "ORGANIZATION_ID",
    "allowed_account_ids": "ALLOWED_ACCOUNT_IDS",
    "bootstrap_admins": "BOOTSTRAP_ADMINS",
    "default_approvers": "DEFAULT_APPROVERS",
    "identity_role_arns": "IDENTITY_ROLE_ARNS",
    "identity_center_account_ids": "IDENTITY_CENTER_ACCOUNT_IDS",
    "min_required_approvals": "MIN_REQUIRED_APPROVALS",
    "allow_auto_approve": "ALLOW_AUTO_APPROVE",
    "allow_self_approval": "ALLOW_SELF_APPROVAL",
    "allow_break_glass": "ALLOW_BREAK_GLASS",
    "max_break_glass_duration": "MAX_BREAK_GLASS_DURATION",
    "max_duration": "MAX_DURATION",
    "min_duration": "MIN_DURATION",
    "default_duration": "DEFAULT_DURATION",
    "max_approval_window": "MAX_APPROVAL_WINDOW",
    "default_approval_window": "DEFAULT_APPROVAL_WINDOW",
    "max_schedule_ahead": "MAX_SCHEDULE_AHEAD",
    "trust_policy_quota": "TRUST_POLICY_QUOTA",
    "initial_standing_access": "INITIAL_STANDING_ACCESS",
    "partition": "AWS_PARTITION",
    "region": "AWS_REGION",
    "state_machine_arn": "STATE_MACHINE_ARN",
    "topic_arn": "TOPIC_ARN",
    "personal_topic_arn": "PERSONAL_TOPIC_ARN",
    "event_bus_name": "EVENT_BUS_NAME",
    "schedule_group": "SCHEDULE_GROUP",
    "scheduler_role_arn": "SCHEDULER_ROLE_ARN",
    "expire_function_arn": "EXPIRE_FUNCTION_ARN",
    "expiry_dlq_arn": "EXPIRY_DLQ_ARN",
    "editor_role_name": "EDITOR_ROLE_NAME",
    "approval_base_url": "APPROVAL_BASE_URL",
    "slack_webhook_secret_arn": "SLACK_WEBHOOK_SECRET_ARN",
    "teams_webhook_secret_arn": "TEAMS_WEBHOOK_SECRET_ARN",
}


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class Settings(BaseModel):
    """The vendor's ceiling: a role policy may tighten every value here, never loosen it."""

    model_config = ConfigDict(frozen=True)

    table_name: str = "trustgate"
    managed_role_arns: list[str] = Field(default_factory=list)
    organization_id: str = ""
    allowed_account_ids: list[str] = Field(default_factory=list)
    bootstrap_admins: list[str] = Field(default_factory=list)
    default_approvers: list[str] = Field(default_factory=list)
    identity_center_account_ids: list[str] = Field(
        default_factory=list,
        description="accounts whose AWSReservedSSO_* role sessions are trusted as IAM Identity Center persons",
    )
    identity_role_arns: list[str] = Field(
        default_factory=list, description="roles a role policy may list in identity_roles (the deployer's ceiling)"
    )
    # The floor of the approval rules: a role policy may require more approvals, never fewer, and may turn
    # auto-approve or self-approval on only where the deployer allows them at all (secure by default).
    min_required_approvals: int = Field(
        default=1, ge=1, le=10, description="the fewest approvals a role policy may require (MinRequiredApprovals)"
    )
    allow_auto_approve: bool = Field(
        default=False, description="may a role policy have auto_approve rules at all (AllowAutoApprove)"
    )
    allow_self_approval: bool = Field(
        default=False, description="may a role policy turn on allow_self_approval at all (AllowSelfApproval)"
    )
    allow_break_glass: bool = Field(
        default=False, description="may a role policy allow break-glass access at all (AllowBreakGlass)"
    )
    max_break_glass_duration: timedelta = Field(
        default=timedelta(hours=1), description="the longest break-glass grant a role policy may allow"
    )
    max_duration: timedelta = timedelta(hours=12)
    min_duration: timedelta = timedelta(minutes=15)
    default_duration: timedelta = timedelta(hours=1)
    max_approval_window: timedelta = timedelta(hours=24)
    default_approval_window: timedelta = timedelta(hours=2)
    max_schedule_ahead: timedelta = Field(
        default=timedelta(days=7), description="how far ahead a request's start_at may be (MaxScheduleAhead)"
    )
    trust_policy_quota: int = Field(default=2048, ge=1, le=4096)
    initial_standing_access: Literal["unmanaged", "none"] = Field(
        default="unmanaged",
        description="standing access of a role no admin has saved a policy for (InitialStandingAccess): "
        "`none` takes it to just-in-time (trustgate.app.standing)",
    )
    partition: str = "aws"
    region: str = "us-east-1"
    state_machine_arn: str = ""
    topic_arn: str = ""  # shared: alarms and team copies, never an approval link
    personal_topic_arn: str = ""  # one person per subscription (filtered on `recipient`): approval links
    event_bus_name: str = "default"
    schedule_group: str = "trustgate"
    scheduler_role_arn: str = ""
    expire_function_arn: str = ""
    expiry_dlq_arn: str = ""
    editor_role_name: str = ""
    approval_base_url: str = ""
    slack_webhook_secret_arn: str = ""
    teams_webhook_secret_arn: str = ""

    def caller_policy(self) -> CallerPolicy:
        return CallerPolicy(
            self.partition, frozenset(self.allowed_account_ids), frozenset(self.identity_center_account_ids)
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        values: dict[str, object] = {}
        for field, name in ENV.items():
            raw = environ.get(name)
            if raw is None or raw == "":
                continue
            annotation = cls.model_fields[field].annotation
            if annotation == list[str]:
                values[field] = _split(raw)
            elif annotation is timedelta:
                values[field] = parse_duration(raw)
            else:
                values[field] = raw
        return cls.model_validate(values)
