"""A pending request to render messages from, for unit tests of notifications (no AWS)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from trustgate.core.models import AccessRequest

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
ALICE = "arn:aws:iam::222222222222:user/alice"
BOB = "arn:aws:iam::222222222222:user/bob"
DAVE = "arn:aws:iam::222222222222:user/dave"


def a_request(**changes: object) -> AccessRequest:
    """alice's pending one-hour request for PumpCustomerAccess, bob and dave approving, with `changes`."""
    return AccessRequest(
        id="01JREQUEST",
        role_arn="arn:aws:iam::123456789012:role/PumpCustomerAccess",
        principal_arn=ALICE,
        duration=timedelta(hours=1),
        justification="rotate the bucket",
        created_at=NOW,
        approval_deadline=NOW + timedelta(hours=2),
        approvers=[BOB, DAVE],
    ).model_copy(update=changes)
