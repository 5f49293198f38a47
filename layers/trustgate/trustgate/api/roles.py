"""Admin routes: managed roles, their live trust policies, their policies, and a manual sync."""

from __future__ import annotations

import re
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, ConfigDict, Field

from trustgate import admin, service
from trustgate.api.common import caller_of, deps, documented
from trustgate.errors import ForbiddenError, ValidationError
from trustgate.identity import caller_for_arn, switch_role_url
from trustgate.models import RequestView, RolePolicy, UtcDatetime

router = Router()


class RoleSummary(BaseModel):
    role_arn: str
    mode: str
    active_grants: int
    trust_policy_chars: int
    trust_policy_quota: int
    switch_url: str = Field(description="the console's Switch Role link (what `trustgate switch-url` prints)")


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
    version: int | None = Field(
        default=None, description="the stored policy's version after the change (for a dry run: the current one)"
    )


class SyncOutcome(BaseModel):
    changed: bool
    trust_policy: dict[str, Any]
    trust_policy_chars: int
    trust_policy_quota: int


class RevokePersonBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    principal: str = Field(
        min_length=1,
        max_length=2048,
        description="any ARN of the person (IAM user or role session) or their person key: "
        "iam:<account>:<user>, idc:<user>, role:<session>",
    )
    reason: str | None = Field(default=None, max_length=1000)


class RevocationResult(BaseModel):
    role_arn: str
    person: str = Field(description="the person key whose coverage ended (iam:…, idc:…, role:…)")
    ended: list[RequestView] = Field(description="the active grants that ended now (status revoked)")
    cancelled: list[RequestView] = Field(description="the pending requests (extensions) that were cancelled")
    was_until: UtcDatetime | None = Field(description="when the person's access would have ended without the revoke")


# Person keys as `identity.person_of` builds them (lower-case). A key is matched exactly, never as a pattern,
# so wildcards are refused rather than silently matching nobody.
_PERSON_KEY = re.compile(r"^(iam:\d{12}:[\w+=,.@-]+|idc:[\w+=,.@-]+|role:[\w+=,.@-]+)$")


def _checked_principal(principal: str) -> str:
    """`principal` as the service takes it: a person key (lower-cased, as keys are built), or an ARN of a person."""
    text = principal.strip()
    if text.split(":", 1)[0].lower() in ("iam", "idc", "role"):
        if not _PERSON_KEY.match(text.lower()):
            raise ValidationError(
                f"principal: {principal!r} is not a person key like iam:111122223333:alice, idc:alice or "
                "role:alice@example.com"
            )
        return text.lower()
    try:  # the same checks as for a caller: partition, allowed accounts, Identity Center trust
        caller_for_arn(text, deps().settings.caller_policy()).person  # noqa: B018 - validates
    except ForbiddenError as error:  # includes an ARN that is no person (root, other partitions)
        raise ValidationError(
            f"principal: {principal!r} is neither an IAM user or role-session ARN of this deployment nor a "
            f"person key (iam:<account>:<user>, idc:<user>, role:<session>): {error.message}"
        ) from error
    return text


_ROLE_ERRORS: dict[int, str | None] = {
    403: "`forbidden`: you are not an admin of the role",
    404: "`not_found`: the role is not one TrustGate manages",
}


def _admin_role(role: str) -> str:
    d = deps()
    role_arn = service.resolve_role(d, role)
    service.check_admin(d, caller_of(router), role_arn)
    return role_arn


@router.get(
    "/roles",
    summary="Managed roles you administer, with capacity used",
    responses=documented(200, "the roles", {403: "`forbidden`: you administer no role"}),
)
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
                switch_url=switch_role_url(arn),
            )
        )
    return RoleList(items=items)


@router.get(
    "/roles/<role>",
    summary="A role: its policy, live trust policy, capacity and active grants",
    responses=documented(200, "the role", _ROLE_ERRORS),
)
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


@router.get(
    "/roles/<role>/policy",
    summary="The role's policy (unset fields show the ceiling's defaults)",
    responses=documented(200, "the policy", _ROLE_ERRORS),
)
def get_policy(role: str) -> Response[dict[str, Any]]:
    view = admin.policy_view(deps(), _admin_role(role))
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
    change = admin.change_policy(
        deps(), caller_of(router), _admin_role(role), body, dry_run=dry_run, if_match=_if_match()
    )
    return PolicyChangeResult(
        policy=change.policy.model_dump(mode="json", exclude_defaults=True),
        dry_run=not change.applied,
        trust_policy_before=change.before,
        trust_policy_after=change.after,
        revoked_requests=[RequestView.of(r) for r in change.revoked],
        version=change.version,
    )


def _if_match() -> int | None:
    """The policy version an `If-Match` header names (the ETag GET returned); None without one, or for `*`.

    Optional, so older clients keep working; the trustgate CLI always sends it.
    """
    raw = router.current_event.get_header_value("If-Match")
    if raw is None or raw.strip() in ("", "*"):
        return None
    tag = raw.strip().removeprefix("W/").strip('"')
    if not re.fullmatch(r"[0-9]{1,12}", tag):  # ASCII digits: str.isdigit() accepts '²', which int() refuses
        raise ValidationError(
            f'If-Match: {raw[:40]!r} is not an ETag GET /roles/{{role}}/policy returned, such as "3" (its version)'
        )
    return int(tag)


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
    result = admin.sync_now(deps(), caller_of(router), _admin_role(role))
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
    role_arn = _admin_role(role)
    principal = _checked_principal(body.principal)
    reason = (body.reason or "").strip() or None
    revocation = service.revoke_person(deps(), caller_of(router), role_arn, principal, reason)
    return RevocationResult(
        role_arn=revocation.role_arn,
        person=revocation.person,
        ended=[RequestView.of(r) for r in revocation.ended],
        cancelled=[RequestView.of(r) for r in revocation.cancelled],
        was_until=revocation.was_until,
    )
