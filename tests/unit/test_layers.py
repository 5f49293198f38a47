"""Which module may import which: the pure core imports no AWS SDK and no adapter; the use cases import no
wiring (they are written against `trustgate.ports`); see docs/architecture.md."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "trustgate" / "trustgate"
ADAPTERS = {
    "store",
    "iam",
    "scheduler",
    "notify",
    "slack",
    "events",
    "workflow",
    "wiring",
    "observability",
    "throttling",
}
APP = {"service", "admin", "sync", "transitions", "standing", "link_decisions", "approval_links"}
CORE = {p.stem for p in PACKAGE.glob("*.py")} - ADAPTERS - APP - {"__init__"}


def imported(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            if node.module == "trustgate":
                names |= {f"trustgate.{alias.name}" for alias in node.names}
    return names


def test_the_layer_lists_name_modules_that_exist() -> None:
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert modules >= ADAPTERS | APP  # a renamed module must be placed again
    assert {"trust_policy", "session_guard", "coverage", "rules", "ports", "records"} <= CORE


@pytest.mark.parametrize("module", sorted(CORE))
def test_the_core_imports_no_aws_sdk_no_adapter_and_no_use_case(module: str) -> None:
    names = imported(module)
    assert not {n for n in names if n.split(".")[0] in ("boto3", "botocore", "mypy_boto3_iam")}, module
    assert not {n for n in names if n.removeprefix("trustgate.") in ADAPTERS | APP}, module


# Logging and metrics, and telling an AWS throttle from a conflict, are the adapters the use cases may still use.
APP_MAY_USE = {"observability", "throttling"}


@pytest.mark.parametrize("module", sorted(APP))
def test_the_use_cases_use_the_ports_not_the_adapters(module: str) -> None:
    names = imported(module)
    assert "boto3" not in {n.split(".")[0] for n in names}, module
    adapters = {n.removeprefix("trustgate.") for n in names} & ADAPTERS
    assert adapters <= APP_MAY_USE, (module, adapters)
