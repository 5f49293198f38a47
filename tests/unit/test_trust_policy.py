"""The trust-policy engine, as a specification (pure: no AWS)."""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustgate.core.coverage import Coverage, GrantSpan, coverages_of
from trustgate.core.errors import InvalidPrincipalError, TrustPolicyFullError
from trustgate.core.identity import person_of
from trustgate.core.trust_policy import (
    BASELINE_SID,
    NOBODY,
    OWN_USER_NAME,
    USERS_SID,
    Baseline,
    Document,
    GrantConditions,
    RenderSpec,
    Statement,
    departed_principals,
    drift_in,
    grant_expiry_in,
    is_managed,
    policy_size,
    render_trust_policy,
    serialize,
    statements_of,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
KEEP = timedelta(hours=1)
H = timedelta(hours=1)
M = timedelta(minutes=1)
ORG = "o-exampleorg12"
ALICE = "arn:aws:iam::222222222222:user/alice"
BOB = "arn:aws:iam::222222222222:user/bob"
CAROL = "arn:aws:sts::222222222222:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/carol@example.com"
CAROL_READ = "arn:aws:sts::333333333333:assumed-role/AWSReservedSSO_ReadOnly_fedcba9876543210/carol@example.com"
DAVE = "arn:aws:sts::222222222222:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/dave"
SAML_DANA = "arn:aws:sts::222222222222:assumed-role/SamlEngineers/dana@example.com"
VENDOR: Document = {
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
# A role whose every statement TrustGate manages (mode none, nobody granted yet).
MANAGED_ONLY: Document = {"Version": "2012-10-17", "Statement": [NOBODY]}


def covering(*grants: tuple[str, float]) -> list[Coverage]:
    """Coverages as the sync derives them: each (principal ARN, hours from now) is a grant starting now."""
    spans = [GrantSpan(arn, NOW, NOW + timedelta(hours=hours), f"G{n}") for n, (arn, hours) in enumerate(grants)]
    return list(coverages_of(spans, NOW, KEEP).kept)


def managed(document: Document) -> list[Statement]:
    return [s for s in statements_of(document) if is_managed(s)]


def render(coverages: list[Coverage], live: Document = VENDOR, **spec: Any) -> Document:
    return render_trust_policy(live, RenderSpec(coverages=coverages, **spec), NOW)


# -- unmanaged statements ---------------------------------------------------------------------------


def test_render_trust_policy_with_grants_keeps_unmanaged_statements_byte_for_byte_and_in_order() -> None:
    rendered = render(covering((ALICE, 1), (CAROL, 2)))
    unmanaged = [s for s in statements_of(rendered) if not is_managed(s)]
    assert serialize({"S": unmanaged}) == serialize({"S": VENDOR["Statement"]})
    assert statements_of(rendered)[: len(unmanaged)] == unmanaged


def test_render_trust_policy_with_no_live_coverage_gives_back_the_live_document() -> None:
    ended = covering((ALICE, 1))
    later = NOW + 2 * H
    assert render_trust_policy(VENDOR, RenderSpec(coverages=ended), later) == VENDOR


def test_render_trust_policy_with_an_ended_but_guarded_coverage_renders_no_grant() -> None:
    # The coverage is still kept (for the session guard) but no longer live: the trust policy drops it.
    spans = [GrantSpan(ALICE, NOW - 2 * H, NOW - timedelta(minutes=1))]
    kept = coverages_of(spans, NOW, KEEP).kept
    assert len(kept) == 1
    assert render(list(kept)) == VENDOR


def test_render_trust_policy_with_unique_ids_of_deleted_identities_prunes_them() -> None:
    live = copy.deepcopy(VENDOR)
    live["Statement"].append(
        {"Effect": "Allow", "Principal": {"AWS": ["AIDAEXAMPLEDELETED12", BOB]}, "Action": "sts:AssumeRole"}
    )
    live["Statement"].append(
        {"Effect": "Allow", "Principal": {"AWS": "AROAEXAMPLEDELETED12"}, "Action": "sts:AssumeRole"}
    )
    rendered = render([], live)
    assert statements_of(rendered)[2]["Principal"] == {"AWS": BOB}
    assert len(statements_of(rendered)) == 3


# -- IAM users --------------------------------------------------------------------------------------


def test_render_trust_policy_with_an_iam_user_pins_the_session_name_to_their_user_name() -> None:
    rendered = render(covering((ALICE, 1)))
    assert managed(rendered) == [
        {
            "Sid": USERS_SID,
            "Effect": "Allow",
            "Principal": {"AWS": ALICE},
            "Action": "sts:AssumeRole",
            "Condition": {
                "DateLessThan": {"aws:CurrentTime": "2026-11-26T11:00:00Z"},
                "StringEquals": {"sts:RoleSessionName": "${aws:username}"},
            },
        }
    ]
    assert OWN_USER_NAME == "${aws:username}"
    assert grant_expiry_in(rendered, ALICE) == NOW + H


def test_render_trust_policy_with_iam_users_shares_one_statement_with_the_latest_end() -> None:
    rendered = render(covering((BOB, 1), (ALICE, 3), ("arn:aws:iam::333333333333:user/erin", 2)))
    statements = managed(rendered)
    assert len(statements) == 1
    assert statements[0]["Sid"] == USERS_SID
    assert statements[0]["Principal"] == {"AWS": [ALICE, BOB, "arn:aws:iam::333333333333:user/erin"]}
    assert statements[0]["Condition"]["DateLessThan"] == {"aws:CurrentTime": "2026-11-26T13:00:00Z"}
    assert grant_expiry_in(rendered, BOB) == NOW + 3 * H


def test_render_trust_policy_with_spread_expiries_writes_the_latest_to_the_second() -> None:
    # No bucketing any more: the statement's end is exact; each person's own end is the session guard's job.
    ends = [timedelta(hours=1, seconds=7), timedelta(hours=2, minutes=13, seconds=59)]
    spans = [GrantSpan(arn, NOW, NOW + end) for arn, end in zip((ALICE, BOB), ends, strict=True)]
    rendered = render(list(coverages_of(spans, NOW, KEEP).kept))
    assert managed(rendered)[0]["Condition"]["DateLessThan"] == {"aws:CurrentTime": "2026-11-26T12:13:59Z"}


def test_render_trust_policy_with_overlapping_grants_of_one_user_names_them_once_until_the_last_end() -> None:
    rendered = render(covering((ALICE, 1), (ALICE, 3)))
    assert grant_expiry_in(rendered, ALICE) == NOW + 3 * H
    assert sum(ALICE in serialize(s) for s in statements_of(rendered)) == 1


# -- other persons ----------------------------------------------------------------------------------


def test_render_trust_policy_with_identity_center_persons_gives_one_pinned_statement_each() -> None:
    rendered = render(covering((DAVE, 2), (CAROL, 1)))
    assert managed(rendered) == [
        {
            "Sid": "TrustGateGrantSession1",
            "Effect": "Allow",
            "Principal": {"AWS": CAROL},
            "Action": "sts:AssumeRole",
            "Condition": {
                "DateLessThan": {"aws:CurrentTime": "2026-11-26T11:00:00Z"},
                "StringEquals": {"sts:RoleSessionName": "carol@example.com"},
            },
        },
        {
            "Sid": "TrustGateGrantSession2",
            "Effect": "Allow",
            "Principal": {"AWS": DAVE},
            "Action": "sts:AssumeRole",
            "Condition": {
                "DateLessThan": {"aws:CurrentTime": "2026-11-26T12:00:00Z"},
                "StringEquals": {"sts:RoleSessionName": "dave"},
            },
        },
    ]


def test_render_trust_policy_with_one_identity_center_person_in_two_permission_sets_lists_both_arns() -> None:
    rendered = render(covering((CAROL, 1), (CAROL_READ, 2)))
    statements = managed(rendered)
    assert len(statements) == 1
    assert statements[0]["Principal"] == {"AWS": sorted([CAROL, CAROL_READ])}
    assert statements[0]["Condition"]["StringEquals"] == {"sts:RoleSessionName": "carol@example.com"}
    assert grant_expiry_in(rendered, CAROL) == grant_expiry_in(rendered, CAROL_READ) == NOW + 2 * H


def test_render_trust_policy_with_users_and_sessions_puts_the_users_statement_first() -> None:
    rendered = render(covering((SAML_DANA, 1), (ALICE, 1), (CAROL, 1)))
    assert [s["Sid"] for s in managed(rendered)] == [USERS_SID, "TrustGateGrantSession1", "TrustGateGrantSession2"]
    pins = [s["Condition"]["StringEquals"]["sts:RoleSessionName"] for s in managed(rendered)]
    assert pins == ["${aws:username}", "carol@example.com", "dana@example.com"]  # sessions ordered by person key


def test_render_trust_policy_with_coverages_in_any_order_renders_the_same_document() -> None:
    coverages = covering((SAML_DANA, 1), (ALICE, 2), (CAROL, 3), (BOB, 4), (DAVE, 5))
    shuffled = list(coverages)
    random.Random(7).shuffle(shuffled)
    assert render(shuffled) == render(coverages)


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
def test_render_trust_policy_with_a_principal_that_may_never_be_granted_is_refused(principal: str) -> None:
    coverage = Coverage(person_of(ALICE), (principal,), NOW, NOW + H)
    with pytest.raises(InvalidPrincipalError):
        render([coverage])


def test_render_trust_policy_with_a_principal_of_another_partition_is_refused() -> None:
    with pytest.raises(InvalidPrincipalError, match="partition"):
        render(covering((ALICE, 1)), partition="aws-us-gov")


# -- baseline ---------------------------------------------------------------------------------------


def test_render_trust_policy_with_organization_baseline_without_org_id_refuses_the_wildcard() -> None:
    with pytest.raises(InvalidPrincipalError, match="organization id"):
        render([], baseline=Baseline("organization", ""))


def test_render_trust_policy_with_organization_baseline_binds_the_wildcard_to_the_org() -> None:
    rendered = render([], baseline=Baseline("organization", ORG), adopted_sids=frozenset({"PumpOrganizationAccess"}))
    baseline = next(s for s in statements_of(rendered) if s.get("Sid") == BASELINE_SID)
    assert baseline["Principal"] == {"AWS": "*"}
    assert baseline["Condition"]["StringEquals"]["aws:PrincipalOrgID"] == ORG
    assert all(s.get("Sid") != "PumpOrganizationAccess" for s in statements_of(rendered))


def test_render_trust_policy_with_accounts_baseline_lists_account_roots_and_principals() -> None:
    rendered = render([], baseline=Baseline("accounts", ORG, ("333333333333", BOB)))
    baseline = next(s for s in statements_of(rendered) if s.get("Sid") == BASELINE_SID)
    assert baseline["Principal"] == {"AWS": [BOB, "arn:aws:iam::333333333333:root"]}


def test_render_trust_policy_with_a_wildcard_standing_principal_is_refused() -> None:
    with pytest.raises(InvalidPrincipalError, match="wildcard"):
        render([], baseline=Baseline("accounts", ORG, ("arn:aws:iam::222222222222:user/*",)))


def test_render_trust_policy_with_mode_none_renders_no_standing_access_and_drops_adopted_statements() -> None:
    rendered = render([], baseline=Baseline("none", ORG), adopted_sids=frozenset({"PumpOrganizationAccess"}))
    assert statements_of(rendered) == [VENDOR["Statement"][1]]


def test_render_trust_policy_with_no_baseline_keeps_adopted_statements() -> None:
    assert render([], adopted_sids=frozenset({"PumpOrganizationAccess"})) == VENDOR


def test_render_trust_policy_with_nobody_allowed_writes_an_explicit_deny_because_iam_needs_a_statement() -> None:
    baseline = Baseline("none", ORG)
    only_vendor = {"Version": "2012-10-17", "Statement": [VENDOR["Statement"][0]]}
    empty = render([], only_vendor, baseline=baseline, adopted_sids=frozenset({"PumpOrganizationAccess"}))
    assert statements_of(empty) == [NOBODY]
    with_grant = render(covering((ALICE, 1)), empty, baseline=baseline)
    assert [(s["Sid"], s["Effect"]) for s in statements_of(with_grant)] == [(USERS_SID, "Allow")]


# -- conditions -------------------------------------------------------------------------------------


def test_render_trust_policy_with_mfa_ip_and_tag_conditions_keeps_the_pin_and_expiry() -> None:
    conditions = GrantConditions(True, ("203.0.113.0/24",), (("team", "platform"),))
    for statement in managed(render(covering((ALICE, 1), (CAROL, 1)), conditions=conditions)):
        condition = statement["Condition"]
        assert condition["Bool"] == {"aws:MultiFactorAuthPresent": "true"}
        assert condition["IpAddress"] == {"aws:SourceIp": "203.0.113.0/24"}
        assert condition["StringEquals"]["aws:PrincipalTag/team"] == "platform"
        assert condition["StringEquals"]["sts:RoleSessionName"] in ("${aws:username}", "carol@example.com")
        assert "aws:CurrentTime" in condition["DateLessThan"]


# -- departures -------------------------------------------------------------------------------------


def test_departed_principals_with_a_user_dropped_from_the_shared_statement_is_let_go_now() -> None:
    # Alice ended at +1h but the users statement (until Bob's +3h end) let her in until this sync.
    before = render(covering((ALICE, 1), (BOB, 3)))
    after = render(covering((BOB, 3)))
    assert departed_principals(before, after, NOW + 2 * H) == {ALICE: NOW + 2 * H}


def test_departed_principals_after_the_statement_ended_is_that_end() -> None:
    before = render(covering((ALICE, 1), (BOB, 3)))
    assert departed_principals(before, render([]), NOW + 4 * H) == {ALICE: NOW + 3 * H, BOB: NOW + 3 * H}


def test_departed_principals_with_everyone_still_granted_is_empty() -> None:
    before = render(covering((ALICE, 1), (CAROL, 2)))
    assert departed_principals(before, before, NOW) == {}
    # still named, even with an earlier end: not a departure
    assert departed_principals(render(covering((ALICE, 3))), render(covering((ALICE, 1))), NOW) == {}


def test_departed_principals_with_nothing_granted_before_is_empty() -> None:
    assert departed_principals(VENDOR, render(covering((ALICE, 1))), NOW) == {}
    assert departed_principals(MANAGED_ONLY, MANAGED_ONLY, NOW) == {}


def test_departed_principals_with_sessions_names_each_arn_dropped_from_its_statement() -> None:
    before = render(covering((CAROL, 1), (CAROL_READ, 2), (DAVE, 2), (SAML_DANA, 3)))
    after = render(covering((CAROL_READ, 2), (SAML_DANA, 3)))
    # Carol's statement (both her ARNs) lasted until +2h; she keeps only CAROL_READ
    assert departed_principals(before, after, NOW + 30 * M) == {
        CAROL: NOW + 30 * M,
        DAVE: NOW + 30 * M,
    }
    assert departed_principals(before, after, NOW + 5 * H) == {CAROL: NOW + 2 * H, DAVE: NOW + 2 * H}


def test_departed_principals_with_a_user_turned_session_holder_keeps_the_users_statements_end() -> None:
    before = render(covering((ALICE, 1), (BOB, 2)))
    after = render(covering((BOB, 2), (CAROL, 1)))
    assert departed_principals(before, after, NOW + H) == {ALICE: NOW + H}


def test_departed_principals_counts_only_trustgates_grant_statements() -> None:
    vendor_bob = {"Effect": "Allow", "Principal": {"AWS": BOB}, "Action": "sts:AssumeRole"}
    live = copy.deepcopy(VENDOR)
    live["Statement"].append(vendor_bob)
    before = render(covering((ALICE, 1)), live, baseline=Baseline("accounts", ORG, (BOB,)))
    assert BOB in serialize(before)  # named by the baseline and by a hand-written statement
    after = render([], VENDOR, baseline=Baseline("accounts", ORG, ()))
    assert departed_principals(before, after, NOW) == {ALICE: NOW}
    # a principal only a hand-written (or baseline) statement names in `after` has still left TrustGate's grants
    after_with_alice = copy.deepcopy(VENDOR)
    after_with_alice["Statement"].append({"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "sts:AssumeRole"})
    assert departed_principals(before, after_with_alice, NOW) == {ALICE: NOW}
    baseline_alice = render([], VENDOR, baseline=Baseline("accounts", ORG, (ALICE,)))
    assert departed_principals(before, baseline_alice, NOW) == {ALICE: NOW}


def test_departed_principals_with_one_arn_in_two_grant_statements_takes_the_later_moment() -> None:
    def grant(sid: str, arn: str, until: str | None) -> dict[str, object]:
        statement: dict[str, object] = {
            "Sid": sid,
            "Effect": "Allow",
            "Principal": {"AWS": [arn]},
            "Action": "sts:AssumeRole",
        }
        if until is not None:
            statement["Condition"] = {"DateLessThan": {"aws:CurrentTime": until}}
        return statement

    before = {
        "Version": "2012-10-17",
        "Statement": [
            grant("TrustGateGrantSession1", CAROL, "2026-11-26T10:30:00Z"),
            grant("TrustGateGrantSession2", CAROL, "2026-11-26T11:15:00Z"),
            grant("TrustGateGrantSession3", DAVE, None),  # no end: it let him in until now
        ],
    }
    assert departed_principals(before, MANAGED_ONLY, NOW + 2 * H) == {CAROL: NOW + 75 * M, DAVE: NOW + 2 * H}
    assert departed_principals(before, MANAGED_ONLY, NOW + H) == {CAROL: NOW + H, DAVE: NOW + H}


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([ALICE, BOB, CAROL, CAROL_READ, DAVE, SAML_DANA]), st.integers(1, 8)), max_size=8
    ),
    st.integers(0, 600),
)
def test_departed_principals_with_any_grants_names_exactly_the_dropped_arns_until_no_later_than_now(
    grants: list[tuple[str, int]], minutes: int
) -> None:
    now = NOW + minutes * M
    before = render(covering(*grants))
    after = render(covering(*grants[: len(grants) // 2]))
    departed = departed_principals(before, after, now)
    named_before = {arn for arn, _ in grants}
    named_after = {arn for arn, _ in grants[: len(grants) // 2]}
    assert set(departed) == named_before - named_after
    for arn, until in departed.items():
        expiry = grant_expiry_in(before, arn)
        assert expiry is not None
        assert until == min(now, expiry)


def test_render_trust_policy_with_too_many_persons_raises_trust_policy_full_naming_the_quota() -> None:
    coverages = covering(
        *((f"arn:aws:iam::222222222222:user/person-{i:03d}-with-a-long-name", 1 + i / 7) for i in range(40))
    )
    with pytest.raises(TrustPolicyFullError) as raised:
        render(coverages, quota=2048)
    assert raised.value.quota == 2048
    assert raised.value.size > 2048
    assert "2048" in raised.value.message
    assert str(raised.value.size) in raised.value.message


def sixty_character_user(n: int) -> str:
    arn = f"arn:aws:iam::222222222222:user/person-{n:03d}-of-the-platform-team"
    return arn[:60]


def users_that_fit(count: int, live: dict[str, object], quota: int = 2048) -> bool:
    # Spread expiries: every user a different end, some 17 minutes and some seconds apart.
    spans = [
        GrantSpan(sixty_character_user(n), NOW, NOW + timedelta(minutes=15 + 17 * n, seconds=n)) for n in range(count)
    ]
    try:
        render(list(coverages_of(spans, NOW, KEEP).kept), live, quota=quota)
    except TrustPolicyFullError:
        return False
    return True


def test_render_trust_policy_with_25_iam_users_of_60_character_arns_and_spread_expiries_fits_2048() -> None:
    assert all(len(sixty_character_user(n)) == 60 for n in range(40))
    assert len({sixty_character_user(n) for n in range(40)}) == 40
    capacity = max(n for n in range(1, 60) if users_that_fit(n, MANAGED_ONLY))
    assert capacity >= 25  # measured: 28 in a role whose statements TrustGate manages entirely
    assert not users_that_fit(capacity + 1, MANAGED_ONLY)


def test_render_trust_policy_with_one_more_iam_user_grows_only_by_their_quoted_arn() -> None:
    # Whatever their expiry, users share one statement: each costs its ARN, two quotes and a comma.
    two = covering((ALICE, 1), (BOB, 2))
    three = covering((ALICE, 1), (BOB, 2), ("arn:aws:iam::222222222222:user/carlos", 1.5))
    growth = policy_size(render(three)) - policy_size(render(two))
    assert growth == len("arn:aws:iam::222222222222:user/carlos") + 3


def test_policy_size_with_whitespace_ignores_it() -> None:
    assert policy_size({"a": "b c"}) == len('{"a":"bc"}')


# -- properties -------------------------------------------------------------------------------------

names = st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)
accounts = st.sampled_from(["222222222222", "333333333333", "444444444444"])
permission_sets = st.sampled_from(["AWSReservedSSO_Admin_0123456789abcdef", "AWSReservedSSO_Read_fedcba9876543210"])
users = st.builds(lambda a, n: f"arn:aws:iam::{a}:user/{n}", accounts, names)
idc_sessions = st.builds(
    lambda a, r, n: f"arn:aws:sts::{a}:assumed-role/{r}/{n}@example.com", accounts, permission_sets, names
)
grant_spans = st.builds(
    lambda arn, start, length: GrantSpan(arn, NOW + timedelta(minutes=start), NOW + timedelta(minutes=start + length)),
    st.one_of(users, idc_sessions),
    st.integers(-120, 0),
    st.integers(1, 24 * 60),
)
coverage_lists = st.lists(grant_spans, max_size=25).map(lambda spans: list(coverages_of(spans, NOW, KEEP).kept))
unmanaged = st.lists(
    st.builds(
        lambda sid, p: {"Sid": sid, "Effect": "Allow", "Principal": {"AWS": p}, "Action": "sts:AssumeRole"},
        st.from_regex(r"Vendor[A-Za-z0-9]{0,10}", fullmatch=True),
        users,
    ),
    max_size=3,
)
specs = st.builds(
    lambda coverages, mfa: RenderSpec(coverages=coverages, conditions=GrantConditions(require_mfa=mfa), quota=4096),
    coverage_lists,
    st.booleans(),
)


def doc(statements: list[dict[str, object]]) -> dict[str, object]:
    return {"Version": "2012-10-17", "Statement": statements}


@settings(max_examples=150, deadline=None)
@given(unmanaged, specs)
def test_render_trust_policy_with_any_coverages_never_changes_unmanaged_statements(
    statements: list[dict[str, object]], spec: RenderSpec
) -> None:
    try:
        rendered = render_trust_policy(doc(statements), spec, NOW)
    except TrustPolicyFullError:
        return
    assert [s for s in statements_of(rendered) if not is_managed(s)] == statements


@settings(max_examples=150, deadline=None)
@given(unmanaged, specs)
def test_render_trust_policy_with_its_own_output_is_idempotent(
    statements: list[dict[str, object]], spec: RenderSpec
) -> None:
    try:
        once = render_trust_policy(doc(statements), spec, NOW)
    except TrustPolicyFullError:
        return
    assert render_trust_policy(once, spec, NOW) == once


@settings(max_examples=150, deadline=None)
@given(unmanaged.filter(bool), coverage_lists.filter(bool))
def test_render_trust_policy_with_coverages_added_then_removed_gives_back_the_original(
    statements: list[dict[str, object]], coverages: list[Coverage]
) -> None:
    original = doc(statements)
    try:
        with_grants = render_trust_policy(original, RenderSpec(coverages=coverages, quota=4096), NOW)
    except TrustPolicyFullError:
        return
    assert render_trust_policy(with_grants, RenderSpec(quota=4096), NOW) == original


@settings(max_examples=150, deadline=None)
@given(specs)
def test_render_trust_policy_with_any_coverages_pins_and_expires_every_grant_statement(spec: RenderSpec) -> None:
    try:
        rendered = render_trust_policy(doc([]), spec, NOW)
    except TrustPolicyFullError:
        return
    for statement in statements_of(rendered):
        if statement == NOBODY:
            continue
        assert statement["Effect"] == "Allow"
        assert statement["Condition"]["DateLessThan"]["aws:CurrentTime"] > "2026-11-26T10:00:00Z"
        pin = statement["Condition"]["StringEquals"]["sts:RoleSessionName"]
        assert (pin == "${aws:username}") is (statement["Sid"] == USERS_SID)
        assert pin
        assert not set(pin) & set("*?")
    live = [c for c in spec.coverages if c.is_live(NOW)]
    users_end = max((c.ends_at for c in live if c.person.kind == "iam_user"), default=None)
    for coverage in live:
        for arn in coverage.principal_arns:
            expected = users_end if coverage.person.kind == "iam_user" else coverage.ends_at
            assert grant_expiry_in(rendered, arn) == expected
        if coverage.person.kind != "iam_user":
            pinned = [
                s
                for s in statements_of(rendered)
                if s.get("Condition", {}).get("StringEquals", {}).get("sts:RoleSessionName")
                == coverage.person.session_name
            ]
            assert len(pinned) == 1
            assert set(coverage.principal_arns) == set(
                [pinned[0]["Principal"]["AWS"]]
                if isinstance(pinned[0]["Principal"]["AWS"], str)
                else pinned[0]["Principal"]["AWS"]
            )


@settings(max_examples=150, deadline=None)
@given(st.lists(grant_spans, max_size=60), st.sampled_from([1024, 2048, 4096]))
def test_render_trust_policy_with_any_quota_never_exceeds_it(spans: list[GrantSpan], quota: int) -> None:
    coverages = list(coverages_of(spans, NOW, KEEP).kept)
    unlimited = policy_size(render_trust_policy(VENDOR, RenderSpec(coverages=coverages, quota=100_000), NOW))
    if unlimited > quota:
        with pytest.raises(TrustPolicyFullError) as raised:
            render_trust_policy(VENDOR, RenderSpec(coverages=coverages, quota=quota), NOW)
        assert raised.value.size == unlimited
    else:
        assert policy_size(render_trust_policy(VENDOR, RenderSpec(coverages=coverages, quota=quota), NOW)) <= quota


# -- the record of hand-written statements, drift, and standing access that no longer renders ------------

BACKDOOR = {"Sid": "Backdoor", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
RECORD = tuple(copy.deepcopy(VENDOR["Statement"]))
TAKEN_OVER: dict[str, Any] = {"baseline": Baseline("none", ORG), "adopted_sids": frozenset({"PumpOrganizationAccess"})}


def test_with_a_record_a_statement_added_later_is_drift_and_is_not_rendered() -> None:
    live = {"Version": "2012-10-17", "Statement": [VENDOR["Statement"][1], BACKDOOR]}
    spec = RenderSpec(hand_written=RECORD, **TAKEN_OVER)
    assert drift_in(live, spec) == [BACKDOOR]
    assert statements_of(render_trust_policy(live, spec, NOW)) == [VENDOR["Statement"][1]]


def test_without_a_record_nothing_is_drift_and_every_hand_written_statement_stays() -> None:
    live = {"Version": "2012-10-17", "Statement": [*VENDOR["Statement"], BACKDOOR]}
    assert drift_in(live, RenderSpec()) == []
    assert render([], live) == live


def test_a_recorded_statement_that_lost_a_deleted_principal_is_still_the_recorded_one() -> None:
    recorded = {"Sid": "Partner", "Effect": "Allow", "Principal": {"AWS": [ALICE, BOB]}, "Action": "sts:AssumeRole"}
    as_iam_shows_it = {**recorded, "Principal": {"AWS": ["AIDAEXAMPLEDELETED12", BOB]}}
    live = {"Version": "2012-10-17", "Statement": [as_iam_shows_it]}
    spec = RenderSpec(hand_written=(recorded,), baseline=Baseline("none", ORG))
    assert drift_in(live, spec) == []
    assert statements_of(render_trust_policy(live, spec, NOW)) == [{**recorded, "Principal": {"AWS": BOB}}]
    widened = {**recorded, "Principal": {"AWS": [ALICE, BOB, "arn:aws:iam::999999999999:root"]}}
    assert drift_in({"Version": "2012-10-17", "Statement": [widened]}, spec) == [widened]


def test_an_adopted_statement_that_reappears_and_one_posing_as_trustgates_are_drift() -> None:
    forged = {**BACKDOOR, "Sid": "TrustGateSupport"}
    live = {"Version": "2012-10-17", "Statement": [*VENDOR["Statement"], forged]}
    spec = RenderSpec(hand_written=RECORD, **TAKEN_OVER)
    assert drift_in(live, spec) == [VENDOR["Statement"][0], forged]


def test_without_a_mode_the_record_restores_the_adopted_statements_in_their_order() -> None:
    live = {"Version": "2012-10-17", "Statement": [VENDOR["Statement"][1], NOBODY]}
    assert render([], live, hand_written=RECORD) == VENDOR


def test_a_baseline_that_no_longer_renders_is_held_to_what_iam_still_shows_of_the_policys_own_or_dropped() -> None:
    held = {  # as IAM shows it: the deleted user as a unique id, and a principal someone added by hand
        "Sid": BASELINE_SID,
        "Effect": "Allow",
        "Principal": {
            "AWS": ["AIDAEXAMPLEDELETED12", "arn:aws:iam::222222222222:root", "arn:aws:iam::999999999999:root"]
        },
        "Action": "sts:AssumeRole",
    }
    live = {"Version": "2012-10-17", "Statement": [held]}
    baseline = Baseline("accounts", ORG, ("222222222222", "arn:aws:iam::222222222222:user/gone"))
    rendered = render([], live, baseline=baseline, standing="held")
    assert statements_of(rendered) == [
        {
            **held,
            "Principal": {"AWS": "arn:aws:iam::222222222222:root"},  # the policy's own, still in IAM; nobody else
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}},  # and the policy's conditions, not IAM's
        }
    ]
    assert statements_of(render([], live, baseline=baseline, standing="none")) == [NOBODY]
    unrenderable = Baseline("accounts", ORG, ("arn:aws:iam::222222222222:user/*",))  # refused: nothing held
    assert statements_of(render([], live, baseline=unrenderable, standing="held")) == [NOBODY]


def test_an_accounts_baseline_keeps_standing_access_inside_the_organization() -> None:
    rendered = render([], baseline=Baseline("accounts", ORG, ("333333333333",)))
    baseline = next(s for s in statements_of(rendered) if s.get("Sid") == BASELINE_SID)
    assert baseline["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": ORG}}


def test_a_baseline_changed_by_hand_is_drift_and_the_render_restores_it() -> None:
    taken_over: dict[str, Any] = {
        "baseline": Baseline("accounts", ORG, ("333333333333",)),
        "adopted_sids": frozenset({"PumpOrganizationAccess"}),
    }
    spec = RenderSpec(hand_written=RECORD, **taken_over)
    managed = render([], VENDOR, hand_written=RECORD, **taken_over)
    assert drift_in(managed, spec) == []
    [baseline] = [s for s in statements_of(managed) if s.get("Sid") == BASELINE_SID]
    widened = {**baseline, "Principal": {"AWS": ["arn:aws:iam::333333333333:root", "arn:aws:iam::999999999999:root"]}}
    unconditioned = {k: v for k, v in baseline.items() if k != "Condition"}
    for tampered in (widened, unconditioned):
        live = {**managed, "Statement": [tampered if s is baseline else s for s in statements_of(managed)]}
        assert drift_in(live, spec) == [tampered]
        assert render([], live, hand_written=RECORD, **taken_over) == managed
    held = RenderSpec(hand_written=RECORD, standing="held", **taken_over)
    assert drift_in(managed, held) == []  # a fallback is reported as unrenderable, not as drift
