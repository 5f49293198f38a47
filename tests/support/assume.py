"""Would AWS let an IAM user assume the managed role now? Asked of the independent IAM evaluator
(tests/support/iam_eval.py) with the trust policy IAM holds, never of TrustGate's own code."""

from __future__ import annotations

from datetime import datetime

from tests.support.aws import MALLORY, ORG_ID, ROLE_ARN, World
from tests.support.iam_eval import IamCase, assume_role, evaluate
from trustgate.core.clock import to_rfc3339


def assume(
    case_id: str, arn: str, session_name: str, trust_policy: dict[str, object], now: datetime, role_arn: str = ROLE_ARN
) -> IamCase:
    """The IAM user `arn` (long-term keys) calls AssumeRole on a managed role as `session_name`."""
    account, user = arn.split(":")[4], arn.rsplit("/", 1)[1]
    context = {
        "aws:CurrentTime": to_rfc3339(now),
        "aws:PrincipalArn": arn,
        "aws:userid": "AIDA" + user.upper().ljust(16, "X"),
        "aws:username": user,
        "sts:RoleSessionName": session_name,
    }
    if account != MALLORY.split(":")[4]:  # mallory's account is outside the organization
        context["aws:PrincipalOrgID"] = ORG_ID
    return assume_role(case_id, arn, role_arn, trust_policy, context)


def decisions(
    world: World, *cases: tuple[str, str, str], at: datetime | None = None, role_arn: str = ROLE_ARN
) -> dict[str, str]:
    """AWS's decision for each (case id, caller ARN, session name) against the trust policy IAM holds now for the
    role, at `at` (default: TrustGate's clock now)."""
    trust, now = world.trust_policy(role_arn.rsplit("/", 1)[-1]), at or world.deps.clock.now()
    built = [assume(case_id, arn, name, trust, now, role_arn) for case_id, arn, name in cases]
    return {case.id: decision for case, decision in zip(built, evaluate(built), strict=True)}
