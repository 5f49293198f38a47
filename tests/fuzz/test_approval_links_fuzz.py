"""schemathesis against the approval-link routes, the one part of the API anyone may call unsigned.

The `decide` function serves no OpenAPI document (its answers are HTML pages), so the document below
describes what docs/api.md says it takes: a form or a JSON decision. It documents no statuses (`default`):
the checks that apply are no 5xx, a refusal of what violates the schema, and no change after a 4xx.
Cases aim at the real link tokens of the pending request as well as at random ones.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case

from tests.fuzz import profiles
from tests.fuzz.conftest import Fuzz
from tests.fuzz.harness import KNOWN, UNSIGNED, aim_at_known

pytestmark = pytest.mark.fuzz

_ANSWER = {
    "description": "the approval page, its result page, or a page (JSON with Accept: application/json) saying why not",
    "content": {"text/html": {}, "application/json": {}},
}
_DECISION: dict[str, Any] = {
    "type": "object",
    "required": ["decision"],
    "properties": {
        "decision": {"enum": ["approve", "deny"]},
        "comment": {"type": "string", "maxLength": 1000},
        "csrf": {"type": "string", "maxLength": 200},
        "request_id": {"type": "string", "maxLength": 80},
    },
}
DECIDE_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "TrustGate approval links (written for the fuzz tests)", "version": "1.0.0"},
    "paths": {
        "/decide/{token}": {
            "parameters": [{"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}],
            "get": {"responses": {"default": _ANSWER}},
            "post": {
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {"schema": _DECISION},
                        "application/json": {"schema": _DECISION},
                    },
                },
                "responses": {"default": _ANSWER},
            },
        }
    },
}
LINKS = schemathesis.openapi.from_dict(DECIDE_DOCUMENT, config=profiles.config(profiles.PROFILE.max_examples))
LINKS.hook("flatmap_path_parameters")(aim_at_known(KNOWN))


@LINKS.parametrize()
@settings(suppress_health_check=list(HealthCheck))
def test_approval_links_unsigned(case: Case[Any], fuzz: Fuzz) -> None:
    fuzz.run(case, UNSIGNED)
