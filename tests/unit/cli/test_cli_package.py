"""Issue 12, section 4: `cli/` is a package of its own (`trustgate-cli`) that declares what it imports and runs
on Python 3.10 (tests/e2e/test_cli_installed.py installs it with the machine's own python3)."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

CLI = Path(__file__).resolve().parents[3] / "cli"
PROJECT = tomllib.loads((CLI / "pyproject.toml").read_text())["project"]


def imported_top_level_modules() -> set[str]:
    names = set()
    for path in (CLI / "trustgate_cli").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_the_cli_is_its_own_distribution_for_python_3_10_and_later() -> None:
    assert PROJECT["name"] == "trustgate-cli"
    assert PROJECT["requires-python"] == ">=3.10"
    assert PROJECT["scripts"] == {"trustgate": "trustgate_cli.main:main"}


def test_the_cli_imports_only_the_standard_library_itself_and_what_it_declares() -> None:
    declared = {
        requirement.split(">")[0].split("=")[0].split("<")[0].strip() for requirement in PROJECT["dependencies"]
    }
    third_party = imported_top_level_modules() - set(sys.stdlib_module_names) - {"__future__", "trustgate_cli"}

    assert third_party == declared == {"boto3", "botocore"}  # never the server (trustgate), the local stack, bench


def test_the_repository_package_no_longer_ships_the_cli() -> None:
    root = tomllib.loads((CLI.parent / "pyproject.toml").read_text())

    assert "trustgate_cli" not in root["tool"]["setuptools"]["packages"]
    assert "scripts" not in root["project"]
