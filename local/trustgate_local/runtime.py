"""What Lambda's Python runtime does for a handler, shared by the in-process host and the worker processes:
import the function's module from its code directory (its INIT), and hand each invocation a context."""

from __future__ import annotations

import importlib.util
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

from trustgate_local.provision import LocalFunction


class Invoker(Protocol):
    """Runs a function's handler for one event: the in-process host, or the worker pool."""

    def invoke(self, function: LocalFunction, event: Any) -> Any: ...


@dataclass
class LambdaContext:
    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    aws_request_id: str = ""
    deadline: float = 0.0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def load_module(function: LocalFunction) -> ModuleType:
    """Import the function's handler module from its code directory, under a name of its own."""
    module_name, _ = function.handler.rsplit(".", 1)
    path = function.code_dir / f"{module_name}.py"
    spec = importlib.util.spec_from_file_location(f"trustgate_fn_{function.logical_id}", path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def handler_of(module: ModuleType, function: LocalFunction) -> Callable[[Any, LambdaContext], Any]:
    handler: Callable[[Any, LambdaContext], Any] = getattr(module, function.handler.rsplit(".", 1)[1])
    return handler


def new_context(function: LocalFunction) -> LambdaContext:
    """A fresh invocation's context; its deadline is the function's timeout from now."""
    return LambdaContext(
        function.name,
        function.arn,
        aws_request_id=str(uuid.uuid4()),
        deadline=time.monotonic() + function.timeout,
    )
