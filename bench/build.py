"""`sam build` artifacts: where they are, how long building takes, how big each function and the layer is,
and a copy of the layer this machine can import (the build targets arm64; this machine may not be)."""

from __future__ import annotations

import compileall
import io
import os
import py_compile
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYER = "TrustGateLayer"
# What the python3.13 Lambda runtime already has on its path: a layer copy of these shadows the runtime's.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")


@dataclass
class Build:
    directory: Path
    seconds: float | None  # None: an existing build was reused
    reused: bool


def sam_executable() -> str | None:
    """`$SAM` if set, else the project's SAM CLI (`make sam-venv`), else one on PATH."""
    if os.environ.get("SAM"):
        return os.environ["SAM"]
    project = ROOT / ".venv-sam" / "bin" / "sam"
    return str(project) if project.exists() else shutil.which("sam")


def python313_dir() -> str | None:
    """`sam build` needs a python3.13 on PATH matching the runtime: this interpreter's own directory first
    (a pyenv shim on PATH can hang or pick another version, as the Makefile notes)."""
    base = Path(getattr(sys, "_base_executable", sys.executable))
    if base.name.startswith("python3.13"):
        return str(base.parent)
    found = shutil.which("python3.13")
    return str(Path(found).parent) if found else None


def existing_build() -> Path | None:
    directory = ROOT / ".aws-sam" / "build"
    return directory if (directory / LAYER).is_dir() else None


def sam_build(target: Path, timeout: float) -> Build:
    """Build every function and the layer into `target`, timing it."""
    sam = sam_executable()
    if sam is None:
        raise RuntimeError("no SAM CLI: run `make sam-venv`")
    env = dict(os.environ, SAM_CLI_TELEMETRY="0")
    python_dir = python313_dir()
    if python_dir:
        env["PATH"] = f"{python_dir}{os.pathsep}{env.get('PATH', '')}"
    started = time.perf_counter()
    completed = subprocess.run(  # noqa: S603 - our own SAM CLI with fixed arguments
        [sam, "build", "--build-dir", str(target), "--parallel"],
        cwd=ROOT,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"sam build failed ({completed.returncode}): {(completed.stdout + completed.stderr)[-1500:]}"
        )
    return Build(target, time.perf_counter() - started, reused=False)


def tree_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def zipped_bytes(path: Path) -> int:
    """The deployment package size: what `sam deploy` uploads (deflated zip of the directory)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(path.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(path))
    return buffer.tell()


def _native_packages(layer_python: Path) -> set[str]:
    """Top-level packages of the layer that carry compiled extensions (built for the runtime's platform)."""
    return {so.relative_to(layer_python).parts[0] for so in layer_python.rglob("*.so")}


def _distribution_version(layer_python: Path, package: str) -> str | None:
    for info in layer_python.glob("*.dist-info"):
        top_level = info / "top_level.txt"
        names = top_level.read_text().split() if top_level.exists() else [info.name.split("-")[0]]
        if package in names or info.name.split("-")[0].lower().replace("_", "-") == package.replace("_", "-"):
            return info.name[: -len(".dist-info")].split("-", 1)[1]
    return None


def importable_layer(build: Path, target: Path) -> tuple[Path, list[str]]:
    """A copy of the built layer with its compiled extensions replaced by this machine's build of the same
    version (from the bench's own environment), compiled if the build compiled it. The rest is as built."""
    source = build / LAYER / "python"
    shutil.copytree(source, target, symlinks=True)
    swapped: list[str] = []
    for package in sorted(_native_packages(source)):
        if sys.platform == "linux" and not any(source.joinpath(package).rglob("*aarch64*.so")):
            continue  # already built for a platform this machine runs
        wanted = _distribution_version(source, package)
        try:
            # The distribution's name may differ from the import name (google-re2 installs `re2`).
            distribution = metadata.packages_distributions().get(package, [package.replace("_", "-")])[0]
            installed = metadata.version(distribution)
        except metadata.PackageNotFoundError as error:
            raise RuntimeError(f"cannot emulate the layer here: {package} is not installed for this machine") from error
        if wanted and wanted != installed:
            raise RuntimeError(f"cannot emulate the layer here: layer has {package} {wanted}, this machine {installed}")
        spec_dir = _package_dir(package)
        shutil.rmtree(target / package)
        shutil.copytree(spec_dir, target / package, ignore=shutil.ignore_patterns("__pycache__"))
        if any(source.joinpath(package).rglob("*.pyc")):  # the build compiled this package: so do we
            compileall.compile_dir(
                target / package, quiet=1, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
            )
        swapped.append(package)
    return target, swapped


def is_packaged_well(layer: Path) -> bool:
    """True when the layer carries no copy of the runtime's packages and ships its bytecode."""
    shadows = any((layer / name).exists() or (layer / f"{name}.py").exists() for name in RUNTIME_PACKAGES)
    return not shadows and any(layer.joinpath("trustgate").rglob("*.pyc"))


def fixed_layer(layer: Path, target: Path) -> tuple[Path, list[str]]:
    """The recommended packaging: no copies of runtime packages, and bytecode compiled in (unchecked-hash,
    because a zip does not keep the sources' mtimes that timestamp-checked .pyc files depend on)."""
    shutil.copytree(layer, target, symlinks=True)
    removed = []
    for name in RUNTIME_PACKAGES:
        for path in [target / name, target / f"{name}.py", *target.glob(f"{name}-*.dist-info")]:
            if path.is_dir():
                shutil.rmtree(path)
                removed.append(path.name)
            elif path.exists():
                path.unlink()
                removed.append(path.name)
    compileall.compile_dir(target, quiet=1, workers=0, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    return target, sorted(set(removed))


def runtime_dir(target: Path) -> Path:
    """What the Lambda runtime puts on sys.path (boto3 and its dependencies, with bytecode), as links."""
    target.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_PACKAGES:
        path = _package_dir(name)
        (target / path.name).symlink_to(path)
    return target


def _package_dir(name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"{name} is not installed in the bench's environment")
    origin = Path(spec.origin)
    return origin.parent if origin.name == "__init__.py" else origin
