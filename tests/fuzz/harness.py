"""What the fuzz tests need around schemathesis: callers that sign like AWS clients, the stored state to
compare around each refused call, the known requests a case may aim at, and the findings of a run.

Every case goes through the local stack's real gateway (SigV4 verification, the template's resource
policy, API Gateway's proxy event) into the API function, exactly as a client's call would.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

import requests
import schemathesis
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import strategies as st
from moto.dynamodb.models import dynamodb_backends
from schemathesis.core.failures import Failure, FailureGroup

from trustgate.core.session_guard import GUARD_POLICY_NAME
from trustgate_local.seed import REGION, ROLE_NAME
from trustgate_local.server import LocalStack

SERVICE = "execute-api"
JUSTIFICATION = "seeded by the fuzz harness so cases can aim at real requests"


# -- who calls ------------------------------------------------------------------------------------


class SigV4(requests.auth.AuthBase):
    """Signs a prepared request with botocore's SigV4 signer, as the CLI and any AWS SDK would.

    The query string is re-encoded first (RFC 3986, `%20` for a space), because that is how SigV4
    canonicalises it: requests' form encoding (`+` for a space) would be signed as one string and
    verified by the gateway as another. The meaning of every parameter is unchanged.
    """

    def __init__(self, credentials: Credentials, region: str = REGION) -> None:
        self.credentials = credentials
        self.region = region

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        assert request.url is not None
        assert request.method is not None
        parts = urlsplit(request.url)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)
        request.url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        signed = {k: v for k, v in request.headers.items() if k.lower() == "content-type"}
        aws_request = AWSRequest(method=request.method, url=request.url, data=body, headers=signed)
        SigV4Auth(self.credentials, SERVICE, self.region).add_auth(aws_request)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if name in aws_request.headers:
                request.headers[name] = aws_request.headers[name]
        return request


@dataclass(frozen=True)
class Caller:
    """A kind of caller: `profile` is the demo user who signs (see trustgate_local.seed), None for unsigned."""

    kind: str
    profile: str | None

    def auth(self, local: LocalStack) -> SigV4 | None:
        if self.profile is None:
            return None
        user = local.organization.user(self.profile)
        return SigV4(Credentials(user.access_key_id, user.secret_access_key))


REQUESTER = Caller("requester", "requester")  # alice asks for access
APPROVER = Caller("approver", "approver")  # bob, a default approver
ADMIN = Caller("admin", "admin")  # carol, the bootstrap admin
OUTSIDER = Caller("outsider", "outsider")  # mallory, signed, from an account outside the organization
UNSIGNED = Caller("unsigned", None)  # no credentials at all
CALLERS = {c.kind: c for c in (REQUESTER, APPROVER, ADMIN, OUTSIDER, UNSIGNED)}


# -- what a refusal must leave alone --------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """What IAM holds for the managed role and what TrustGate stores, as tests/support/adversarial.py
    snapshots it for the in-process harness, read here from the local stack's moto."""

    trust_policy: str
    session_guard: str | None
    items: tuple[str, ...]  # every table item but the role locks (a refused call may take a lease and give it back)
    schedules: tuple[str, ...]


class StateReader:
    """Reads the `State` from the stack's moto (its clients made once: making one costs about 10 ms)."""

    def __init__(self, local: LocalStack) -> None:
        session = local.session
        self.table = local.stack.refs["Table"]
        self.group = local.stack.refs["ExpiryScheduleGroup"]
        self.account = local.stack.account
        self.region = local.stack.region
        self.iam = session.client("iam")
        self.scheduler = session.client("scheduler")

    def read(self) -> State:
        items = self._items()
        trust = self.iam.get_role(RoleName=ROLE_NAME)["Role"]["AssumeRolePolicyDocument"]
        guard = None
        if GUARD_POLICY_NAME in self.iam.list_role_policies(RoleName=ROLE_NAME)["PolicyNames"]:
            document = self.iam.get_role_policy(RoleName=ROLE_NAME, PolicyName=GUARD_POLICY_NAME)["PolicyDocument"]
            guard = json.dumps(document, sort_keys=True)
        schedules = self.scheduler.list_schedules(GroupName=self.group).get("Schedules", [])
        return State(
            json.dumps(trust, sort_keys=True),
            guard,
            tuple(sorted(items)),
            tuple(sorted(s["Name"] for s in schedules)),
        )

    def _items(self) -> list[str]:
        """The table's items from moto's backend, in this process like the stack itself: a Scan over HTTP
        costs about 1 s once a run has piled up a few hundred audit records, this about 1 ms per 100 items."""
        table = dynamodb_backends[self.account][self.region].get_table(self.table)
        for _ in range(5):
            try:
                snapshot = list(table.all_items())
            except RuntimeError:  # the stack's threads wrote while we read ("changed size during iteration")
                continue
            items = [item.to_json()["Attributes"] for item in snapshot]
            return [json.dumps(i, sort_keys=True) for i in items if not i["pk"]["S"].startswith("LOCK#")]
        raise RuntimeError("the table kept changing while it was read")

    def settle(self, timeout: float = 5.0) -> State:
        """The state once the work a successful call started (the approval flow, a grant) has finished:
        two reads 0.2 s apart that agree. A refused call after it is then judged on its own."""
        deadline = time.monotonic() + timeout
        state = self.read()
        while time.monotonic() < deadline:
            time.sleep(0.2)
            again = self.read()
            if again == state:
                return again
            state = again
        return state


def describe_change(before: State, after: State) -> str:
    changed = []
    if before.trust_policy != after.trust_policy:
        changed.append("the trust policy")
    if before.session_guard != after.session_guard:
        changed.append("the session guard")
    if before.schedules != after.schedules:
        changed.append("the expiry schedules")
    if before.items != after.items:
        old = {_key(i): i for i in before.items}
        new = {_key(i): i for i in after.items}
        table = [
            f"{verb} {_kinds(keys)}"
            for verb, keys in (
                ("added", new.keys() - old.keys()),
                ("removed", old.keys() - new.keys()),
                ("changed", {k for k in old.keys() & new.keys() if old[k] != new[k]}),
            )
            if keys
        ]
        changed.append(f"the table ({'; '.join(table)})")
    return ", ".join(changed)


def _key(item: str) -> str:
    document = json.loads(item)
    return f"{document['pk']['S']}|{document.get('sk', {}).get('S', '')}"


def _kinds(keys: Iterable[str]) -> str:
    """`AUDIT x2, REQUEST x1`: the kinds of item (the key's prefix), without ids that differ every run."""
    counts = Counter(key.split("#", 1)[0] for key in keys)
    return ", ".join(f"{kind} x{count}" for kind, count in sorted(counts.items()))


# -- the requests cases may aim at ----------------------------------------------------------------


@dataclass
class Known:
    """Requests that exist while a test runs, so that generated cases reach past the 404 for an unknown id.

    `pending`: dave's pending request (bob may decide it); `active`: alice's active grant (she may extend
    or revoke it). Either is None when the API could not create it (a half-finished change elsewhere).
    """

    pending: str | None = None
    active: str | None = None
    links: list[str] = field(default_factory=list)  # the approval-link tokens of the pending request
    notes: list[str] = field(default_factory=list)  # why a request could not be made
    prepared: State | None = None  # the state `prepare` left

    def ids(self) -> list[str]:
        return [i for i in (self.pending, self.active) if i]

    def placeholder(self, value: str) -> str:
        """Known ids as markers the replay tool understands: `{pending}`, `{active}`, `{link}`."""
        for name, known in (("pending", self.pending), ("active", self.active), *(("link", t) for t in self.links)):
            if known and known in value:
                value = value.replace(known, "{" + name + "}")
        return value


KNOWN = Known()  # one per process, like the local stack: the generation hooks read it, `prepare` refreshes it


def signed_json(local: LocalStack, caller: Caller, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    response = requests.request(
        method,
        local.endpoint + path,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"} if body is not None else {},
        auth=caller.auth(local),
        timeout=30,
    )
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


def _status_of(local: LocalStack, request_id: str | None) -> str | None:
    if request_id is None:
        return None
    status, body = signed_json(local, ADMIN, "GET", f"/requests/{request_id}")
    return body.get("status") if status == 200 and isinstance(body, dict) else None


def prepare(local: LocalStack, known: Known, baseline_policy: Mapping[str, Any], state: StateReader) -> Known:
    """Bring the stack back to the state every fuzz test starts from: the role's original policy, dave's
    pending request and alice's active grant, and nothing else open. Reuses what is still in that state,
    and does nothing when the previous test changed nothing (it was refused throughout)."""
    if known.prepared is not None and state.read() == known.prepared:
        return known
    _restore_policy(local, baseline_policy)
    owners = {u.arn: Caller(u.profile, u.profile) for u in local.organization.users}
    wanted = {known.pending: "pending", known.active: "active"}
    found: dict[str, str] = {}
    for status in ("pending", "active"):
        for item in _listed(local, status):
            if wanted.get(item["id"]) == status:
                found[item["id"]] = status
                continue
            owner = owners.get(item["principal_arn"], ADMIN)
            if status == "pending":
                signed_json(local, owner, "POST", f"/requests/{item['id']}/cancel")
            else:
                signed_json(local, ADMIN, "POST", f"/requests/{item['id']}/revoke", {"reason": "fuzz test reset"})
    known.pending = known.pending if known.pending in found else None
    known.active = known.active if known.active in found else None
    known.notes.clear()
    if known.active is None:
        known.active = _grant(local, owners[local.organization.user("requester").arn], known)
    if known.pending is None:
        known.pending = _ask(local, owners[local.organization.user("approver2").arn], known)
    known.links = _links(local, known.pending)
    known.prepared = state.settle()
    return known


def _links(local: LocalStack, request_id: str | None) -> list[str]:
    """The tokens of the approval links sent for `request_id` (the local outbox keeps every message)."""
    if request_id is None:
        return []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        response = requests.get(f"{local.endpoint}/_local/outbox", params={"request_id": request_id}, timeout=30)
        links = [n["link"] for n in response.json() if n.get("link")]
        if links:
            return sorted(link.rsplit("/", 1)[-1] for link in links)
        time.sleep(0.1)
    return []


def _listed(local: LocalStack, status: str) -> Iterator[dict[str, Any]]:
    """Every request in `status`, as the bootstrap admin sees them."""
    cursor = ""
    while True:
        code, page = signed_json(local, ADMIN, "GET", f"/requests?status={status}&limit=100{cursor}")
        assert code == 200, f"could not list {status} requests: {code} {page}"
        yield from page["items"]
        if not page.get("next"):
            return
        cursor = f"&next={quote(page['next'], safe='')}"


def _restore_policy(local: LocalStack, baseline: Mapping[str, Any]) -> None:
    url = f"{local.endpoint}/roles/{ROLE_NAME}/policy"
    current = requests.get(url, auth=ADMIN.auth(local), timeout=30)
    assert current.status_code == 200, f"could not read the role's policy: {current.status_code} {current.text}"
    if _policy_fields(current.json()) == _policy_fields(baseline):
        return
    headers = {"Content-Type": "application/json"}
    if "ETag" in current.headers:  # the version we replace, so that the API can refuse a stale write
        headers["If-Match"] = current.headers["ETag"]
    data = json.dumps(_policy_fields(baseline)).encode()
    response = requests.put(url, data=data, headers=headers, auth=ADMIN.auth(local), timeout=30)
    assert response.status_code == 200, f"could not restore the role's policy: {response.status_code} {response.text}"


def _policy_fields(view: Mapping[str, Any]) -> dict[str, Any]:
    """The policy an admin PUTs: the view without what the API derives from it."""
    return {k: v for k, v in view.items() if k not in ("effective", "version", "etag")}


def _ask(local: LocalStack, caller: Caller, known: Known) -> str | None:
    status, body = signed_json(
        local, caller, "POST", "/requests", {"role": ROLE_NAME, "duration": "PT1H", "justification": JUSTIFICATION}
    )
    if status != 201 or not isinstance(body, dict):
        known.notes.append(f"{caller.kind} could not file a request: {status} {body}")
        return None
    return str(body["id"])


def _grant(local: LocalStack, caller: Caller, known: Known) -> str | None:
    request_id = _ask(local, caller, known)
    if request_id is None:
        return None
    status, body = signed_json(local, APPROVER, "POST", f"/requests/{request_id}/approve", {"comment": "fuzz seed"})
    if status != 200:
        known.notes.append(f"bob could not approve {request_id}: {status} {body}")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _status_of(local, request_id) == "active":
            return request_id
        time.sleep(0.1)
    known.notes.append(f"{request_id} did not become active")
    signed_json(local, caller, "POST", f"/requests/{request_id}/cancel")
    return None


def aim_at_known(known: Known) -> Any:
    """A schemathesis `flatmap_path_parameters` hook: often the managed role and the known requests
    instead of a random name, so that cases reach the code behind the lookups."""

    def flatmap_path_parameters(context: schemathesis.HookContext, path_parameters: dict[str, Any]) -> Any:
        if not path_parameters:
            return st.just(path_parameters)
        choices: list[dict[str, Any]] = [path_parameters]
        if "role" in path_parameters:
            choices += [{**path_parameters, "role": ROLE_NAME}] * 2
        if "request_id" in path_parameters:
            choices += [{**path_parameters, "request_id": i} for i in known.ids()]
        if "token" in path_parameters:
            choices += [{**path_parameters, "token": t} for t in known.links] * 2
        return st.sampled_from(choices)

    return flatmap_path_parameters


# -- what a run found -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """One request as sent, with known request ids shown as `{pending}`/`{active}` (see `replay`)."""

    caller: str
    method: str
    path: str
    headers: dict[str, str]
    body: str | None  # UTF-8 text, or hex digits when `binary`
    binary: bool = False

    def size(self) -> int:
        return len(self.path) + len(self.body or "") + sum(len(k) + len(v) for k, v in self.headers.items())

    def replay_command(self) -> str:
        command = ["python", "-m", "tests.fuzz.replay", self.caller, self.method, _shell(self.path)]
        if self.body is not None:
            command += ["--body-hex" if self.binary else "--body", _shell(self.body)]
        for name, value in self.headers.items():
            command += ["--header", _shell(f"{name}: {value}")]
        return " ".join(command)


def _shell(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


_SHOWN_HEADERS = ("content-type", "if-match", "idempotency-key")


def sent_from(request: requests.PreparedRequest, caller: Caller, known: Known) -> Sent:
    """The request as sent (after signing re-encoded its query)."""
    parts = urlsplit(request.url or "")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    body = request.body.encode() if isinstance(request.body, str) else request.body
    headers = {k: _text(v) for k, v in request.headers.items() if k.lower() in _SHOWN_HEADERS}
    sent = Sent(caller.kind, request.method or "", known.placeholder(path), headers, None)
    if not isinstance(body, bytes):
        return sent
    try:
        return replace(sent, body=known.placeholder(body.decode()))
    except UnicodeDecodeError:
        return replace(sent, body=body.hex(), binary=True)


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


@dataclass
class Finding:
    kind: str
    operation: str
    caller: str
    status: int
    detail: str
    example: Sent  # the smallest request seen for this finding
    count: int = 1

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "operation": self.operation,
            "caller": self.caller,
            "status": self.status,
            "detail": self.detail,
            "count": self.count,
            "example": self.example.__dict__,
            "replay": self.example.replay_command(),
        }

    def describe(self) -> str:
        return (
            f"[{self.count}x] {self.kind}: {self.operation} as {self.caller} -> {self.status}"
            + (f" ({self.detail})" if self.detail else "")
            + "\n"
            f"      smallest: {self.example.method} {self.example.path}"
            + (f" body={self.example.body[:300]!r}" if self.example.body is not None else "")
            + (f" headers={self.example.headers}" if self.example.headers else "")
            + f"\n      replay:   {self.example.replay_command()[:600]}"
        )


@dataclass
class Findings:
    """The findings of one test, one entry per kind of failure, keeping the smallest request for each."""

    items: dict[tuple[str, ...], Finding] = field(default_factory=dict)

    def add(self, kind: str, operation: str, caller: str, status: int, detail: str, sent: Sent) -> None:
        key = (kind, operation, caller, str(status), detail)
        found = self.items.get(key)
        if found is None:
            self.items[key] = Finding(kind, operation, caller, status, detail, sent)
            return
        found.count += 1
        if sent.size() < found.example.size():
            found.example = sent

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.items.values())

    def __bool__(self) -> bool:
        return bool(self.items)

    def report(self) -> str:
        return "\n".join(f.describe() for f in self)


def failures_of(error: BaseException) -> list[Failure]:
    if isinstance(error, FailureGroup):
        return list(error.exceptions)
    if isinstance(error, Failure):
        return [error]
    raise error


def failure_detail(failure: Failure) -> str:
    """What tells one failure of a check from another of the same kind: the first line of its message."""
    lines = [line.strip() for line in (failure.message or "").splitlines() if line.strip()]
    return lines[0][:200] if lines else ""
