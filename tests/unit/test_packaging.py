"""pyproject.toml is truthful: it ships every package and declares what they import (issue 15, section 5)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from fnmatch import fnmatch
from importlib.metadata import packages_distributions, requires
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
FIND = PROJECT["tool"]["setuptools"]["packages"]["find"]
SHIPPED = {
    "trustgate": ROOT / "layers" / "trustgate" / "trustgate",
    "trustgate_local": ROOT / "local" / "trustgate_local",
    "bench": ROOT / "bench",
}
FIRST_PARTY = {*SHIPPED, "trustgate_cli"}  # the CLI is a distribution of its own, installed from ./cli


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _sources() -> list[Path]:
    return [path for folder in SHIPPED.values() for path in sorted(folder.rglob("*.py"))]


def _runtime_imports(path: Path) -> set[str]:
    """Top-level modules the file imports, leaving out `if TYPE_CHECKING:` blocks (stubs only)."""
    tree = ast.parse(path.read_text())
    type_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for statement in block.body
        for node in ast.walk(statement)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_every_package_and_subpackage_is_shipped() -> None:
    packages = {
        ".".join((top, *init.parent.relative_to(folder).parts))
        for top, folder in SHIPPED.items()
        for init in folder.rglob("__init__.py")
    }
    assert "trustgate.api" in packages
    missed = {p for p in packages if not any(fnmatch(p, pattern) for pattern in FIND["include"])}
    assert missed == set()
    wheres = {str(folder.parent.relative_to(ROOT)) for folder in SHIPPED.values()}
    assert wheres == set(FIND["where"])


def test_no_package_data_names_files_that_do_not_exist() -> None:
    for package, patterns in PROJECT["tool"]["setuptools"].get("package-data", {}).items():
        for pattern in patterns:
            assert list(SHIPPED[package].glob(pattern)), f"{package}: {pattern} matches no file"


def test_every_third_party_import_is_a_declared_dependency() -> None:
    declared = {_name(r) for r in PROJECT["project"]["dependencies"]}
    # What a declared distribution brings with it (pydantic brings pydantic_core) counts as declared.
    brought = {_name(r) for d in declared for r in requires(d) or () if "extra ==" not in r}
    distributions = packages_distributions()
    undeclared: dict[str, set[str]] = {}
    for path in _sources():
        for module in _runtime_imports(path) - FIRST_PARTY - set(sys.stdlib_module_names):
            names = {_name(d) for d in distributions.get(module, [module])}
            if not names & (declared | brought):
                undeclared.setdefault(module, set()).add(str(path.relative_to(ROOT)))
    assert undeclared == {}


def test_dependencies_hold_the_pinned_versions_the_tests_run() -> None:
    pins = {}
    for requirements in ("requirements-dev.txt", "layers/trustgate/requirements.txt"):
        for line in (ROOT / requirements).read_text().splitlines():
            if match := re.match(r"([A-Za-z0-9_.\[\]-]+)==([\w.]+)", line):
                pins[_name(match[1])] = match[2]
    for requirement in PROJECT["project"]["dependencies"]:
        name = _name(requirement)
        assert name in pins, f"{name} is declared but pinned nowhere"
        lower = re.search(r">=([\w.]+)", requirement)
        upper = re.search(r"<([\w.]+)", requirement)
        assert lower, f"{requirement}: a lower bound"
        assert upper, f"{requirement}: an upper bound"
        assert _version(lower[1]) <= _version(pins[name]) < _version(upper[1]), requirement


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))
