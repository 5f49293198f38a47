"""Lambda's execution environments for the API's functions: worker processes that run one request at a time.

Powertools keeps the current HTTP event in a class attribute (`BaseRouter.current_event`), shared by every
resolver of a process, so two requests served by one process at once read each other's event. Lambda never
runs two events in one execution environment, and neither does this pool: each worker process imports the
API's functions once (their INIT) and runs one invocation at a time. The gateway hands a request to an idle
worker; when every worker is busy it starts another, up to `max_workers` (then requests wait for the first
worker to come free); and it retires a worker after `recycle_after` invocations, as Lambda recycles its
environments, so nothing a handler's process accumulates outlives it.

A worker reaches the stack's moto over HTTP like any function, with the stack's environment; each request
carries the stack clock's offset, so `POST /_local/advance` moves the workers' clock too. Step Functions'
Lambda tasks and the clockwork's invocations stay in the stack's process (`trustgate_local.host`), where they
already run concurrently: those handlers keep no per-request state in class attributes.

`python -m trustgate_local.workers FD` is a worker: it serves invocations on the connection FD.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import traceback
import warnings
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from trustgate.core.clock import SystemClock, system_clock
from trustgate_local.provision import LocalFunction
from trustgate_local.runtime import handler_of, load_module, new_context

START_TIMEOUT_SECONDS = 60.0  # a worker's INIT: Python, boto3, Powertools and the handler modules


@dataclass(frozen=True)
class PoolSettings:
    """How many worker processes serve the API, and how long each lives."""

    warm: int = 2  # started with the stack and kept started
    max_workers: int = 4  # beyond this many requests at once, requests wait for a free worker
    recycle_after: int = 500  # invocations, then the worker is replaced (Lambda recycles environments too)

    def __post_init__(self) -> None:
        if not 1 <= self.warm <= self.max_workers or self.recycle_after < 1:
            raise ValueError(f"worker settings need 1 <= warm <= max_workers and recycle_after >= 1, not {self}")


class FunctionError(Exception):
    """An invocation ended in a function error: the handler raised, timed out, or its process died."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.error_message = message
        self.trace = trace or []


class _Worker:
    """One worker process and the connection to it."""

    def __init__(self, functions: list[LocalFunction], environment: dict[str, str]) -> None:
        ours, theirs = socket.socketpair()
        with theirs:
            self.process = subprocess.Popen(  # noqa: S603 - this interpreter, our own module
                [sys.executable, "-m", "trustgate_local.workers", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                env=environment,
            )
        self.connection = Connection(ours.detach())
        self.invocations = 0
        self.connection.send_bytes(json.dumps({"functions": [_described(f) for f in functions]}).encode())

    def wait_ready(self, timeout: float) -> None:
        if not self.connection.poll(timeout):
            raise FunctionError("Runtime.InitError", f"the worker did not start within {timeout:.0f} s")
        reply = self._receive()
        if "error" in reply:
            raise FunctionError("Runtime.InitError", str(reply["error"]))

    def invoke(self, function: LocalFunction, event: Any, clock_offset: timedelta) -> Any:
        """Run one invocation; a timeout or a dead process ends the worker (the caller retires it)."""
        self.invocations += 1
        request = {"function": function.logical_id, "event": event, "clock_offset": clock_offset.total_seconds()}
        try:
            self.connection.send_bytes(json.dumps(request).encode())
        except OSError as error:
            raise self._lost(f"could not reach the worker: {error}") from error
        if not self.connection.poll(function.timeout):
            self.kill()
            raise FunctionError("Sandbox.Timedout", f"Task timed out after {function.timeout:.2f} seconds")
        reply = self._receive()
        if "error" in reply:
            failure = reply["error"]
            raise FunctionError(str(failure["type"]), str(failure["message"]), list(failure.get("trace") or []))
        return reply["result"]

    def _receive(self) -> dict[str, Any]:
        try:
            reply: dict[str, Any] = json.loads(self.connection.recv_bytes())
        except (EOFError, OSError) as error:
            raise self._lost("the worker process exited") from error
        return reply

    def _lost(self, what: str) -> FunctionError:
        self.kill()
        return FunctionError("Runtime.ExitError", f"{what} (exit status {self.process.poll()})")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None and not self.connection.closed

    def close(self) -> None:
        """Let the worker finish and exit (it exits when its connection closes)."""
        if not self.connection.closed:
            self.connection.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if not self.connection.closed:
            self.connection.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


class WorkerPool:
    """Runs the API's functions in worker processes, one invocation per worker at a time.

    `invoke(function, event)` has `FunctionHost.invoke`'s contract: the handler's result, or an exception
    (here `FunctionError`) when the invocation ends in a function error.
    """

    def __init__(
        self,
        functions: list[LocalFunction],
        clock: SystemClock = system_clock,
        settings: PoolSettings | None = None,
        environment: dict[str, str] | None = None,
    ) -> None:
        self.functions = list(functions)
        self.clock = clock
        self.settings = settings or PoolSettings()
        # The stack's environment as it is now (install() has set it), plus this process's import path.
        base = dict(os.environ if environment is None else environment)
        base["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and Path(p).exists())
        base["PYTHONUNBUFFERED"] = "1"  # the handlers' log lines reach the console as they happen
        self.environment = base
        self.started = 0  # workers ever started
        self.retired = 0  # workers ended after their last invocation (recycled, timed out, or died)
        self._changed = threading.Condition()
        self._idle: list[_Worker] = []
        self._workers: set[_Worker] = set()
        self._starting = 0
        self._waiting = 0
        self._start_failure: str | None = None
        self._stopped = False

    def start(self) -> WorkerPool:
        """Start the warm workers and wait until they are ready (a handler that fails to import fails here)."""
        with self._changed:
            for _ in range(self.settings.warm):
                self._spawn()
            while self._starting:
                self._changed.wait()
            if self._start_failure is not None:
                raise RuntimeError(f"the API's worker processes did not start: {self._start_failure}")
        return self

    def invoke(self, function: LocalFunction, event: Any) -> Any:
        worker = self._acquire()
        healthy = False
        try:
            result = worker.invoke(function, event, self.clock.offset)
            healthy = True
            return result
        except FunctionError as error:
            healthy = error.error_type not in ("Sandbox.Timedout", "Runtime.ExitError")
            raise
        finally:
            self._release(worker, healthy)

    def stats(self) -> dict[str, int]:
        with self._changed:
            return {
                "workers": len(self._workers),
                "idle": len(self._idle),
                "starting": self._starting,
                "started": self.started,
                "retired": self.retired,
            }

    def pids(self) -> list[int]:
        with self._changed:
            return [w.process.pid for w in self._workers]

    def stop(self) -> None:
        """End every worker, busy or not."""
        with self._changed:
            self._stopped = True
            workers = list(self._workers)
            self._workers.clear()
            self._idle.clear()
            self._changed.notify_all()
        for worker in workers:
            worker.kill()

    # -- the pool's bookkeeping -----------------------------------------------------------------

    def _acquire(self) -> _Worker:
        with self._changed:
            self._waiting += 1
            try:
                while True:
                    if self._stopped:
                        raise FunctionError("Runtime.Unavailable", "the local stack is stopping")
                    self._drop_dead_idle()
                    if self._idle:
                        return self._idle.pop()
                    if self._start_failure is not None and not self._starting:
                        failure, self._start_failure = self._start_failure, None
                        raise FunctionError("Runtime.InitError", failure)
                    if (
                        self._waiting > self._starting
                        and len(self._workers) + self._starting < self.settings.max_workers
                    ):
                        self._spawn()
                    self._changed.wait()
            finally:
                self._waiting -= 1

    def _drop_dead_idle(self) -> None:
        """Forget idle workers that died (killed, crashed): nobody's request is lost to them (call with the lock)."""
        for worker in [w for w in self._idle if not w.alive]:
            self._idle.remove(worker)
            self._workers.discard(worker)
            threading.Thread(target=worker.kill, name="trustgate-worker-reap", daemon=True).start()

    def _release(self, worker: _Worker, healthy: bool) -> None:
        retire = not healthy or not worker.alive or worker.invocations >= self.settings.recycle_after
        with self._changed:
            if self._stopped or worker not in self._workers:
                retire = True
            elif retire:
                self._workers.discard(worker)
                self.retired += 1
                if len(self._workers) + self._starting < self.settings.warm:
                    self._spawn()  # a recycled worker's replacement, started before anyone needs it
            else:
                self._idle.append(worker)
            self._changed.notify_all()
        if retire:
            threading.Thread(target=worker.close, name="trustgate-worker-retire", daemon=True).start()

    def _spawn(self) -> None:
        """Start a worker in the background (call with the lock held); it joins the idle ones once ready."""
        self._starting += 1
        self.started += 1
        threading.Thread(target=self._start_one, name="trustgate-worker-start", daemon=True).start()

    def _start_one(self) -> None:
        worker: _Worker | None = None
        failure: str | None = None
        try:
            worker = _Worker(self.functions, self.environment)
            worker.wait_ready(START_TIMEOUT_SECONDS)
        except Exception as error:
            failure = str(error)
            if worker is not None:
                worker.kill()
            worker = None
        with self._changed:
            self._starting -= 1
            if worker is not None and not self._stopped:
                self._workers.add(worker)
                self._idle.append(worker)
            elif failure is not None:
                self._start_failure = failure
            self._changed.notify_all()
        if worker is not None and self._stopped:
            worker.kill()


def _described(function: LocalFunction) -> dict[str, Any]:
    return {
        "logical_id": function.logical_id,
        "name": function.name,
        "arn": function.arn,
        "code_dir": str(function.code_dir),
        "handler": function.handler,
        "environment": function.environment,
        "timeout": function.timeout,
    }


# -- the worker process ------------------------------------------------------------------------------


def serve(connection: Connection) -> int:
    """Import the functions (INIT), then run the invocations the connection brings, one at a time."""
    setup = json.loads(connection.recv_bytes())
    functions = {
        raw["logical_id"]: LocalFunction(**{**raw, "code_dir": Path(raw["code_dir"])}) for raw in setup["functions"]
    }
    try:
        handlers = {name: handler_of(load_module(function), function) for name, function in functions.items()}
    except Exception as error:
        traceback.print_exc()
        connection.send_bytes(json.dumps({"error": f"{type(error).__name__}: {error}"}).encode())
        return 1
    connection.send_bytes(b'{"ready": true}')
    while True:
        try:
            request = json.loads(connection.recv_bytes())
        except EOFError:  # the stack retired this worker, or stopped
            return 0
        function = functions[request["function"]]
        system_clock.offset = timedelta(seconds=request["clock_offset"])
        try:
            result = handlers[function.logical_id](request["event"], new_context(function))
        except Exception as error:
            traceback.print_exc()  # as Lambda logs an unhandled error
            reply = _error(type(error).__name__, str(error), traceback.format_exception(error)[-3:])
        else:
            try:
                reply = json.dumps({"result": result})
            except (TypeError, ValueError) as error:
                reply = _error("Runtime.MarshalError", f"Unable to marshal response: {error}", [])
        connection.send_bytes(reply.encode())


def _error(error_type: str, message: str, trace: list[str]) -> str:
    return json.dumps({"error": {"type": error_type, "message": message, "trace": trace}})


def main() -> int:
    # Ctrl-C in `make local`'s terminal reaches the whole process group: the stack stops its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Powertools warns on every invocation that publishes no metric; metrics are off locally anyway.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    with Connection(int(sys.argv[1])) as connection:
        return serve(connection)


if __name__ == "__main__":
    sys.exit(main())
