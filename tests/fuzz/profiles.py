"""How much the fuzz tests generate: the quick profile (part of `make test`) or the full one (`make fuzz`).

TRUSTGATE_FUZZ=quick|full picks one (quick by default). The quick profile is derandomized, so every run
sends the same cases; the full one draws new cases each run from TRUSTGATE_FUZZ_SEED (random when unset,
printed in the summary so that a failing run can be repeated exactly).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Any

import schemathesis


@dataclass(frozen=True)
class Profile:
    name: str
    max_examples: int  # generated cases per operation and kind of caller, on top of the coverage phase's
    rights_examples: int  # the same for callers the route is not for (outsider, unsigned, no rights)
    coverage: bool  # schemathesis' coverage phase: boundary values, wrong types, unexpected methods
    seed: int | None  # None: derandomized


def current() -> Profile:
    name = os.environ.get("TRUSTGATE_FUZZ", "quick")
    if name == "quick":
        return Profile("quick", max_examples=12, rights_examples=3, coverage=False, seed=None)
    if name == "full":
        seed = int(os.environ.get("TRUSTGATE_FUZZ_SEED") or random.randrange(2**32))
        return Profile("full", max_examples=50, rights_examples=10, coverage=True, seed=seed)
    raise ValueError(f"TRUSTGATE_FUZZ={name!r}: use quick or full")


PROFILE = current()


def config(max_examples: int) -> Any:
    """A schemathesis config for one test: cases in both modes (valid and schema-violating), no example
    database (a run depends on nothing left by an earlier one), no shrinking (each finding keeps the smallest
    request it saw instead), and responses never feed back into generation (they carry fresh ids)."""
    generation: dict[str, Any] = {
        "mode": "all",
        "max-examples": max_examples,
        "deterministic": PROFILE.seed is None,
        "database": "none",
        "no-shrink": True,
    }
    data: dict[str, Any] = {
        "generation": generation,
        "phases": {
            "examples": {"enabled": False},
            "coverage": {"enabled": PROFILE.coverage},
            "fuzzing": {
                "enabled": True,
                "error-feedback": {"enabled": False},
                "extra-data-sources": {"responses": False},
            },
            "stateful": {"enabled": False},
        },
        # Any 4xx refuses a schema-violating request (413 and 412 included, which schemathesis' default list
        # lacks); a 5xx is the server-error check's to report.
        "checks": {"negative_data_rejection": {"expected-statuses": ["4xx", "5xx"]}},
        "request-timeout": 30,
    }
    if PROFILE.seed is not None:
        data["seed"] = PROFILE.seed
    return schemathesis.Config.from_dict(data)
