"""IAM behaviour moto does not model, for the tests that need it.

Real IAM refuses a trust policy naming a principal that does not exist (`MalformedPolicyDocument`, "Invalid
principal in policy"), and once a principal a trust policy names is deleted, it shows the principal's unique
id (AIDA…/AROA…) in its place. Moto accepts any ARN and keeps showing it after the deletion.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError

from tests.support.aws import MANAGEMENT, ROLE_NAME, World

_EVENT = "before-parameter-build.iam.UpdateAssumeRolePolicy"


@contextmanager
def iam_refuses_principal(world: World, arn: str) -> Iterator[None]:
    """While inside: TrustGate's writes of a trust policy naming `arn` are refused as IAM refuses a deleted one."""
    client = world.deps.roles.client_for(MANAGEMENT)

    def refuse(params: dict[str, Any], **_: Any) -> None:
        if arn in str(params.get("PolicyDocument", "")):
            message = f'Invalid principal in policy: "AWS":"{arn}"'
            raise ClientError(
                {"Error": {"Code": "MalformedPolicyDocument", "Message": message}}, "UpdateAssumeRolePolicy"
            )

    client.meta.events.register(_EVENT, refuse)
    try:
        yield
    finally:
        client.meta.events.unregister(_EVENT, refuse)


def show_as_deleted(world: World, arn: str, unique_id: str) -> None:
    """Show the role's trust policy as IAM does once `arn` was deleted: its unique id in place of the ARN."""
    document = json.dumps(world.trust_policy()).replace(f'"{arn}"', f'"{unique_id}"')
    world.session.client("iam").update_assume_role_policy(RoleName=ROLE_NAME, PolicyDocument=document)
