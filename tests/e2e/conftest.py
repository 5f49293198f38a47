"""One local stack for the e2e package: moto, template.yaml and the handlers, on free ports, in this process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.drive import signed
from trustgate_local.seed import PEOPLE
from trustgate_local.server import LocalStack


@pytest.fixture(scope="package")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The running local stack; tests that move its clock finish their own grants first (see `advance`)."""
    with LocalStack(port=0, aws_port=0, state_dir=tmp_path_factory.mktemp("trustgate-local")) as local:
        yield local


@pytest.fixture(autouse=True)
def no_open_requests_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """A person holds one open request and one coverage per role (a new grant extends it): each test ends what
    it left pending or active, as its user would, so the next test starts from nobody holding anything."""
    yield
    if "local_stack" not in request.fixturenames:
        return
    local: LocalStack = request.getfixturevalue("local_stack")
    for person in PEOPLE:
        for status, action in (("pending", "cancel"), ("active", "revoke")):
            mine = signed(local, person.profile, "GET", f"/requests?mine=true&status={status}")
            for item in mine.body.get("items", []) if mine.status == 200 else []:
                signed(local, person.profile, "POST", f"/requests/{item['id']}/{action}")
