"""The parts of the template's `AWS::Serverless::Api` the local stack enforces: its stage, its resource
policy (who may invoke which route) and its gateway responses (the error bodies API Gateway sends).

Read from template.yaml, like everything else locally: change the API there and the local stack
follows, with no second copy of the rules.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustgate_local.provision import TEMPLATE
from trustgate_local.template import Resolver, load_template, parameter_values

# Default status and x-amzn-ErrorType of the API Gateway responses the local stack can produce.
_RESPONSE_TYPES: dict[str, tuple[int, str]] = {
    "MISSING_AUTHENTICATION_TOKEN": (403, "MissingAuthenticationTokenException"),
    "INVALID_SIGNATURE": (403, "InvalidSignatureException"),
    "EXPIRED_TOKEN": (403, "ExpiredTokenException"),
    "UNRECOGNIZED_CLIENT": (403, "UnrecognizedClientException"),  # reported as INVALID_SIGNATURE
    "ACCESS_DENIED": (403, "AccessDeniedException"),
    "REQUEST_TOO_LARGE": (413, "RequestTooLargeException"),
    "DEFAULT_5XX": (502, "InternalServerErrorException"),
}


@dataclass(frozen=True)
class Caller:
    """The request's principal as the resource policy sees it (None fields: an anonymous caller)."""

    arn: str | None = None
    account: str | None = None
    organization_id: str | None = None
    source_ip: str = "127.0.0.1"

    def condition_value(self, key: str) -> str | None:
        return {
            "aws:principalorgid": self.organization_id,
            "aws:principalaccount": self.account,
            "aws:principalarn": self.arn,
            "aws:sourceip": self.source_ip,
        }.get(key.lower())


@dataclass(frozen=True)
class Statement:
    effect: str
    principals: tuple[str, ...]  # "*" or ARNs / account ids
    actions: tuple[str, ...]
    resources: tuple[str, ...]  # the part after "execute-api:/", e.g. "*/GET/decide/*"
    conditions: Mapping[str, Mapping[str, tuple[str, ...]]]
    sid: str = ""


_OPERATORS: dict[str, Callable[[str | None, tuple[str, ...]], bool]] = {
    "StringEquals": lambda v, wanted: v is not None and v in wanted,
    "StringNotEquals": lambda v, wanted: v is None or v not in wanted,
    "StringLike": lambda v, wanted: v is not None and any(fnmatch.fnmatchcase(v, w) for w in wanted),
    "StringNotLike": lambda v, wanted: v is None or not any(fnmatch.fnmatchcase(v, w) for w in wanted),
    "IpAddress": lambda v, wanted: v is not None and any(_in_network(v, w) for w in wanted),
    "NotIpAddress": lambda v, wanted: v is None or not any(_in_network(v, w) for w in wanted),
}


def _in_network(address: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


@dataclass(frozen=True)
class ResourcePolicy:
    statements: tuple[Statement, ...]

    def decide(self, caller: Caller, stage: str, method: str, path: str, api_arn: str) -> str | None:
        """None if the policy lets `caller` invoke the route, else API Gateway's refusal message.

        `api_arn` is the API's ARN (arn:aws:execute-api:region:account:api-id), for the message.
        """
        if not self.statements:  # no resource policy: IAM authentication alone decides
            return None
        resource = f"{stage}/{method}/{path.lstrip('/')}"
        allowed = False
        for statement in self.statements:
            if not _applies(statement, caller, resource):
                continue
            if statement.effect == "Deny":
                return _denied(caller, f"{api_arn}/{resource}", explicit=True)
            allowed = True
        return None if allowed else _denied(caller, f"{api_arn}/{resource}", explicit=False)


def _denied(caller: Caller, resource_arn: str, *, explicit: bool) -> str:
    who = caller.arn or "anonymous"
    tail = " with an explicit deny" if explicit else ""
    return f"User: {who} is not authorized to perform: execute-api:Invoke on resource: {resource_arn}{tail}"


def _applies(statement: Statement, caller: Caller, resource: str) -> bool:
    if "*" not in statement.principals and not any(
        p in (caller.arn, caller.account, f"arn:aws:iam::{caller.account}:root") for p in statement.principals
    ):
        return False
    if not any(fnmatch.fnmatchcase("execute-api:Invoke", a) for a in statement.actions):
        return False
    if not any(fnmatch.fnmatchcase(resource, pattern) for pattern in statement.resources):
        return False
    for operator, tests in statement.conditions.items():
        check = _OPERATORS[operator]
        if not all(check(caller.condition_value(key), wanted) for key, wanted in tests.items()):
            return False
    return True


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else (str(value),)


def _statement(raw: Mapping[str, Any]) -> Statement:
    principal = raw.get("Principal", "*")
    principals = _strings(principal.get("AWS", ())) if isinstance(principal, dict) else _strings(principal)
    resources = []
    for resource in _strings(raw.get("Resource", "*")):
        # SAM expands execute-api:/<path> to the API's ARN; the part after it is what matters here.
        resources.append(re.sub(r"^(execute-api:/|arn:[^:]+:execute-api:[^:]*:[^:]*:[^/]+/)", "", resource))
    conditions: dict[str, dict[str, tuple[str, ...]]] = {}
    for operator, tests in (raw.get("Condition") or {}).items():
        if operator not in _OPERATORS:
            # Evaluating only part of the policy would let the local stack differ silently from AWS.
            raise ValueError(
                f"the local stack cannot evaluate condition operator {operator} in the API resource policy"
            )
        conditions[operator] = {key: _strings(value) for key, value in tests.items()}
    return Statement(
        effect=str(raw.get("Effect", "Allow")),
        principals=principals,
        actions=_strings(raw.get("Action", "*")),
        resources=tuple(resources),
        conditions=conditions,
        sid=str(raw.get("Sid", "")),
    )


@dataclass(frozen=True)
class GatewayResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class GatewayResponses:
    """The template's `GatewayResponses`, rendered as API Gateway renders their mapping templates."""

    templates: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def render(self, response_type: str, message: str, request_id: str) -> GatewayResponse:
        status, error_type = _RESPONSE_TYPES[response_type]
        if response_type == "UNRECOGNIZED_CLIENT":
            response_type = "INVALID_SIGNATURE"
        fallback = "DEFAULT_5XX" if status >= 500 else "DEFAULT_4XX"
        spec = self.templates.get(response_type) or self.templates.get(fallback) or {}
        status = int(spec.get("StatusCode", status))
        template = (spec.get("ResponseTemplates") or {}).get("application/json")
        if template is None:
            body = json.dumps({"message": message})
        else:
            body = (
                template.replace("$context.error.messageString", json.dumps(message))
                .replace("$context.error.message", message)
                .replace("$context.error.responseType", response_type)
                .replace("$context.requestId", request_id)
            )
        headers = [
            ("Content-Type", "application/json"),
            ("x-amzn-ErrorType", error_type),
            ("x-amzn-RequestId", request_id),
        ]
        for name, value in ((spec.get("ResponseParameters") or {}).get("Headers") or {}).items():
            headers.append((name, str(value).strip("'")))
        return GatewayResponse(status, headers, body.encode())


@dataclass(frozen=True)
class ApiDefinition:
    stage: str
    policy: ResourcePolicy
    responses: GatewayResponses


def load_api(parameters: Mapping[str, str], pseudo: Mapping[str, str], template_path: Path = TEMPLATE) -> ApiDefinition:
    """The template's (single) `AWS::Serverless::Api`: stage, resource policy, gateway responses."""
    template = load_template(template_path)
    apis = [r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Api"]
    if len(apis) != 1:
        raise ValueError(f"the local stack serves exactly one AWS::Serverless::Api; the template has {len(apis)}")
    resolver = Resolver(template, parameter_values(template, parameters), dict(pseudo))
    properties = apis[0].get("Properties", {})
    policy = ((properties.get("Auth") or {}).get("ResourcePolicy") or {}).get("CustomStatements") or []
    return ApiDefinition(
        stage=str(resolver.resolve(properties.get("StageName", "prod"))),
        policy=ResourcePolicy(tuple(_statement(s) for s in resolver.resolve(policy))),
        responses=GatewayResponses(resolver.resolve(properties.get("GatewayResponses") or {})),
    )
