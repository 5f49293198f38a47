"""The local stack: moto as the embedded AWS, the template's resources in it, the handlers in-process
(the API's in worker processes, one request each at a time), and the API served over HTTP the way API
Gateway serves it (`api_server`). What it keeps is bounded (`retention`), so it can run for hours.

`LocalStack(...).start()` runs it in this process (tests and the bench use free ports: port 0);
`python -m trustgate_local` runs it in the foreground on 127.0.0.1:3000 (API) and :5000 (AWS).
One local stack per process: moto's backends, the Lambda seam and `os.environ` are process-wide.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import urllib.request
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from moto.core.config import default_user_config
from moto.server import ThreadedMotoServer

from trustgate.adapters import wiring
from trustgate.core.clock import system_clock
from trustgate_local import gateway, outbox, retention, routes
from trustgate_local.api_server import ApiServer, LocalApi, PortInUseError
from trustgate_local.clockwork import Clockwork
from trustgate_local.config_files import ProfileFiles, write_profiles
from trustgate_local.host import FunctionHost, install, uninstall
from trustgate_local.provision import ROOT, Stack, provision
from trustgate_local.seed import REGION, DemoOrganization, seed_organization
from trustgate_local.workers import PoolSettings, WorkerPool

if TYPE_CHECKING:
    from mypy_boto3_organizations import OrganizationsClient

__all__ = ["DEFAULT_AWS_PORT", "DEFAULT_PORT", "STATE_DIR", "LocalStack", "PortInUseError"]

DEFAULT_PORT = 3000
DEFAULT_AWS_PORT = 5000
STATE_DIR = ROOT / ".trustgate" / "local"
# moto's own credentials for everything the stack does itself (TrustGate runs in the management account).
ADMIN_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
}
# A shell's AWS settings would send the handlers' calls elsewhere, or sign them as someone else.
_FOREIGN_AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)

_running = threading.Lock()


@dataclass
class _Saved:
    """Process-wide settings `start` changes and `stop` puts back."""

    environ: dict[str, str] = field(default_factory=dict)
    execute_state_machine: bool = False
    clock_offset: timedelta = timedelta(0)


@dataclass
class _Parts:
    session: boto3.Session
    organization: DemoOrganization
    stack: Stack
    host: FunctionHost
    outbox: outbox.Outbox
    clockwork: Clockwork
    profiles: ProfileFiles
    workers: WorkerPool
    janitor: retention.Janitor
    organizations: OrganizationsClient  # one client for every request: boto3 sessions are not thread-safe


class LocalStack:
    """TrustGate on this machine. Ports 0 pick free ports; `state_dir` receives the AWS profile files.

    Usable as a context manager. After `start()`: `endpoint` (the API), `aws_endpoint` (moto),
    `session` (boto3 on moto, as the management account), `organization` (demo users and their
    keys), `profiles`, `outbox`, `clockwork`, `stack`, `host` (the in-process handlers), `workers`
    (the API's worker processes), `janitor` (what bounds moto's state; see `retention`).
    """

    def __init__(
        self,
        *,
        port: int = DEFAULT_PORT,
        aws_port: int = DEFAULT_AWS_PORT,
        bind: str = "127.0.0.1",
        state_dir: Path = STATE_DIR,
        echo: bool = False,
        tick_interval: float = 1.0,
        log_level: str = "WARNING",
        workers: PoolSettings | None = None,
        limits: retention.Limits | None = None,
    ) -> None:
        self.port = port
        self.aws_port = aws_port
        self.bind = bind
        self.state_dir = state_dir
        self.echo = echo
        self.tick_interval = tick_interval
        self.log_level = log_level
        self.worker_settings = workers or PoolSettings()
        self.limits = limits or retention.Limits()
        self.clock = system_clock
        self.endpoint = ""
        self.aws_endpoint = ""
        self._parts: _Parts | None = None
        self._moto: ThreadedMotoServer | None = None
        self._http: ApiServer | None = None
        self._http_thread: threading.Thread | None = None
        self._workers: WorkerPool | None = None
        self._janitor: retention.Janitor | None = None
        self._saved = _Saved()
        self._started = False

    # -- what a running stack offers ------------------------------------------------------------

    @property
    def parts(self) -> _Parts:
        if self._parts is None:
            raise RuntimeError("the local stack is not running: call start() first")
        return self._parts

    @property
    def session(self) -> boto3.Session:
        """A boto3 session on the embedded moto as the management account's administrator."""
        return self.parts.session

    @property
    def organization(self) -> DemoOrganization:
        return self.parts.organization

    @property
    def stack(self) -> Stack:
        return self.parts.stack

    @property
    def host(self) -> FunctionHost:
        return self.parts.host

    @property
    def outbox(self) -> outbox.Outbox:
        return self.parts.outbox

    @property
    def clockwork(self) -> Clockwork:
        return self.parts.clockwork

    @property
    def profiles(self) -> ProfileFiles:
        return self.parts.profiles

    @property
    def workers(self) -> WorkerPool:
        return self.parts.workers

    @property
    def janitor(self) -> retention.Janitor:
        return self.parts.janitor

    def client_environment(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """An environment for a subprocess (the CLI, an SDK script) that uses the demo profiles.

        The AWS variables of this process (moto's admin keys, the moto endpoint) are left out, so the
        subprocess signs as the profile it names, as a user's shell would.
        """
        source = base if base is not None else self._saved.environ
        environment = {k: v for k, v in source.items() if not k.startswith("AWS_")}
        environment.update(self.profiles.environment(self.endpoint))
        return environment

    def say(self, text: str) -> None:
        print(text, flush=True)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> LocalStack:
        """Start moto, seed the organization, provision the template, serve the API. Returns self."""
        if not _running.acquire(blocking=False):
            raise RuntimeError("a local stack is already running in this process; stop it first")
        self._saved = _Saved(dict(os.environ), _execute_state_machine(), self.clock.offset)
        self._started = True
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        # The API port first: a busy port fails fast, before anything else starts.
        self._http = ApiServer((self.bind, self.port))
        self.endpoint = f"http://{self.bind}:{self._http.server_address[1]}"
        self._start_moto()
        # Everything from here talks to the embedded moto, as the deployed functions talk to AWS.
        for name in _FOREIGN_AWS_VARIABLES:
            os.environ.pop(name, None)
        os.environ.update(ADMIN_ENVIRONMENT)
        os.environ["AWS_ENDPOINT_URL"] = self.aws_endpoint
        session = boto3.Session(region_name=REGION)  # credentials from ADMIN_ENVIRONMENT
        organization = seed_organization(session)
        parameters = organization.stack_parameters()
        stack = provision(
            session,
            parameters,
            environment_overrides={"APPROVAL_BASE_URL": self.endpoint, "POWERTOOLS_LOG_LEVEL": self.log_level},
        )
        host = install(stack)
        # The API's functions run in worker processes (one request each at a time), started with the stack's
        # environment, which install() has just set.
        http_functions = sorted({route.function for route in stack.routes})
        self._workers = WorkerPool([stack.functions[f] for f in http_functions], self.clock, self.worker_settings)
        self._workers.start()
        # Subscribed like a deployment: the template's shared mailbox, and each person's own filtered delivery.
        people = {user.name: user.arn for user in organization.users}
        notifications = outbox.Outbox(
            session,
            [*stack.mailboxes, *outbox.personal_mailboxes(session, stack, people)],
            self.clock,
            on_message=(lambda n: self.say(outbox.describe(n))) if self.echo else None,
            keep=self.limits.outbox,
        )
        clockwork = Clockwork(
            session,
            stack,
            host,
            self.clock,
            stack.refs["ExpiryScheduleGroup"],
            interval=self.tick_interval,
            log=self.say if self.echo else (lambda _: None),
        )
        profiles = write_profiles(self.state_dir, organization.users, REGION, self.aws_endpoint)
        self._janitor = retention.Janitor(self.limits)
        self._parts = _Parts(
            session,
            organization,
            stack,
            host,
            notifications,
            clockwork,
            profiles,
            self._workers,
            self._janitor,
            session.client("organizations"),
        )
        notifications.start()
        clockwork.start()
        self._janitor.start()
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": stack.account,
            "AWS::Partition": "aws",
            "AWS::StackName": stack.name,
        }
        self._http.app = LocalApi(
            stack=stack,
            functions=self._workers,
            api=gateway.load_api(parameters, pseudo),
            routes=routes.RouteTable(stack.routes),
            outbox=notifications,
            clockwork=clockwork,
            clock=self.clock,
            organization_of=self._organization_of,
            endpoint=self.endpoint,
            aws_endpoint=self.aws_endpoint,
            say=self.say if self.echo else None,
        )
        self._http_thread = threading.Thread(target=self._http.serve_forever, name="trustgate-api", daemon=True)
        self._http_thread.start()

    def _start_moto(self) -> None:
        if self.aws_port and not _port_free(self.bind, self.aws_port):
            # moto's threaded server would wait forever for a socket it cannot bind.
            raise PortInUseError(
                f"port {self.aws_port} is in use; is another `make local` running? Set TRUSTGATE_AWS_PORT to a free port"
            )
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access-log line per AWS call
        self._moto = ThreadedMotoServer(ip_address=self.bind, port=self.aws_port, verbose=False)
        self._moto.start()
        port = self._moto.get_host_and_port()[1]
        self.aws_endpoint = f"http://{self.bind}:{port}"
        # moto's Step Functions executor reaches Lambda through the server on MOTO_PORT.
        os.environ["MOTO_PORT"] = str(port)
        default_user_config["stepfunctions"]["execute_state_machine"] = True
        _post(f"{self.aws_endpoint}/moto-api/reset")  # a fresh AWS, whatever ran in this process before
        retention.bound_moto()  # moto would otherwise keep every object it ever made (see retention)

    def stop(self) -> None:
        """Stop serving, free both ports, and put back every process-wide setting `start` changed."""
        if not self._started:
            return
        self._started = False
        try:
            if self._http is not None:
                if self._http_thread is not None:
                    self._http.shutdown()
                self._http.server_close()
            if self._workers is not None:
                self._workers.stop()
            if self._janitor is not None:
                self._janitor.stop()
            if self._parts is not None:
                self._parts.clockwork.stop()
                self._parts.outbox.stop()
            uninstall()
            wiring.reset()
            if self._moto is not None:
                try:
                    if self.aws_endpoint:
                        _post(f"{self.aws_endpoint}/moto-api/reset")  # leave no state to later moto users
                finally:
                    self._moto.stop()
                    server = getattr(self._moto, "_server", None)
                    if server is not None:
                        server.server_close()  # ThreadedMotoServer.stop leaves its socket open
        finally:
            self._parts = None
            self._workers = self._janitor = None
            retention.unbound_moto()
            os.environ.clear()
            os.environ.update(self._saved.environ)
            default_user_config["stepfunctions"]["execute_state_machine"] = self._saved.execute_state_machine
            self.clock.offset = self._saved.clock_offset
            _running.release()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _organization_of(self, account: str) -> str | None:
        """aws:PrincipalOrgID of `account`, from moto's Organizations (an account may join or leave)."""
        parts = self.parts
        paginator = parts.organizations.get_paginator("list_accounts")
        for page in paginator.paginate():
            if any(a["Id"] == account and a.get("Status", "ACTIVE") == "ACTIVE" for a in page["Accounts"]):
                return parts.organization.organization_id
        return None


def _execute_state_machine() -> bool:
    return bool(default_user_config["stepfunctions"].get("execute_state_machine", False))


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _post(url: str) -> None:
    request = urllib.request.Request(url, data=b"", method="POST")  # noqa: S310 - our own moto, on this machine
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310
        pass
