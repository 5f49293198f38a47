"""Admin routes: managed roles, their live trust policies, their policies, and a manual sync."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, ConfigDict, Field

from trustgate.api.common import caller_of, deps, documented
from trustgate.app import access, roles
from trustgate.core.identity import switch_role_url
from trustgate.core.models import RequestView, RolePolicy, UtcDatetime

router = Router()


class RoleSummary(BaseModel):
    # defer_build: the schema is built when a route first needs it, not in every cold start.
    model_config = ConfigDict(defer_build=True)
    role_arn: str
    mode: str
    active_grants: int
    trust_policy_chars: int
    trust_policy_quota: int
    switch_url: str = Field(description="the console's Switch Role link (what `trustgate switch-url` prints)")


class RoleList(BaseModel):
    model_config = ConfigDict(defer_build=True)
    items: list[RoleSummary]


class RoleDetail(BaseModel):
    model_config = ConfigDict(defer_build=True)
    role_arn: str
    mode: str
    policy: dict[str, Any]
    trust_policy: dict[str, Any]
    trust_policy_chars: int
    trust_policy_quota: int
    active_grants: list[RequestView]


class PolicyChangeResult(BaseModel):
    model_config = ConfigDict(defer_build=True)
    policy: dict[str, Any]
    dry_run: bool
    trust_policy_before: dict[str, Any]
    trust_policy_after: dict[str, Any]
    revoked_requests: list[RequestView]
    version: int | None = Field(
        default=None, description="the stored policy's version after the change (for a dry run: the current one)"
    )


class SyncOutcome(BaseModel):
    model_config = ConfigDict(defer_build=True)
    changed: bool
    trust_policy: dict[str, Any]
    trust_policy_chars: int
    trust_policy_quota: int


class RevokePersonBody(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    principal: str = Field(
        min_length=1,
        max_length=2048,
        description="any ARN of the person (IAM user or role session) or their person key: "
        "iam:<account>:<user>, idc:<user>, role:<session>",
    )
    reason: str | None = Field(default=None, max_length=1000)


class RevocationResult(BaseModel):
    model_config = ConfigDict(defer_build=True)
    role_arn: str
    person: str = Field(description="the person key whose coverage ended (iam:…, idc:…, role:…)")
    ended: list[RequestView] = Field(description="the active grants that ended now (status revoked)")
    cancelled: list[RequestView] = Field(description="the pending requests (extensions) that were cancelled")
    was_until: UtcDatetime | None = Field(description="when the person's access would have ended without the revoke")


_ROLE_ERRORS: dict[int, str | None] = {
    403: "`forbidden`: you are not an admin of the role",
    404: "`not_found`: the role is not one TrustGate manages",
}


@router.get(
    "/roles",
    summary="Managed roles you administer, with capacity used",
    responses=documented(200, "the roles", {403: "`forbidden`: you administer no role"}),
)
def list_roles() -> RoleList:
    items = [
        RoleSummary(
            role_arn=overview.role_arn,
            mode=overview.mode,
            active_grants=len(overview.active_grants),
            trust_policy_chars=overview.trust_policy_chars,
            trust_policy_quota=overview.trust_policy_quota,
            switch_url=switch_role_url(overview.role_arn),
        )
        for overview in roles.administered_roles(deps(), caller_of(router))
    ]
    return RoleList(items=items)


@router.get(
    "/roles/<role>",
    summary="A role: its policy, live trust policy, capacity and active grants",
    responses=documented(200, "the role", _ROLE_ERRORS),
)
def get_role(role: str) -> RoleDetail:
    d = deps()
    overview = roles.role_overview(d, caller_of(router), access.resolve_role(d, role))
    return RoleDetail(
        role_arn=overview.role_arn,
        mode=overview.mode,
        policy=overview.policy,
        trust_policy=overview.trust_policy,
        trust_policy_chars=overview.trust_policy_chars,
        trust_policy_quota=overview.trust_policy_quota,
        active_grants=[RequestView.of(g) for g in overview.active_grants],
    )


@router.get(
    "/roles/<role>/policy",
    summary="The role's policy (unset fields show the ceiling's defaults)",
    responses=documented(200, "the policy", _ROLE_ERRORS),
)
def get_policy(role: str) -> Response[dict[str, Any]]:
    view = roles.policy_view(deps(), caller_of(router), access.resolve_role(deps(), role))
    # The ETag is the stored version: send it back in If-Match when you PUT, so a concurrent change is not lost.
    return Response(200, content_type="application/json", body=view, headers={"ETag": f'"{view["version"]}"'})


@router.put(
    "/roles/<role>/policy",
    summary="Replace the role's policy; dry_run shows the effect only",
    responses=documented(
        200,
        "the policy stored (or, with dry_run, the one that would be) and its effect",
        {
            **_ROLE_ERRORS,
            409: "`conflict` (changed meanwhile), `trust_policy_full`, `session_guard_full`, "
            "`session_name_conflict`, `sync_not_verified`",
            412: None,
            422: "`exceeds_ceiling`, `invalid_policy`, `invalid_notify`, `unadopted_open_statement`, `last_admin`, "
            "and `iam_refused` "
            "(IAM's refusal of the rendered documents); nothing was stored",
        },
    ),
)
def put_policy(
    role: str, body: Annotated[RolePolicy, Body()], dry_run: Annotated[bool, Query()] = False
) -> PolicyChangeResult:
    change = roles.change_policy(
        deps(),
        caller_of(router),
        access.resolve_role(deps(), role),
        body,
        dry_run=dry_run,
        if_match=router.current_event.headers.get("If-Match"),
    )
    return PolicyChangeResult(
        policy=change.policy.model_dump(mode="json", exclude_defaults=True),
        dry_run=not change.applied,
        trust_policy_before=change.before,
        trust_policy_after=change.after,
        revoked_requests=[RequestView.of(r) for r in change.revoked],
        version=change.version,
    )


@router.post(
    "/roles/<role>/sync",
    summary="Re-render the role's trust policy now",
    responses=documented(
        200,
        "whether the trust policy changed, and what it holds",
        {**_ROLE_ERRORS, 409: "`trust_policy_full`, `session_guard_full`, `sync_not_verified`"},
    ),
)
def sync(role: str) -> SyncOutcome:
    result = roles.sync_now(deps(), caller_of(router), access.resolve_role(deps(), role))
    return SyncOutcome(
        changed=result.changed,
        trust_policy=result.after,
        trust_policy_chars=result.size,
        trust_policy_quota=result.quota,
    )


@router.post(
    "/roles/<role>/revoke",
    summary="End everything one person holds on the role: active grants end now, pending extensions are cancelled",
    responses=documented(
        200,
        "what ended and what was cancelled",
        {
            **_ROLE_ERRORS,
            404: "`not_found`: no such role, or the person holds nothing on it",
            409: "`session_guard_full`, `sync_not_verified`",
            503: None,
        },
    ),
)
def revoke_person(role: str, body: Annotated[RevokePersonBody, Body()]) -> RevocationResult:
    role_arn = access.resolve_role(deps(), role)
    reason = (body.reason or "").strip() or None
    revocation = roles.revoke_person(deps(), caller_of(router), role_arn, body.principal, reason)
    return RevocationResult(
        role_arn=revocation.role_arn,
        person=revocation.person,
        ended=[RequestView.of(r) for r in revocation.ended],
        cancelled=[RequestView.of(r) for r in revocation.cancelled],
        was_until=revocation.was_until,
    )
