"""Measure 1: cold init of every function, as on Lambda, against a fresh interpreter doing only `import boto3`.

Each run is a fresh `python3.13 -I -S -B` (no site-packages, no bytecode written: Lambda's /var/task and /opt
are read-only, so nothing compiled during one cold start helps the next) whose path is what Lambda's is:
the function's code, the layer, then the runtime's own boto3. It imports the handler module (`app`, as the
runtime does) and so runs its module-level init, with the template's environment plus what Lambda sets
(`LAMBDA_TASK_ROOT`, `AWS_LAMBDA_FUNCTION_NAME`, the X-Ray daemon address). Tracing is as the template's
defaults make it: `Tracing: Active`, and `DetailedTracing=false`, so `POWERTOOLS_TRACE_DISABLED=true` and the
functions do not import the X-Ray SDK (to measure `DetailedTracing=true`, set its placeholder below to "false").

Layouts, each a list of path entries:
* deployed: the `sam build` artifacts (layer's compiled extensions swapped for this machine's build);
* fixed: the same layer with the runtime's packages removed and bytecode compiled in (measured only while
  the build does not already do that: layers/trustgate/Makefile now does);
* source: functions/<name> and layers/trustgate from the work tree, the dev venv's site-packages.
Runs are interleaved (baseline, then each function, round after round) so background load hits all alike.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import build as builds
from bench.results import Section, median
from trustgate_local.template import load_template

ROOT = Path(__file__).resolve().parents[1]
GOAL_RATIO = 1.3
SOURCE_FUNCTIONS = ("ApiFunction", "GrantFunction")  # measured in the fixed and source layouts too
CHILD = """\
import sys
sys.path[:0] = {paths!r}
import json, resource, time
before = resource.getrusage(resource.RUSAGE_SELF)
started = time.perf_counter()
{body}
wall = time.perf_counter() - started
after = resource.getrusage(resource.RUSAGE_SELF)
cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
# Peak RSS of this image: ru_maxrss would report the forking parent's size (it survives execve), VmHWM does not.
try:
    with open("/proc/self/status") as status:
        rss_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    rss_kb = after.ru_maxrss
print(json.dumps({{"wall": wall, "cpu": cpu, "rss_kb": rss_kb, "botocore": sys.modules["botocore"].__file__}}))
"""
BASELINE_BODY = "import boto3"
# The least any function on this layer pays as the template deploys it (DetailedTracing off: no Tracer, no X-Ray
# SDK): Powertools' Logger and Metrics and pydantic, nothing of ours.
FLOOR_BODY = (
    "import boto3, pydantic\n"
    "from aws_lambda_powertools import Logger, Metrics\n"
    "Logger(); Metrics()\n"
    "class Step(pydantic.BaseModel):\n    request_id: str\n"
)
# Placeholders for the template's references (module init reads none of them; they keep Settings valid).
PLACEHOLDERS = {
    "TABLE_NAME": "trustgate-Table",
    "MANAGED_ROLE_ARNS": "arn:aws:iam::111111111111:role/PumpCustomerAccess",
    "ORGANIZATION_ID": "o-exampleorg12",
    "ALLOWED_ACCOUNT_IDS": "",
    "BOOTSTRAP_ADMINS": "arn:aws:iam::111111111111:user/carol",
    "DEFAULT_APPROVERS": "arn:aws:iam::222222222222:user/bob",
    "MAX_DURATION": "PT12H",
    "MIN_DURATION": "PT15M",
    "DEFAULT_DURATION": "PT1H",
    "MAX_APPROVAL_WINDOW": "PT24H",
    "DEFAULT_APPROVAL_WINDOW": "PT2H",
    "TRUST_POLICY_QUOTA": "2048",
    "AWS_PARTITION": "aws",
    "EDITOR_ROLE_NAME": "",
    "POWERTOOLS_TRACE_DISABLED": "true",  # DetailedTracing's default ("false")
}


@dataclass
class Function:
    logical_id: str
    code_dir: str  # CodeUri, relative to the template
    environment: dict[str, str]
    tracing: bool


@dataclass
class Layout:
    name: str
    function_paths: dict[str, list[str]]  # logical id → sys.path entries
    baseline_paths: list[str]
    note: str = ""
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def functions() -> list[Function]:
    """Every function of template.yaml with the environment Lambda would give it."""
    template = load_template(ROOT / "template.yaml")
    globals_ = template.get("Globals", {}).get("Function", {})
    shared = globals_.get("Environment", {}).get("Variables", {})
    found = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties", {})
        variables = {**shared, **props.get("Environment", {}).get("Variables", {})}
        environment = {name: _placeholder(name, value) for name, value in variables.items()}
        tracing = props.get("Tracing", globals_.get("Tracing", "PassThrough")) == "Active"
        found.append(Function(logical_id, props["CodeUri"].rstrip("/"), environment, tracing))
    return found


def _placeholder(name: str, value: Any) -> str:
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    if name in PLACEHOLDERS:
        return PLACEHOLDERS[name]
    if name.endswith("_ARN"):
        return f"arn:aws:local:us-east-1:111111111111:{name.lower()}"
    return f"placeholder-{name.lower()}"


def lambda_environment(function: Function) -> dict[str, str]:
    """What the Lambda service sets, plus the function's own variables; nothing from this shell."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": f"trustgate-{function.logical_id}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "LAMBDA_TASK_ROOT": str(ROOT / function.code_dir),
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "_HANDLER": "app.lambda_handler",
        "AWS_ACCESS_KEY_ID": "placeholder",
        "AWS_SECRET_ACCESS_KEY": "placeholder",
        "AWS_SESSION_TOKEN": "placeholder",
    }
    if function.tracing:
        env |= {"AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000", "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR"}
    else:
        env["POWERTOOLS_TRACE_DISABLED"] = "true"
    return env | function.environment


def run_child(paths: list[str], body: str, env: dict[str, str], extra_flags: tuple[str, ...] = ()) -> dict[str, Any]:
    started = time.perf_counter()
    completed = subprocess.run(  # noqa: S603 - this interpreter, fixed flags, our own script
        [sys.executable, "-I", "-S", "-B", *extra_flags, "-c", CHILD.format(paths=paths, body=body)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"cold-init child failed:\n{completed.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    result["process_wall"] = time.perf_counter() - started
    result["stderr"] = completed.stderr
    return result


def import_profile(paths: list[str], env: dict[str, str], body: str = "import app") -> dict[str, float]:
    """Milliseconds of import (module bodies included) per top-level package, beyond what `import boto3` loads."""
    child = run_child(paths, f"import boto3\n{body}", env, ("-X", "importtime"))
    rows = []
    for line in child["stderr"].splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        self_us, _, name = line.split(":", 1)[1].split("|")
        rows.append((int(self_us), name.rstrip()[1:]))
    first_after_boto3 = next(i for i, (_, name) in enumerate(rows) if name == "boto3") + 1
    totals: Counter[str] = Counter()
    for self_us, name in rows[first_after_boto3:]:
        top = name.strip().split(".")[0]
        totals["(handler module)" if top == "app" else top] += self_us
    return {name: round(us / 1000, 1) for name, us in totals.most_common(12)}


def _site_packages() -> str:
    return sysconfig.get_paths()["purelib"]


def layouts(scratch: Path, quick: bool, section: Section) -> list[Layout]:
    """The layouts to measure: deployed and fixed need a `sam build`; source always works."""
    fns = functions()
    site = _site_packages()
    source = Layout(
        "source",
        {f.logical_id: [str(ROOT / f.code_dir), str(ROOT / "layers" / "trustgate"), site] for f in fns},
        [site],
        note="work tree + dev venv (bytecode cached)",
    )
    build = _build(scratch, quick, section)
    if build is None:
        return [source]
    runtime = builds.runtime_dir(scratch / "runtime")
    layer, swapped = builds.importable_layer(build.directory, scratch / "layer-deployed")
    section.details["layer_emulation"] = {"native_packages_swapped_for_this_machine": swapped}
    code = {f.logical_id: str(build.directory / f.logical_id) for f in fns}
    deployed = Layout(
        "deployed",
        {f.logical_id: [code[f.logical_id], str(layer), str(runtime)] for f in fns},
        [str(runtime)],
        note="sam build output as Lambda loads it",
    )
    if quick:  # the smoke exercises the layout the goal is judged on, and nothing else
        return [deployed]
    if builds.is_packaged_well(layer):
        section.details["layer_emulation"]["fixed"] = (
            "skipped: the build already ships bytecode and no runtime packages"
        )
        return [deployed, source]
    fixed, removed = builds.fixed_layer(layer, scratch / "layer-fixed")
    section.details["layer_emulation"]["fixed_removes"] = removed
    return [
        deployed,
        Layout(
            "fixed",
            {f.logical_id: [code[f.logical_id], str(fixed), str(runtime)] for f in fns},
            [str(runtime)],
            note="layer without runtime packages, bytecode compiled in",
        ),
        source,
    ]


def _build(scratch: Path, quick: bool, section: Section) -> builds.Build | None:
    existing = builds.existing_build()
    if quick:
        if existing is None:
            section.details["build"] = "skipped in quick mode: no .aws-sam/build (run `make build`)"
            return None
        section.details["build"] = f"reused {existing}"
        return builds.Build(existing, None, reused=True)
    try:
        build = builds.sam_build(scratch / "build", timeout=900)
    except Exception as error:  # no SAM CLI or no python3.13: measure the source layout only, and say so
        section.details["build"] = f"sam build failed, deployed layouts skipped: {error}"
        return None
    section.details["build"] = {"directory": str(build.directory), "seconds": round(build.seconds or 0, 1)}
    section.add("sam build (all functions + layer)", round(build.seconds or 0, 1), "s")
    return build


def artifact_sizes(section: Section, build_dir: Path, zipped: bool) -> None:
    for path in sorted(p for p in build_dir.iterdir() if p.is_dir()):
        unpacked = builds.tree_bytes(path)
        note = ""
        if zipped:
            note = f"zip {builds.zipped_bytes(path) / 1024:,.0f} KiB"
        section.add(f"artifact {path.name} (unzipped)", round(unpacked / 1024, 1), "KiB", note=note)


def run(quick: bool) -> Section:
    section = Section("cold init")
    rounds = 3 if quick else 15
    fns = functions()
    with tempfile.TemporaryDirectory(prefix="trustgate-bench-") as tmp:
        scratch = Path(tmp)
        chosen = layouts(scratch, quick, section)
        build_dir = next(
            (Path(p[0]).parent for lay in chosen if lay.name == "deployed" for p in lay.function_paths.values()), None
        )
        if build_dir is not None:
            artifact_sizes(section, build_dir, zipped=not quick)
        measured = [f for f in fns if not quick or f.logical_id == "ApiFunction"]
        env_of = {f.logical_id: lambda_environment(f) for f in fns}
        baseline_env = lambda_environment(fns[0]) if fns else {}
        baseline: list[dict[str, Any]] = []
        floors: dict[str, list[dict[str, Any]]] = {lay.name: [] for lay in chosen}
        for _ in range(rounds):
            baseline.append(run_child(chosen[0].baseline_paths, BASELINE_BODY, baseline_env))
            for layout in chosen:
                # The floor needs Powertools and pydantic: the layer's (function paths minus the function dir).
                layer_paths = next(iter(layout.function_paths.values()))[1:]
                floors[layout.name].append(run_child(layer_paths, FLOOR_BODY, env_of[fns[0].logical_id]))
                for function in measured:
                    if layout.name != "deployed" and function.logical_id not in SOURCE_FUNCTIONS:
                        continue  # the other layouts for two functions only: they explain, the goal is judged above
                    sample = run_child(
                        layout.function_paths[function.logical_id], "import app", env_of[function.logical_id]
                    )
                    layout.samples.setdefault(function.logical_id, []).append(sample)
        _report(section, chosen, baseline, floors)
        if not quick:
            # Profile what Lambda would run once the packaging is right: the fixed layout, else the deployed one.
            names = [layout.name for layout in chosen]
            primary = chosen[names.index("fixed")] if "fixed" in names else chosen[0]
            section.details["import_profile_ms"] = {
                f.logical_id: import_profile(primary.function_paths[f.logical_id], env_of[f.logical_id])
                for f in measured
                if f.logical_id in ("ApiFunction", "GrantFunction")
            }
    return section


def _report(
    section: Section, chosen: list[Layout], baseline: list[dict[str, Any]], floors: dict[str, list[dict[str, Any]]]
) -> None:
    base_ms = median([s["wall"] for s in baseline]) * 1000
    section.details["baseline_import_boto3"] = _summary(baseline)
    section.add(
        "baseline: import boto3 (runtime only)",
        round(base_ms, 1),
        "ms",
        note=f"peak RSS {median([s['rss_kb'] for s in baseline]) / 1024:.1f} MiB",
    )
    goal_layout = chosen[0].name  # deployed when a build exists: the goal is about what Lambda runs
    for layout in chosen:
        floor = floors[layout.name]
        section.details[f"floor_{layout.name}"] = _summary(floor)
        section.add(
            f"[{layout.name}] dependency floor (boto3+pydantic+Powertools, no TrustGate)",
            round(median([s["wall"] for s in floor]) * 1000, 1),
            "ms",
            baseline=round(base_ms, 1),
            baseline_label="import boto3",
        )
        for logical_id, samples in layout.samples.items():
            ms = median([s["wall"] for s in samples]) * 1000
            rss = median([s["rss_kb"] for s in samples]) / 1024
            is_goal = layout.name == goal_layout
            section.details.setdefault("per_layout", {}).setdefault(layout.name, {})[logical_id] = _summary(samples)
            section.add(
                f"[{layout.name}] {logical_id} init",
                round(ms, 1),
                "ms",
                baseline=round(base_ms, 1),
                baseline_label="import boto3",
                goal=f"<= {GOAL_RATIO}x" if is_goal else "",
                met=(ms / base_ms <= GOAL_RATIO) if is_goal else None,
                note=f"peak RSS {rss:.1f} MiB; cpu {median([s['cpu'] for s in samples]) * 1000:.0f} ms; {layout.note}",
            )


def _summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "runs": len(samples),
        "wall_ms_median": round(median([s["wall"] for s in samples]) * 1000, 1),
        "cpu_ms_median": round(median([s["cpu"] for s in samples]) * 1000, 1),
        "process_ms_median": round(median([s["process_wall"] for s in samples]) * 1000, 1),
        "peak_rss_mib_median": round(median([s["rss_kb"] for s in samples]) / 1024, 1),
        "botocore_from": samples[0]["botocore"] if samples else "",
    }
