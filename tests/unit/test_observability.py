"""Metrics: counted in Lambda, silent where they are disabled (the local stack, the bench). Tracing: the X-Ray SDK
only with DetailedTracing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from trustgate.adapters import observability

pytestmark = pytest.mark.unit


def test_disabled_metrics_print_nothing_however_many_are_counted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    for _ in range(250):  # Powertools prints a set on its own once a metric holds 100 values
        observability.count("SyncRounds")

    assert capsys.readouterr().out == ""


def test_enabled_metrics_are_collected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    observability.metrics.metric_set.clear()

    observability.count("SyncRounds")

    assert observability.metrics.metric_set["SyncRounds"]["Value"] == [1.0]
    observability.metrics.metric_set.clear()


def _imports_after_init(trace_disabled: str) -> tuple[str, bool]:
    """The tracer's type and whether the X-Ray SDK was imported, in a fresh interpreter as in Lambda."""
    code = (
        "import sys\n"
        "from trustgate.adapters.observability import tracer\n"
        "print(type(tracer).__name__, 'aws_xray_sdk' in sys.modules)"
    )
    env = {**os.environ, "POWERTOOLS_TRACE_DISABLED": trace_disabled, "LAMBDA_TASK_ROOT": "/var/task"}
    answer = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return answer[0], answer[1] == "True"


def test_without_detailed_tracing_the_xray_sdk_is_never_imported() -> None:
    assert _imports_after_init("true") == ("Untraced", False)


def test_detailed_tracing_uses_powertools_tracer() -> None:
    assert _imports_after_init("false") == ("Tracer", True)


def test_untraced_handlers_run_as_they_are() -> None:
    def handler(event: dict[str, object], context: object) -> dict[str, object]:
        return event

    untraced = observability.Untraced()
    assert untraced.capture_lambda_handler(handler) is handler
    assert untraced.capture_lambda_handler(capture_response=False)(handler) is handler
