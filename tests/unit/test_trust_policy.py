"""The trust-policy engine, as a specification (pure: no AWS)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustgate.errors import InvalidPrincipalError, TrustPolicyFullError
from trustgate.trust_policy import (
    BASELINE_SID,
    NOBODY,
    Baseline,
    GrantConditions,
    GrantEntry,
    RenderSpec,
    grant_expiry_in,
    is_managed,
    policy_size,
    render_trust_policy,
    serialize,
    statements_of,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
ORG = "o-exampleorg12"
ALICE = "arn:aws:iam::222222222222:user/alice"
BOB = "arn:aws:iam::222222222222:user/bob"
SESSION = "arn:aws:sts::222222222222:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/alice@example.com"
VENDOR = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "PumpOrganizationAccess",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}},
        },
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"},
    ],
}


def grant(principal: str = ALICE, hours: float = 1) -> GrantEntry:
    return GrantEntry(principal, NOW + timedelta(hours=hours))


def test_render_keeps_unmanaged_statements_byte_for_byte() -> None:
    rendered = render_trust_policy(VENDOR, RenderSpec(grants=[grant()]), NOW)
    unmanaged = [s for s in statements_of(rendered) if not is_managed(s)]
    assert serialize({"S": unmanaged}) == serialize({"S": VENDOR["Statement"]})


def test_render_puts_grant_with_expiry_condition() -> None:
    rendered = render_trust_policy(VENDOR, RenderSpec(grants=[grant()]), NOW)
    statement = statements_of(rendered)[-1]
    assert statement["Principal"] == {"AWS": ALICE}
    assert statement["Condition"] == {"DateLessThan": {"aws:CurrentTime": "2026-11-26T11:00:00Z"}}
    assert statement["Sid"].startswith("TrustGateGrant")
    assert grant_expiry_in(rendered, ALICE) == NOW + timedelta(hours=1)


def test_render_groups_grants_with_the_same_expiry_into_one_statement() -> None:
    rendered = render_trust_policy(VENDOR, RenderSpec(grants=[grant(ALICE), grant(BOB)]), NOW)
    managed = [s for s in statements_of(rendered) if is_managed(s)]
    assert len(managed) == 1
    assert managed[0]["Principal"] == {"AWS": [ALICE, BOB]}


def test_render_keeps_a_principal_until_its_last_overlapping_grant_ends() -> None:
    rendered = render_trust_policy(VENDOR, RenderSpec(grants=[grant(ALICE, 1), grant(ALICE, 3)]), NOW)
    assert grant_expiry_in(rendered, ALICE) == NOW + timedelta(hours=3)
    assert sum(ALICE in serialize(s) for s in statements_of(rendered)) == 1


def test_render_drops_expired_grants() -> None:
    rendered = render_trust_policy(VENDOR, RenderSpec(grants=[grant(ALICE, -1)]), NOW)
    assert rendered == VENDOR


def test_render_names_an_assumed_role_session_principal() -> None:
    rendered = render_trust_policy(VENDOR, RenderSpec(grants=[grant(SESSION)]), NOW)
    assert grant_expiry_in(rendered, SESSION) is not None


@pytest.mark.parametrize(
    "principal",
    [
        "arn:aws:iam::222222222222:root",
        "*",
        "arn:aws-cn:iam::222222222222:user/alice",
        "arn:aws:iam::222222222222:role/SomeRole",
        "arn:aws:iam::222222222222:user/*",
        "222222222222",
    ],
)
def test_render_refuses_principals_that_may_never_be_granted(principal: str) -> None:
    with pytest.raises(InvalidPrincipalError):
        render_trust_policy(VENDOR, RenderSpec(grants=[grant(principal)]), NOW)


def test_render_refuses_wildcard_baseline_without_an_organization_id() -> None:
    with pytest.raises(InvalidPrincipalError, match="organization id"):
        render_trust_policy(VENDOR, RenderSpec(baseline=Baseline("organization", "")), NOW)


def test_organization_baseline_is_a_wildcard_bound_to_the_org() -> None:
    spec = RenderSpec(baseline=Baseline("organization", ORG), adopted_sids=frozenset({"PumpOrganizationAccess"}))
    rendered = render_trust_policy(VENDOR, spec, NOW)
    baseline = next(s for s in statements_of(rendered) if s.get("Sid") == BASELINE_SID)
    assert baseline["Principal"] == {"AWS": "*"}
    assert baseline["Condition"]["StringEquals"]["aws:PrincipalOrgID"] == ORG
    assert all(s.get("Sid") != "PumpOrganizationAccess" for s in statements_of(rendered))


def test_accounts_baseline_lists_account_roots_and_principals() -> None:
    spec = RenderSpec(baseline=Baseline("accounts", ORG, ("333333333333", BOB)))
    baseline = next(s for s in statements_of(render_trust_policy(VENDOR, spec, NOW)) if s.get("Sid") == BASELINE_SID)
    assert baseline["Principal"] == {"AWS": ["arn:aws:iam::222222222222:user/bob", "arn:aws:iam::333333333333:root"]}


def test_mode_none_renders_no_standing_access_and_drops_adopted_statements() -> None:
    spec = RenderSpec(baseline=Baseline("none", ORG), adopted_sids=frozenset({"PumpOrganizationAccess"}))
    rendered = render_trust_policy(VENDOR, spec, NOW)
    assert statements_of(rendered) == [VENDOR["Statement"][1]]


def test_adopted_statements_stay_when_trustgate_does_not_manage_standing_access() -> None:
    rendered = render_trust_policy(VENDOR, RenderSpec(adopted_sids=frozenset({"PumpOrganizationAccess"})), NOW)
    assert rendered == VENDOR


def test_mfa_ip_and_tag_conditions_are_rendered_on_grants() -> None:
    conditions = GrantConditions(True, ("203.0.113.0/24",), (("team", "platform"),))
    statement = statements_of(render_trust_policy(VENDOR, RenderSpec(grants=[grant()], conditions=conditions), NOW))[-1]
    assert statement["Condition"]["Bool"] == {"aws:MultiFactorAuthPresent": "true"}
    assert statement["Condition"]["IpAddress"] == {"aws:SourceIp": "203.0.113.0/24"}
    assert statement["Condition"]["StringEquals"] == {"aws:PrincipalTag/team": "platform"}
    assert "DateLessThan" in statement["Condition"]


def test_unique_id_principals_of_deleted_identities_are_pruned() -> None:
    live = copy.deepcopy(VENDOR)
    live["Statement"].append(
        {"Effect": "Allow", "Principal": {"AWS": ["AIDAEXAMPLEDELETED12", BOB]}, "Action": "sts:AssumeRole"}
    )
    live["Statement"].append(
        {"Effect": "Allow", "Principal": {"AWS": "AROAEXAMPLEDELETED12"}, "Action": "sts:AssumeRole"}
    )
    rendered = render_trust_policy(live, RenderSpec(), NOW)
    assert statements_of(rendered)[2]["Principal"] == {"AWS": BOB}
    assert len(statements_of(rendered)) == 3


def test_full_policy_raises_trust_policy_full_naming_the_quota() -> None:
    grants = [grant(f"arn:aws:iam::222222222222:user/person-{i:03d}-with-a-long-name", 1 + i / 7) for i in range(40)]
    with pytest.raises(TrustPolicyFullError) as raised:
        render_trust_policy(VENDOR, RenderSpec(grants=grants, quota=2048), NOW)
    assert raised.value.quota == 2048
    assert "2048" in raised.value.message


def test_expiry_bucketing_rounds_down_never_later_than_approved() -> None:
    # Distinct expiries a few seconds apart do not fit exactly, but do once rounded down to a minute.
    grants = [
        GrantEntry(f"arn:aws:iam::222222222222:user/p{i:02d}", NOW + timedelta(hours=2, seconds=i)) for i in range(20)
    ]
    exact_size = policy_size(render_trust_policy(VENDOR, RenderSpec(grants=grants, quota=100_000), NOW))
    rendered = render_trust_policy(VENDOR, RenderSpec(grants=grants, quota=exact_size - 1), NOW)
    for g in grants:
        expiry = grant_expiry_in(rendered, g.principal_arn)
        assert expiry is not None
        assert NOW < expiry <= g.expires_at


def test_a_role_nobody_may_assume_gets_an_explicit_deny_because_iam_needs_a_statement() -> None:
    spec = RenderSpec(baseline=Baseline("none", ORG), adopted_sids=frozenset({"PumpOrganizationAccess"}))
    only_vendor = {"Version": "2012-10-17", "Statement": [VENDOR["Statement"][0]]}
    empty = render_trust_policy(only_vendor, spec, NOW)
    assert statements_of(empty) == [NOBODY]
    with_grant = render_trust_policy(empty, RenderSpec(grants=[grant()], baseline=spec.baseline), NOW)
    assert [s["Effect"] for s in statements_of(with_grant)] == ["Allow"]


def test_policy_size_ignores_whitespace() -> None:
    assert policy_size({"a": "b c"}) == len('{"a":"bc"}')


# -- properties --------------------------------------------------------------------------------

names = st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)
accounts = st.sampled_from(["222222222222", "333333333333", "444444444444"])
principals = st.builds(lambda a, n: f"arn:aws:iam::{a}:user/{n}", accounts, names)
grant_entries = st.builds(
    lambda p, minutes: GrantEntry(p, NOW + timedelta(minutes=minutes)), principals, st.integers(-30, 24 * 60)
)
unmanaged = st.lists(
    st.builds(
        lambda sid, p: {"Sid": sid, "Effect": "Allow", "Principal": {"AWS": p}, "Action": "sts:AssumeRole"},
        st.from_regex(r"Vendor[A-Za-z0-9]{0,10}", fullmatch=True),
        principals,
    ),
    max_size=3,
)
specs = st.builds(
    lambda grants, mfa: RenderSpec(grants=grants, conditions=GrantConditions(require_mfa=mfa), quota=4096),
    st.lists(grant_entries, max_size=25),
    st.booleans(),
)


def doc(statements: list[dict[str, object]]) -> dict[str, object]:
    return {"Version": "2012-10-17", "Statement": statements}


@settings(max_examples=150, deadline=None)
@given(unmanaged, specs)
def test_property_unmanaged_statements_never_change(statements: list[dict[str, object]], spec: RenderSpec) -> None:
    try:
        rendered = render_trust_policy(doc(statements), spec, NOW)
    except TrustPolicyFullError:
        return
    assert [s for s in statements_of(rendered) if not is_managed(s)] == statements


@settings(max_examples=150, deadline=None)
@given(unmanaged, specs)
def test_property_rendering_is_idempotent(statements: list[dict[str, object]], spec: RenderSpec) -> None:
    try:
        once = render_trust_policy(doc(statements), spec, NOW)
    except TrustPolicyFullError:
        return
    assert render_trust_policy(once, spec, NOW) == once


@settings(max_examples=150, deadline=None)
@given(unmanaged.filter(bool), st.lists(grant_entries, min_size=1, max_size=10))
def test_property_add_then_remove_returns_the_original(
    statements: list[dict[str, object]], grants: list[GrantEntry]
) -> None:
    original = doc(statements)
    with_grants = render_trust_policy(original, RenderSpec(grants=grants, quota=4096), NOW)
    assert render_trust_policy(with_grants, RenderSpec(quota=4096), NOW) == original


@settings(max_examples=150, deadline=None)
@given(specs)
def test_property_every_grant_statement_carries_an_expiry(spec: RenderSpec) -> None:
    try:
        rendered = render_trust_policy(doc([]), spec, NOW)
    except TrustPolicyFullError:
        return
    for statement in statements_of(rendered):
        if statement == NOBODY:
            continue
        expiry = statement["Condition"]["DateLessThan"]["aws:CurrentTime"]
        assert expiry > "2026-11-26T10:00:00Z"
    live = {g.principal_arn for g in spec.grants if g.expires_at > NOW}
    assert {p for p in live if grant_expiry_in(rendered, p) is None} == set()


@settings(max_examples=150, deadline=None)
@given(st.lists(grant_entries, max_size=60), st.sampled_from([1024, 2048, 4096]))
def test_property_size_never_exceeds_the_quota(grants: list[GrantEntry], quota: int) -> None:
    try:
        rendered = render_trust_policy(VENDOR, RenderSpec(grants=grants, quota=quota), NOW)
    except TrustPolicyFullError:
        return
    assert policy_size(rendered) <= quota
