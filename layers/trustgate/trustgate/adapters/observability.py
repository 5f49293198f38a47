"""Powertools Logger, Tracer and Metrics shared by every function (service name from the environment)."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

logger = Logger()
tracer = Tracer()
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
