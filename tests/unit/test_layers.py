"""Which layer may import which (docs/architecture.md, "Code layers"): the folders of `trustgate` are the layers.

* core: imports no AWS SDK, no adapter, no use case, no route (the pure rules and renderings);
* app: the use cases, against `trustgate.core.ports`; of the adapters only logs and metrics (`observability`)
  and "is this error a throttle?" (`throttling`); never boto3 or botocore;
* adapters: the core and each other, never a use case or a route;
* api: anything but `wiring`; only the entry points (functions/, the local stack, tests, the bench) build it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "trustgate" / "trustgate"
LAYERS = ("core", "app", "adapters", "api")
AWS_SDK = ("boto3", "botocore", "mypy_boto3_iam")
APP_MAY_USE = {"trustgate.adapters.observability", "trustgate.adapters.throttling"}


def modules(layer: str) -> list[str]:
    return sorted(p.stem for p in (PACKAGE / layer).glob("*.py") if p.stem != "__init__")


def imported(path: Path) -> set[str]:
    """Every module `path` imports, `from trustgate.app import sync` counted as `trustgate.app.sync`."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            if node.module in ("trustgate", *(f"trustgate.{layer}" for layer in LAYERS)):
                names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def layer_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "trustgate" and parts[1] in LAYERS else None


def test_every_module_is_in_a_layer() -> None:
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert loose == [], "put each module in core/, app/, adapters/ or api/"
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(LAYERS)
    assert {"trust_policy", "session_guard", "coverage", "rules", "ports", "records"} <= set(modules("core"))
    assert {"wiring", "store", "iam"} <= set(modules("adapters"))


@pytest.mark.parametrize("module", modules("core"))
def test_the_core_imports_no_aws_sdk_and_nothing_outside_the_core(module: str) -> None:
    names = imported(PACKAGE / "core" / f"{module}.py")
    assert not {n for n in names if n.split(".")[0] in AWS_SDK}, module
    assert {layer_of(n) for n in names} <= {None, "core"}, (module, sorted(names))


@pytest.mark.parametrize("module", modules("app"))
def test_the_use_cases_use_the_ports_not_the_adapters(module: str) -> None:
    names = imported(PACKAGE / "app" / f"{module}.py")
    assert not {n for n in names if n.split(".")[0] in AWS_SDK}, module
    adapters = {n for n in names if layer_of(n) == "adapters"}
    assert adapters <= APP_MAY_USE, (module, adapters)
    assert "api" not in {layer_of(n) for n in names}, module


@pytest.mark.parametrize("module", modules("adapters"))
def test_the_adapters_use_no_use_case_and_no_route(module: str) -> None:
    names = imported(PACKAGE / "adapters" / f"{module}.py")
    assert {layer_of(n) for n in names} <= {None, "core", "adapters"}, (module, sorted(names))


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_entry_points_import_the_wiring(path: Path) -> None:
    if path.name == "wiring.py":
        return
    assert "trustgate.adapters.wiring" not in imported(path), "take ports.Dependencies from the entry point instead"


def test_the_entry_points_wire_the_routes() -> None:
    for function in ("api", "decide"):
        assert "trustgate.adapters.wiring" in imported(ROOT / "functions" / function / "app.py"), function
