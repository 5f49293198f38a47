"""Admin routes: managed roles, their live trust policies, their policies, and a manual sync."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel

from trustgate import admin, service
from trustgate.api.common import caller_of, deps
from trustgate.models import RequestView, RolePolicy

router = Router()


class RoleSummary(BaseModel):
    role_arn: str
    mode: str
    active_grants: int
    trust_policy_chars: int
    trust_policy_quota: int


class RoleList(BaseModel):
    items: list[RoleSummary]


class RoleDetail(BaseModel):
    role_arn: str
    mode: str
    policy: dict[str, Any]
    trust_policy: dict[str, Any]
    trust_policy_chars: int
    trust_policy_quota: int
    active_grants: list[RequestView]


class PolicyChangeResult(BaseModel):
    policy: dict[str, Any]
    dry_run: bool
    trust_policy_before: dict[str, Any]
    trust_policy_after: dict[str, Any]
    revoked_requests: list[RequestView]


class SyncOutcome(BaseModel):
    changed: bool
    trust_policy: dict[str, Any]
    trust_policy_chars: int
    trust_policy_quota: int


def _admin_role(role: str) -> str:
    d = deps()
    role_arn = service.resolve_role(d, role)
    service.check_admin(d, caller_of(router), role_arn)
    return role_arn


@router.get("/roles", summary="Managed roles you administer, with capacity used")
def list_roles() -> RoleList:
    d = deps()
    caller = caller_of(router)
    arns = admin.roles_for_admin(d, caller)
    if not arns:
        service.check_admin(d, caller)  # 403 for someone who administers nothing
    items = []
    for arn in arns:
        overview = admin.role_overview(d, arn)
        items.append(
            RoleSummary(
                role_arn=arn,
                mode=overview.mode,
                active_grants=len(overview.active_grants),
                trust_policy_chars=overview.trust_policy_chars,
                trust_policy_quota=overview.trust_policy_quota,
            )
        )
    return RoleList(items=items)


@router.get("/roles/<role>", summary="A role: its policy, live trust policy, capacity and active grants")
def get_role(role: str) -> RoleDetail:
    d = deps()
    overview = admin.role_overview(d, _admin_role(role))
    return RoleDetail(
        role_arn=overview.role_arn,
        mode=overview.mode,
        policy=admin.policy_view(d, overview.role_arn),
        trust_policy=overview.trust_policy,
        trust_policy_chars=overview.trust_policy_chars,
        trust_policy_quota=overview.trust_policy_quota,
        active_grants=[RequestView.of(g) for g in overview.active_grants],
    )


@router.get("/roles/<role>/policy", summary="The role's policy (unset fields show the ceiling's defaults)")
def get_policy(role: str) -> dict[str, Any]:
    return admin.policy_view(deps(), _admin_role(role))


@router.put("/roles/<role>/policy", summary="Replace the role's policy; dry_run shows the effect only")
def put_policy(
    role: str, body: Annotated[RolePolicy, Body()], dry_run: Annotated[bool, Query()] = False
) -> PolicyChangeResult:
    change = admin.change_policy(deps(), caller_of(router), _admin_role(role), body, dry_run=dry_run)
    return PolicyChangeResult(
        policy=change.policy.model_dump(mode="json", exclude_defaults=True),
        dry_run=not change.applied,
        trust_policy_before=change.before,
        trust_policy_after=change.after,
        revoked_requests=[RequestView.of(r) for r in change.revoked],
    )


@router.post("/roles/<role>/sync", summary="Re-render the role's trust policy now")
def sync(role: str) -> SyncOutcome:
    result = admin.sync_now(deps(), caller_of(router), _admin_role(role))
    return SyncOutcome(
        changed=result.changed,
        trust_policy=result.after,
        trust_policy_chars=result.size,
        trust_policy_quota=result.quota,
    )
