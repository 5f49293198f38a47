"""Requester route: the roles the caller may request, judged by the same rules `POST /requests` applies."""

from __future__ import annotations

from datetime import timedelta

from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import BaseModel, ConfigDict, Field

from trustgate.api.common import caller_of, deps, documented
from trustgate.app import requests
from trustgate.core import rules
from trustgate.core.identity import Caller, parse_role_arn, switch_role_url
from trustgate.core.models import Duration
from trustgate.core.settings import Settings

router = Router()


class AutoApproveWhen(BaseModel):
    """The conditions of an auto-approve rule that names the caller (who else it names is not shown)."""

    # defer_build: the schema is built when a route first needs it, not in every cold start.
    model_config = ConfigDict(defer_build=True)

    max_duration: Duration | None = None
    weekdays: list[int] = Field(default_factory=list, description="0 = Monday … 6 = Sunday (UTC); empty: any day")
    hours_utc: tuple[int, int] | None = Field(default=None, description="[start, end) hours, UTC; null: any hour")


class RequestableRole(BaseModel):
    model_config = ConfigDict(defer_build=True)
    role_arn: str
    role_name: str
    account: str
    default_duration: Duration = Field(description="what a request without `duration` asks for")
    max_duration: Duration = Field(description="the longest duration the caller may ask for")
    min_duration: Duration
    needs_approval: bool = Field(
        description="false only when an auto-approve rule approves every request the caller may make, at any time"
    )
    required_approvals: int = Field(description="distinct approvers a request needs when no rule approves it")
    auto_approve: list[AutoApproveWhen] = Field(
        description="the auto-approve rules that apply to the caller; a request meeting one needs no approver"
    )
    break_glass_max_duration: Duration | None = Field(
        default=None,
        description="set when the role's break_glass rule names the caller: the longest access they may take at "
        "once, without approval (`break_glass: true`); null: no break-glass for them",
    )
    justification_min_length: int
    ticket_pattern: str | None = Field(default=None, description="RE2 pattern a `ticket` must match; null: none")
    require_mfa: bool
    switch_url: str = Field(description="the console's Switch Role link, for use once a grant is active")


class RequestableRoleList(BaseModel):
    model_config = ConfigDict(defer_build=True)
    person: str = Field(description="who the caller is, as a person: requests are theirs")
    items: list[RequestableRole]


@router.get(
    "/requestable-roles",
    summary="The roles you may request, with each one's longest duration and whether it needs approval",
    responses=documented(
        200,
        "the roles (possibly none)",
        {403: "`not_a_person`: the caller is no person any role accepts (the message lists who is)"},
    ),
)
def list_requestable_roles() -> RequestableRoleList:
    caller = caller_of(router)
    person, policies = requests.requestable_roles(deps(), caller)
    d = deps()
    items = [
        _requestable(effective.role_arn, caller.arn, effective, _break_glass_max(caller, effective, d.settings))
        for effective in policies
    ]
    return RequestableRoleList(person=person.label, items=items)


def _break_glass_max(caller: Caller, effective: rules.EffectivePolicy, settings: Settings) -> timedelta | None:
    """The longest break-glass grant this caller may take on the role (None: the rule does not name them)."""
    rule = effective.policy.break_glass
    longest = rules.break_glass_max(effective, settings)
    return longest if rule is not None and caller.matches(rule.requesters) else None


def _requestable(
    role_arn: str, caller_arn: str, effective: rules.EffectivePolicy, break_glass_max: timedelta | None
) -> RequestableRole:
    policy = effective.policy
    applying = [rule for rule in policy.auto_approve if rules.rule_names(rule, caller_arn)]
    role = parse_role_arn(role_arn)
    return RequestableRole(
        role_arn=role_arn,
        role_name=role.name,
        account=role.account,
        default_duration=effective.default_duration,
        max_duration=effective.max_duration,
        min_duration=effective.min_duration,
        needs_approval=not rules.always_auto_approved(caller_arn, effective),
        required_approvals=policy.required_approvals,
        auto_approve=[
            AutoApproveWhen(
                max_duration=_within(rule.max_duration, effective.max_duration),
                weekdays=sorted(rule.weekdays),
                hours_utc=rule.hours_utc,
            )
            for rule in applying
        ],
        break_glass_max_duration=break_glass_max,
        justification_min_length=policy.justification_min_length,
        ticket_pattern=policy.ticket_pattern,
        require_mfa=policy.require_mfa,
        switch_url=switch_role_url(role_arn),
    )


def _within(rule_max: timedelta | None, role_max: timedelta) -> timedelta | None:
    """A rule's duration limit as it applies: never above the role's own longest duration (None: no limit)."""
    return None if rule_max is None or rule_max >= role_max else rule_max
