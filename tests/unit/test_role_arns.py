"""Role ARNs and the console's Switch Role link (`trustgate.core.identity`): the one place that takes a role ARN
apart and knows each partition's console. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustgate.core.errors import InvalidPrincipalError
from trustgate.core.identity import (
    RoleArn,
    console_hosts,
    parse_role_arn,
    role_arn_or_none,
    role_name_of,
    switch_role_url,
)
from trustgate.core.models import AccessRequest, RequestStatus, RequestView

pytestmark = pytest.mark.unit

ROLE = "arn:aws:iam::111122223333:role/PumpCustomerAccess"


def query_of(url: str) -> dict[str, str]:
    """The decoded query of a link, one value per name (each appears exactly once)."""
    values = parse_qs(urlsplit(url).query, keep_blank_values=True, strict_parsing=True)
    assert all(len(found) == 1 for found in values.values()), values
    return {name: found[0] for name, found in values.items()}


# -- taking a role ARN apart -------------------------------------------------------------------------


def test_a_role_arn_gives_its_partition_account_path_and_name() -> None:
    role = parse_role_arn("arn:aws-us-gov:iam::111122223333:role/vendor/team/PumpCustomerAccess")

    assert role == RoleArn("aws-us-gov", "111122223333", "vendor/team/", "PumpCustomerAccess")
    assert role.path_and_name == "vendor/team/PumpCustomerAccess"
    assert role.arn == "arn:aws-us-gov:iam::111122223333:role/vendor/team/PumpCustomerAccess"


def test_a_role_without_a_path_has_an_empty_one() -> None:
    assert parse_role_arn(ROLE) == RoleArn("aws", "111122223333", "", "PumpCustomerAccess")


def test_the_role_name_iam_takes_is_the_name_without_its_path() -> None:
    assert role_name_of("arn:aws:iam::111122223333:role/vendor/PumpCustomerAccess") == "PumpCustomerAccess"


@pytest.mark.parametrize(
    "text",
    [
        "arn:aws:iam::111122223333:user/alice",  # a user, not a role
        "arn:aws:sts::111122223333:assumed-role/PumpCustomerAccess/alice",  # a session
        "arn:aws:iam::1111:role/PumpCustomerAccess",  # no 12-digit account
        "arn:aws:iam::111122223333:role/Pump*",  # a wildcard is a pattern, not a role
        "arn:aws:iam::111122223333:role/vendor//PumpCustomerAccess",  # an empty path segment
        "arn:aws:iam::111122223333:role/PumpCustomerAccess\n",  # nothing after the name
        "arn:aws:iam::111122223333:role/Pümp",  # IAM names are ASCII
        "PumpCustomerAccess",
    ],
)
def test_anything_but_a_role_arn_is_refused(text: str) -> None:
    assert role_arn_or_none(text) is None
    with pytest.raises(InvalidPrincipalError):
        parse_role_arn(text)


# -- the console's Switch Role link, per partition ----------------------------------------------------


@pytest.mark.parametrize(
    ("partition", "signin", "console"),
    [
        ("aws", "signin.aws.amazon.com", "console.aws.amazon.com"),
        ("aws-us-gov", "signin.amazonaws-us-gov.com", "console.amazonaws-us-gov.com"),
        ("aws-cn", "signin.amazonaws.cn", "console.amazonaws.cn"),
    ],
)
def test_each_partition_links_to_its_own_console(partition: str, signin: str, console: str) -> None:
    assert (console_hosts(partition).signin, console_hosts(partition).console) == (signin, console)

    url = switch_role_url(f"arn:{partition}:iam::111122223333:role/PumpCustomerAccess")

    assert url == (
        f"https://{signin}/switchrole?roleName=PumpCustomerAccess&account=111122223333&displayName=PumpCustomerAccess"
    )


def test_a_partition_without_a_public_console_keeps_the_commercial_host() -> None:
    assert console_hosts("aws-iso") == console_hosts("aws")


def test_the_role_name_in_the_link_carries_the_roles_path() -> None:
    url = switch_role_url("arn:aws:iam::111122223333:role/vendor/team/PumpCustomerAccess")

    assert url == (
        "https://signin.aws.amazon.com/switchrole?roleName=vendor/team/PumpCustomerAccess&account=111122223333"
        "&displayName=PumpCustomerAccess"
    )


def test_a_role_name_with_characters_a_query_reserves_is_percent_encoded() -> None:
    url = switch_role_url("arn:aws:iam::111122223333:role/ops/Pump+Access=1,a@b")

    assert "roleName=ops/Pump%2BAccess%3D1%2Ca%40b&" in url
    assert url.endswith("&displayName=Pump%2BAccess%3D1%2Ca%40b")
    assert query_of(url) == {
        "roleName": "ops/Pump+Access=1,a@b",
        "account": "111122223333",
        "displayName": "Pump+Access=1,a@b",
    }


def test_a_display_name_of_ones_own_is_encoded_too() -> None:
    url = switch_role_url(ROLE, "Pump prod & co")

    assert url.endswith("&displayName=Pump%20prod%20%26%20co")
    assert query_of(url)["displayName"] == "Pump prod & co"


def test_no_link_for_what_is_not_a_role() -> None:
    with pytest.raises(InvalidPrincipalError):
        switch_role_url("arn:aws:iam::111122223333:user/alice")


_NAME = st.text(alphabet="abcXYZ019+=,.@_-", min_size=1, max_size=20)


@given(
    partition=st.sampled_from(["aws", "aws-us-gov", "aws-cn"]),
    path=st.lists(_NAME, max_size=3),
    name=_NAME,
)
def test_the_link_decodes_to_the_roles_path_name_and_account(partition: str, path: list[str], name: str) -> None:
    role_arn = f"arn:{partition}:iam::111122223333:role/{''.join(f'{segment}/' for segment in path)}{name}"

    url = switch_role_url(role_arn)

    assert urlsplit(url).hostname == console_hosts(partition).signin
    assert query_of(url) == {
        "roleName": parse_role_arn(role_arn).path_and_name,
        "account": "111122223333",
        "displayName": name,
    }


# -- the API's `switch_url` on a request ---------------------------------------------------------------


def test_a_request_view_carries_the_link_only_while_its_grant_is_active() -> None:
    now = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    role = "arn:aws-cn:iam::111122223333:role/vendor/PumpCustomerAccess"
    pending = AccessRequest(
        id="01JREQUEST",
        role_arn=role,
        principal_arn="arn:aws-cn:iam::222222222222:user/alice",
        duration=timedelta(hours=1),
        justification="rotate the CloudTrail bucket key",
        created_at=now,
    )
    active = pending.model_copy(
        update={"status": RequestStatus.ACTIVE, "starts_at": now, "expires_at": now + timedelta(hours=1)}
    )

    assert RequestView.of(pending).switch_url is None
    view = RequestView.of(active)
    assert view.switch_url == switch_role_url(role)
    assert view.access is not None
    assert view.access.console_url == view.switch_url
