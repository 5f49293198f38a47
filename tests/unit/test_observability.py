"""Metrics: counted in Lambda, silent where they are disabled (the local stack, the bench)."""

from __future__ import annotations

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
