"""Measure 6: the reconciler's AWS calls and time per role at growing numbers of managed roles.

Each role gets 10 active grants seeded straight into the table (request items, as the store writes them)
and is created in moto IAM with the trust policy and session guard TrustGate would render for them,
so the run sees the steady state: nothing to expire, nothing to repair. `reconcile.reconcile` then runs once
with a Settings listing every role. Calls per role must not grow with the number of roles (no scans).
moto answers an index query by walking the whole table, so its time per call grows with the table; the
time TrustGate itself spends per role (total minus time inside AWS calls) is reported beside it.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

from bench.capacity import principal
from bench.counting import per_operation, per_service, seconds_in_calls
from bench.results import Section
from bench.world import BenchWorld, rewired
from trustgate.adapters import wiring
from trustgate.adapters.store import request_item
from trustgate.app import reconcile
from trustgate.app.effects import ensure_schedules
from trustgate.app.sync import span_of
from trustgate.core.coverage import coverages_of
from trustgate.core.models import AccessRequest, RequestStatus, RolePolicy
from trustgate.core.rules import effective_policy, render_spec
from trustgate.core.session_guard import GUARD_POLICY_NAME, GuardSpec, render_session_guard
from trustgate.core.trust_policy import render_trust_policy
from trustgate_local.world import VENDOR_TRUST

GRANTS_PER_ROLE = 10


def seed(bench: BenchWorld, prefix: str, roles: int) -> list[str]:
    """Create `roles` managed roles with 10 live grants each, their schedules as the Grant step makes them, through
    the uncounted observer session."""
    world = bench.world
    settings = bench.settings
    observed = wiring.Dependencies(settings, bench.observer, world.clock, world.deps.sleep)
    now = world.clock.now()
    dynamodb: Any = bench.observer.client("dynamodb")
    iam: Any = bench.observer.client("iam")
    arns = []
    batch: list[dict[str, Any]] = []
    for r in range(roles):
        name = f"{prefix}-{r:04d}"
        arn = f"arn:aws:iam::{world.stack.account}:role/{name}"
        grants = [
            AccessRequest(
                id=f"{prefix.upper()}{r:05d}{g:02d}".ljust(26, "0")[:26],
                role_arn=arn,
                principal_arn=principal(r * GRANTS_PER_ROLE + g),
                status=RequestStatus.ACTIVE,
                duration=timedelta(hours=2),
                justification="seeded by the bench",
                created_at=now - timedelta(minutes=5),
                decided_at=now - timedelta(minutes=5),
                starts_at=now - timedelta(minutes=5),
                # Within a few minutes of each other: ten grants fit the 2,048-character quota.
                expires_at=now + timedelta(hours=2, seconds=17 * g),
                approvers=[],
            )
            for g in range(GRANTS_PER_ROLE)
        ]
        keep_for = timedelta(hours=1)  # the role's MaxSessionDuration (IAM's default)
        coverages = coverages_of([span for g in grants if (span := span_of(g))], now, keep_for).kept
        spec = render_spec(effective_policy(arn, RolePolicy(), settings), coverages, settings)
        document = render_trust_policy(VENDOR_TRUST, spec, now)
        role_id = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(document))["Role"]["RoleId"]
        guard = render_session_guard(coverages, GuardSpec(role_id, keep_for), now)
        iam.put_role_policy(RoleName=name, PolicyName=GUARD_POLICY_NAME, PolicyDocument=json.dumps(guard))
        arns.append(arn)
        batch.extend({"PutRequest": {"Item": request_item(g)}} for g in grants)
        for grant in grants:  # the steady state: every grant has its expiry (and reminder) schedule
            ensure_schedules(observed, grant, grants)  # the role's active grants are these (no query per grant)
        while len(batch) >= 25:
            dynamodb.batch_write_item(RequestItems={settings.table_name: batch[:25]})
            batch = batch[25:]
    if batch:
        dynamodb.batch_write_item(RequestItems={settings.table_name: batch})
    return arns


def clear_schedules(bench: BenchWorld) -> None:
    scheduler: Any = bench.observer.client("scheduler")
    group = bench.world.stack.refs["ExpiryScheduleGroup"]
    for page in scheduler.get_paginator("list_schedules").paginate(GroupName=group):
        for schedule in page["Schedules"]:
            scheduler.delete_schedule(Name=schedule["Name"], GroupName=group)


def run(bench: BenchWorld, quick: bool) -> Section:
    section = Section("reconcile")
    scales = (10, 30) if quick else (10, 100, 1000)
    per_role_calls: dict[int, float] = {}
    for roles in scales:
        started = time.perf_counter()
        arns = seed(bench, f"bench{roles}", roles)
        seed_seconds = time.perf_counter() - started
        with rewired(bench, managed_role_arns=arns) as deps:
            bench.recorder.reset()
            started = time.perf_counter()
            report = reconcile.reconcile(deps)
            elapsed = time.perf_counter() - started
            calls = bench.recorder.reset()
        # The next scale manages other roles: their schedules must not stay behind as another deployment's would.
        clear_schedules(bench)
        problems = [r for r in report["roles"] if r.get("error") or r.get("changed") or r.get("expired")]
        if problems:
            raise RuntimeError(f"reconcile did not find the seeded steady state: {problems[:3]}")
        in_calls = seconds_in_calls(calls)
        per_role_calls[roles] = len(calls) / roles
        services = {k: round(v / roles, 2) for k, v in per_service(calls).items()}
        scans = sum(1 for c in calls if c.operation == "Scan")
        section.add(
            f"{roles} roles: AWS calls per role",
            round(len(calls) / roles, 2),
            "calls",
            baseline=round(per_role_calls[scales[0]], 2),
            baseline_label=f"at {scales[0]} roles",
            # Calls per role may only fall as roles grow: once-per-run calls (the query for decided-but-
            # undelivered requests) spread over more roles; a per-role cost that grew would be a scan.
            goal="no growth (<= 1.00x)",
            met=len(calls) / roles <= per_role_calls[scales[0]] + 1e-9 and scans == 0,
            note=", ".join(f"{k} {v:g}" for k, v in services.items()) + f"; scans {scans}",
        )
        section.add(
            f"{roles} roles: time per role",
            round(elapsed / roles * 1000, 2),
            "ms",
            note=f"of which in moto calls {in_calls / roles * 1000:.2f} ms; TrustGate's own "
            f"{(elapsed - in_calls) / roles * 1000:.2f} ms",
        )
        section.details[f"{roles}_roles"] = {
            "seed_seconds": round(seed_seconds, 1),
            "reconcile_seconds": round(elapsed, 2),
            "calls": len(calls),
            "calls_per_role_per_service": services,
            "calls_per_role_per_operation": {k: round(v / roles, 2) for k, v in per_operation(calls).items()},
            "own_ms_per_role": round((elapsed - in_calls) / roles * 1000, 3),
            "in_calls_ms_per_role": round(in_calls / roles * 1000, 3),
        }
    return section
