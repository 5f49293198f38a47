"""Powertools Logger, Tracer and Metrics shared by every function (service name from the environment)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice


class Untraced:
    """Powertools' Tracer when tracing is off: Tracer imports the X-Ray SDK (and patches every library it knows)
    even when disabled, a fifth of a cold start. Lambda's own tracing (`Tracing: Active`) still records each
    invocation; the template's `DetailedTracing` turns the Tracer (a subsegment per AWS call) back on."""

    def capture_lambda_handler(
        self,
        lambda_handler: Callable[..., Any] | None = None,
        capture_response: bool | None = None,
        capture_error: bool | None = None,
    ) -> Callable[..., Any]:
        """As Tracer's (a decorator, with or without arguments), but the handler is returned as it is."""
        if lambda_handler is None:
            return lambda handler: handler
        return lambda_handler


def tracing_disabled() -> bool:
    return resolve_truthy_env_var_choice(env=os.environ.get("POWERTOOLS_TRACE_DISABLED", "false"))


logger = Logger()
tracer: Tracer | Untraced = Untraced() if tracing_disabled() else Tracer()
# The template sets the namespace; the default serves the local stack and tests, which may import this module
# before their environment is set (a namespace-less metric set cannot be flushed when it reaches 100 values).
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "TrustGate")


def count(metric: str) -> None:
    """Add one to a metric. Called after a change is committed: a metric that cannot be recorded is logged,
    never turned into an error for a change that already happened."""
    try:
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
        if is_metrics_disabled():  # the local stack, the bench: Powertools would print a set that reaches 100
            metrics.metric_set.clear()  # values even so, into the demo's output
    except Exception:
        logger.exception("could not record metric", extra={"metric": metric})
