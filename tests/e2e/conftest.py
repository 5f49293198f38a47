"""One local stack for the e2e package: moto, template.yaml and the handlers, on free ports, in this process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from trustgate_local.server import LocalStack


@pytest.fixture(scope="package")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The running local stack; tests that move its clock finish their own grants first (see `advance`)."""
    with LocalStack(port=0, aws_port=0, state_dir=tmp_path_factory.mktemp("trustgate-local")) as local:
        yield local
