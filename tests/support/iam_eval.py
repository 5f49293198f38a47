"""An independent IAM policy evaluator for the tests: AWS's decision, not TrustGate's idea of it.

The cases go, all at once, to `node tests/iam_eval/evaluate.mjs`, which evaluates them with the npm package
`@cloud-copilot/iam-simulate` (AGPL-3.0; a test-time tool only, never part of the Lambda layer). Its
node_modules come from `make node-deps` (or `npm ci --prefix tests/iam_eval`).

Nothing is derived from the principal: give every condition key a policy reads (aws:username, aws:userid,
aws:PrincipalArn, aws:CurrentTime, aws:TokenIssueTime, sts:RoleSessionName, ...) in `context`. A condition on
an absent key, or a policy variable naming one, does not match, as in AWS.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
EVAL_DIR: Final = REPO_ROOT / "tests" / "iam_eval"
SCRIPT: Final = EVAL_DIR / "evaluate.mjs"
LIBRARY: Final = EVAL_DIR / "node_modules" / "@cloud-copilot" / "iam-simulate" / "package.json"
INSTALL_HINT: Final = "run `make test` or `npm ci --prefix tests/iam_eval`"

ALLOWED: Final = "Allowed"
IMPLICITLY_DENIED: Final = "ImplicitlyDenied"
EXPLICITLY_DENIED: Final = "ExplicitlyDenied"
DECISIONS: Final = frozenset({ALLOWED, IMPLICITLY_DENIED, EXPLICITLY_DENIED})

type Policy = Mapping[str, Any]
type ContextValue = str | Sequence[str]


@dataclass(frozen=True)
class IamCase:
    """One request: `principal` calls `action` on `resource`, under these policies and this request context.

    `resource_policy` is the resource's policy (for sts:AssumeRole, the role's trust policy).
    `resource_account` owns the resource; None means the caller's own account.
    """

    id: str
    principal: str
    action: str
    resource: str
    identity_policies: Sequence[Policy] = ()
    resource_policy: Policy | None = None
    resource_account: str | None = None
    context: Mapping[str, ContextValue] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "principal": self.principal,
            "action": self.action,
            "resource": self.resource,
            "identity_policies": list(self.identity_policies),
            "resource_policy": self.resource_policy,
            "resource_account": self.resource_account,
            "context": {key: value if isinstance(value, str) else list(value) for key, value in self.context.items()},
        }


# The caller's own account lets them call AssumeRole (needed across accounts): the trust policy decides.
MAY_ASSUME: Final = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
}


def assume_role(
    case_id: str, principal: str, role_arn: str, trust_policy: Policy, context: Mapping[str, ContextValue]
) -> IamCase:
    """`principal` (allowed AssumeRole by its own account) calls AssumeRole on `role_arn`, whose trust policy
    alone decides, with this request context."""
    return IamCase(
        id=case_id,
        principal=principal,
        action="sts:AssumeRole",
        resource=role_arn,
        identity_policies=[MAY_ASSUME],
        resource_policy=trust_policy,
        resource_account=role_arn.split(":")[4],
        context=context,
    )


def _jsonable(value: object) -> object:
    """Mappings and sequences that json does not know natively (e.g. MappingProxyType) as dicts and lists."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise RuntimeError(
            f"the IAM evaluator needs Node.js (`node` is not on PATH); install Node 20+, then {INSTALL_HINT}"
        )
    if not LIBRARY.is_file():
        raise RuntimeError(f"the IAM evaluator's node_modules are missing ({LIBRARY.parent} not found): {INSTALL_HINT}")
    return node


def evaluate(cases: Sequence[IamCase], *, timeout: float = 600.0) -> list[str]:
    """AWS's decision for each case, in order: "Allowed", "ImplicitlyDenied" or "ExplicitlyDenied".

    All cases are evaluated by one node process. Raises RuntimeError if node or the library is missing, or if
    any case could not be evaluated (invalid policy, unknown action, a mistyped context key, ...).
    """
    if not cases:
        return []
    ids = [case.id for case in cases]
    if len(set(ids)) != len(ids):
        raise ValueError("IamCase ids must be unique within one evaluate() call")
    payload = json.dumps([case.to_json() for case in cases], default=_jsonable)
    completed = subprocess.run(
        [_node(), str(SCRIPT)],
        input=payload,
        capture_output=True,
        text=True,
        cwd=EVAL_DIR,
        env={**os.environ, "TZ": "UTC"},
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the IAM evaluator exited with {completed.returncode}: {completed.stderr.strip()}")
    results: list[dict[str, Any]] = json.loads(completed.stdout)
    if [result.get("id") for result in results] != ids:
        raise RuntimeError("the IAM evaluator returned results that do not match the cases, one for one")
    failures = [f"{result['id']}: {result['error']}" for result in results if result.get("error") is not None]
    if failures:
        raise RuntimeError("the IAM evaluator could not evaluate some cases:\n" + "\n".join(failures))
    decisions: list[str] = []
    for result in results:
        decision = result.get("decision")
        if decision not in DECISIONS:
            raise RuntimeError(f"the IAM evaluator gave case {result['id']} an unknown decision {decision!r}")
        decisions.append(str(decision))
    return decisions


def decision_for(
    principal: str,
    action: str,
    resource: str,
    *,
    identity_policies: Sequence[Policy] = (),
    resource_policy: Policy | None = None,
    resource_account: str | None = None,
    context: Mapping[str, ContextValue] | None = None,
) -> str:
    """AWS's decision for a single request (one node process per call: batch many with `evaluate`)."""
    case = IamCase(
        id="single",
        principal=principal,
        action=action,
        resource=resource,
        identity_policies=identity_policies,
        resource_policy=resource_policy,
        resource_account=resource_account,
        context=context or {},
    )
    return evaluate([case])[0]
