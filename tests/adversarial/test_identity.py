"""Adversarial cases on who a caller is: refused, and nothing changes."""

from __future__ import annotations

import pytest

from tests.support.adversarial import refused_unchanged
from tests.support.aws import ALICE, World
from tests.support.flows import request_access
from tests.support.links import approval_links

pytestmark = pytest.mark.functional


def test_a_requester_cannot_approve_their_own_request(world: World) -> None:
    request = request_access(world)
    approval_links(world, request["id"])  # the flow has minted every link: nothing more is written meanwhile

    refused_unchanged(
        world, lambda: world.api("POST", f"/requests/{request['id']}/approve", ALICE, {}), 403, "own_request"
    )
