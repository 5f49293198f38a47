"""`python -m bench [--quick] [--out PATH] [--only measure,...]`: run the measures, print one table, write JSON.

Exit status: 0 when every measure ran (goals missed are reported in the table, not failures); 1 when the
harness itself broke somewhere (the other measures still run and are reported).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import (
    capacity,
    cold_init,
    docs,
    latency,
    lifecycle,
    load,
    machine,
    reconcile_scaling,
    warm_requests,
)
from bench.results import Row, Section, markdown, table, write_json
from bench.world import BenchWorld, bench_world

ROOT = Path(__file__).resolve().parents[1]
MEASURES = ("cold", "warm", "lifecycle", "capacity", "latency", "reconcile", "load")
DEFAULT_OUT = ROOT / "bench" / "results.json"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="a few iterations of everything: the smoke `make test` runs"
    )
    parser.add_argument("--out", type=Path, help="JSON output (default: bench/results.json; a temp file with --quick)")
    parser.add_argument("--only", default=",".join(MEASURES), help=f"comma list of {', '.join(MEASURES)}")
    parser.add_argument(
        "--update-docs",
        action="store_true",
        help="write the machine and the table into docs/performance.md (full runs)",
    )
    arguments = parser.parse_args(argv)
    unknown = set(arguments.only.split(",")) - set(MEASURES)
    if unknown:
        parser.error(f"unknown measure(s): {', '.join(sorted(unknown))}")
    return arguments


class Runner:
    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.sections: list[Section] = []
        self.failures: dict[str, str] = {}

    def run(self, name: str, measure: Callable[[], Section | None]) -> Section | None:
        print(f"… {name}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            section = measure()
        except Exception:  # one broken measure must not hide the others; the exit status reports it
            self.failures[name] = traceback.format_exc()
            print(f"!! {name} failed:\n{self.failures[name]}", file=sys.stderr, flush=True)
            return None
        if section is not None:
            section.seconds = time.perf_counter() - started
            self.sections.append(section)
        return section


def main(argv: list[str] | None = None) -> int:
    arguments = _arguments(argv)
    quick: bool = arguments.quick
    wanted = set(arguments.only.split(","))
    out: Path = arguments.out or (Path(tempfile.gettempdir()) / "trustgate-bench-quick.json" if quick else DEFAULT_OUT)
    # Handlers log at WARNING and Powertools warns that a test invocation published no metrics: not findings.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # the bench counts what it needs itself
    started = time.perf_counter()
    host = machine.describe()
    runner = Runner(quick)

    if "capacity" in wanted:
        runner.run("capacity", lambda: capacity.run(quick))
    if "cold" in wanted:
        runner.run("cold init", lambda: cold_init.run(quick))
    in_process = wanted & {"lifecycle", "warm", "reconcile"}
    if in_process:
        try:
            with bench_world() as world:
                # Lifecycle first, on a clean table; then the request loop; then thousands of seeded grants.
                if "lifecycle" in wanted:
                    runner.run("lifecycle", lambda: lifecycle.run(world, quick))
                if "warm" in wanted:
                    runner.run("warm requests", lambda: warm_requests.run(world, quick))
                if "reconcile" in wanted:
                    runner.run("reconcile", lambda: reconcile_scaling.run(world, quick))
        except Exception:
            runner.failures["moto world"] = traceback.format_exc()
    if "load" in wanted:  # a world of its own: it needs the 4,096-character quota
        runner.run("load", lambda: load.run(quick))
    if "latency" in wanted:
        section = runner.run("approval latency (local stack)", lambda: latency.run_local_stack(quick))
        if section is None and "approval latency (local stack)" not in runner.failures:
            reason = getattr(latency.run_local_stack, "failure", "unknown")
            print(f"   local stack unavailable, measuring in-process instead:\n{reason}", file=sys.stderr)

            def fallback() -> Section:
                world: BenchWorld
                with bench_world() as world:
                    return latency.run_in_process(world, quick, reason)

            runner.run("approval latency (in-process)", fallback)

    rows: list[Row] = [row for section in runner.sections for row in section.rows]
    print()
    print(table(rows))
    missed = [f"{r.section}: {r.measure}" for r in rows if r.met is False]
    print(f"\ngoals met: {sum(1 for r in rows if r.met)}, missed: {len(missed)}")
    for name in missed:
        print(f"  missed: {name}")
    payload: dict[str, Any] = {
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "mode": "quick" if quick else "full",
        "seconds": round(time.perf_counter() - started, 1),
        "machine": host | {"load_average_at_end": list(os.getloadavg())},
        "rows": [row.as_json() for row in rows],
        "details": {s.name: s.details | {"seconds": round(s.seconds, 1)} for s in runner.sections},
        "failures": runner.failures,
        "markdown": markdown(rows),
    }
    write_json(out, payload)
    print(f"\nwrote {out} in {payload['seconds']} s", file=sys.stderr)
    if arguments.update_docs and not quick:
        docs.update(payload)
        print("updated docs/performance.md", file=sys.stderr)
    if runner.failures:
        print(f"harness failures: {', '.join(runner.failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
