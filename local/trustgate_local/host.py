"""Run the template's Lambda handlers in-process: moto's Lambda would need Docker, which we lack.

`install(stack)` routes every invocation moto receives (Step Functions' Lambda tasks) to the real handler
module, with a Lambda-like context and the template's environment; the clockwork invokes through here too.
These handlers run concurrently, one thread per invocation. The local stack's HTTP API does not come
through here: its gateway hands each request to a worker process (`trustgate_local.workers`), one request
per process at a time, as Lambda runs one event per execution environment.
"""

from __future__ import annotations

import collections
import json
import os
import threading
import time
import traceback
from collections.abc import Callable
from types import ModuleType
from typing import Any

from moto.awslambda.models import LambdaFunction
from moto.core.responses import BaseResponse

from trustgate_local.provision import LocalFunction, Stack
from trustgate_local.runtime import LambdaContext, handler_of, load_module, new_context

__all__ = ["FunctionHost", "LambdaContext", "install", "moto_lock", "uninstall"]

# How many recent invocations `FunctionHost.invocations` keeps: a local stack runs for hours.
KEPT_INVOCATIONS = 1000


class FunctionHost:
    """Loads each function's module once and invokes its handler like Lambda would."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.modules: dict[str, ModuleType] = {}
        self.lock = threading.Lock()
        self.invocations: collections.deque[tuple[str, float]] = collections.deque(maxlen=KEPT_INVOCATIONS)
        # Powertools keeps the current HTTP event in a class attribute shared by every resolver of the
        # process (Lambda runs one invocation per process). HTTP handlers called in-process (the tests'
        # moto world) therefore take turns here; the local stack's gateway sends them to worker processes
        # instead. The workflow handlers, which hold no such state, run concurrently as Lambda would.
        self.http_turn = threading.Lock()
        self.http_functions = {route.function for route in stack.routes}
        # Told of every invocation, however it ended: the function's logical id and its seconds (the bench's timer).
        self.on_invoked: Callable[[str, float], None] | None = None

    def module(self, function: LocalFunction) -> ModuleType:
        with self.lock:
            if function.logical_id not in self.modules:
                self.modules[function.logical_id] = load_module(function)
            return self.modules[function.logical_id]

    def invoke(self, function: LocalFunction, event: Any) -> Any:
        """Call the handler; exceptions propagate as they would end a Lambda invocation."""
        started = time.perf_counter()
        try:
            handler = handler_of(self.module(function), function)
            context = new_context(function)
            self.invocations.append((function.logical_id, time.time()))
            if function.logical_id in self.http_functions:
                with self.http_turn:
                    return handler(event, context)
            return handler(event, context)
        finally:
            if self.on_invoked is not None:
                self.on_invoked(function.logical_id, time.perf_counter() - started)

    def invoke_by_arn(self, arn: str, event: Any) -> Any:
        return self.invoke(self.stack.function_by_arn(arn), event)


_host: FunctionHost | None = None
_original_invoke = LambdaFunction.invoke


def _routed_invoke(self: LambdaFunction, body: Any, request_headers: Any, response_headers: Any) -> str | bytes:
    """The seam where moto would start Docker: run the in-process handler instead."""
    if _host is None:
        return _original_invoke(self, body, request_headers, response_headers)
    event = json.loads(body) if isinstance(body, (str, bytes)) and body else (body or {})
    try:
        result = _host.invoke_by_arn(self.function_arn, event)
    except Exception as error:
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps(
            {
                "errorType": type(error).__name__,
                "errorMessage": str(error),
                "stackTrace": traceback.format_exception(error)[-3:],
            }
        )
    return json.dumps(result)


_moto_lock = threading.RLock()
moto_lock = _moto_lock  # what the local stack holds while it prunes moto's state (trustgate_local.retention)
_original_call_action = BaseResponse.call_action


def _serialized_call_action(self: BaseResponse) -> Any:
    """moto's backends are not thread-safe (DynamoDB transactions deep-copy tables that another thread
    may be writing). Serialize every AWS call, except Lambda's: an invocation runs a whole handler,
    which may wait on a role lock that another handler's calls must be free to release."""
    if getattr(self, "service_name", "") in ("lambda", "awslambda"):  # moto's Lambda responses say "awslambda"
        return _original_call_action(self)
    with _moto_lock:
        return _original_call_action(self)


def install(stack: Stack, environ: dict[str, str] | None = None) -> FunctionHost:
    """Route moto's Lambda invocations to `stack`'s handlers and give them the template's environment."""
    global _host
    os.environ.update(environ if environ is not None else stack.environment())
    from trustgate.adapters import wiring

    wiring.reset()
    _host = FunctionHost(stack)
    LambdaFunction.invoke = _routed_invoke  # type: ignore[method-assign]
    BaseResponse.call_action = _serialized_call_action  # type: ignore[method-assign]
    return _host


def uninstall() -> None:
    global _host
    _host = None
    LambdaFunction.invoke = _original_invoke  # type: ignore[method-assign]
    BaseResponse.call_action = _original_call_action  # type: ignore[method-assign]
