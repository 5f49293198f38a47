"""The demo organization the local stack runs against, created in moto through the AWS APIs.

A management account holds the vendor's role `PumpCustomerAccess` with the vendor's default trust
(any principal of the organization), a member account holds the people (alice asks, bob and dave
approve, carol administers), and mallory lives in an account outside the organization.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from unittest import mock

import boto3
from moto.organizations import utils as organizations_ids

REGION = "us-east-1"
ORGANIZATION_ID = "o-exampleorg12"
MANAGEMENT_ACCOUNT = "123456789012"  # moto's default account: the local TrustGate is deployed here too
MEMBER_ACCOUNT = "222222222222"
OUTSIDER_ACCOUNT = "999999999999"
ROLE_NAME = "PumpCustomerAccess"
SECOND_ROLE_NAME = "PumpBillingAccess"  # a second vendor role, so a request can ask for several roles at once
PERMISSIONS_POLICY_NAME = "PumpCustomerManagementAccess"
SHARED_MAILBOX = "team@example.com"


@dataclass(frozen=True)
class Person:
    """Who the demo needs, and which AWS profile the local stack writes for them."""

    profile: str
    name: str
    account: str
    does: str


PEOPLE = (
    Person("requester", "alice", MEMBER_ACCOUNT, "asks for access"),
    Person("approver", "bob", MEMBER_ACCOUNT, "approves"),
    Person("approver2", "dave", MEMBER_ACCOUNT, "approves"),
    Person("admin", "carol", MEMBER_ACCOUNT, "administers TrustGate"),
    Person("outsider", "mallory", OUTSIDER_ACCOUNT, "is outside the organization"),
)


@dataclass(frozen=True)
class DemoUser:
    """An IAM user created in moto, with the access key the local API verifies signatures against."""

    profile: str
    name: str
    account: str
    arn: str
    user_id: str
    access_key_id: str
    secret_access_key: str
    does: str


@dataclass(frozen=True)
class DemoOrganization:
    organization_id: str
    management_account: str
    member_accounts: tuple[str, ...]
    outsider_account: str
    role_arn: str
    users: tuple[DemoUser, ...]
    second_role_arn: str = ""

    @property
    def accounts(self) -> tuple[str, ...]:
        """Every account of the organization (the management account first)."""
        return (self.management_account, *self.member_accounts)

    def user(self, profile_or_name: str) -> DemoUser:
        for user in self.users:
            if profile_or_name in (user.profile, user.name):
                return user
        raise KeyError(profile_or_name)

    def stack_parameters(self) -> dict[str, str]:
        """template.yaml parameters for this organization (durations down to one minute locally)."""
        return {
            "ManagedRoleArns": ",".join(arn for arn in (self.role_arn, self.second_role_arn) if arn),
            "OrganizationId": self.organization_id,
            "AllowedAccountIds": ",".join(self.accounts),
            "BootstrapAdmins": self.user("admin").arn,
            "DefaultApprovers": f"{self.user('approver').arn},{self.user('approver2').arn}",
            "MinDuration": "PT1M",
            # So break-glass can be tried here: still off for the role until an admin's policy names who may.
            "AllowBreakGlass": "true",
            # The shared mailbox: alarms and team copies, never a personal link (the outbox shows it as a subscriber).
            "NotificationEmail": SHARED_MAILBOX,
        }


def vendor_trust_policy(organization_id: str) -> dict[str, Any]:
    """The vendor's default: any principal of the organization may assume the role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PumpOrganizationAccess",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": organization_id}},
            }
        ],
    }


def vendor_permissions_policy() -> dict[str, Any]:
    """What the vendor says the role may do: organization-level services, no compute, no IAM or SSO."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OrganizationLevelServices",
                "Effect": "Allow",
                "Action": [
                    "cloudtrail:*",
                    "config:*",
                    "inspector2:*",
                    "ce:GetCostAllocationTag*",
                    "ce:ListCostAllocationTag*",
                    "ce:UpdateCostAllocationTagsStatus",
                    "ce:StartCostAllocationTagBackfill",
                    "organizations:Describe*",
                    "organizations:List*",
                ],
                "Resource": "*",
            },
            {
                "Sid": "NoCompute",
                "Effect": "Deny",
                "Action": [
                    "ec2:Run*",
                    "ec2:CreateFleet",
                    "ec2:RequestSpot*",
                    "lambda:Create*",
                    "ecs:Create*",
                    "ecs:RunTask",
                    "ecs:StartTask",
                    "eks:Create*",
                    "batch:Create*",
                    "lightsail:Create*",
                ],
                "Resource": "*",
            },
            {
                "Sid": "NoIdentityAdministration",
                "Effect": "Deny",
                "Action": ["iam:*", "sso:*", "sso-directory:*", "identitystore:*"],
                "Resource": "*",
            },
        ],
    }


@contextmanager
def _fixed_id(generator: str, value: str) -> Iterator[None]:
    # moto's Organizations makes random ids; fixed ones keep the printed commands, ARNs and docs stable.
    with mock.patch.object(organizations_ids, generator, return_value=value):
        yield


def _iam_in(session: boto3.Session, account: str) -> Any:
    """An IAM client acting in `account`: moto's documented multi-account switch (x-moto-account-id)."""
    client = session.client("iam")

    def add_account(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = account

    client.meta.events.register("before-sign.iam.*", add_account)
    return client


def seed_organization(session: boto3.Session) -> DemoOrganization:
    """Create the organization, the vendor's role and the demo users in moto (`session` = management account)."""
    organizations = session.client("organizations")
    with _fixed_id("make_random_org_id", ORGANIZATION_ID):
        organization_id = organizations.create_organization(FeatureSet="ALL")["Organization"]["Id"]
    with _fixed_id("make_random_account_id", MEMBER_ACCOUNT):
        member = organizations.create_account(Email="workloads@example.com", AccountName="Workloads")
    member_account = member["CreateAccountStatus"]["AccountId"]

    iam = session.client("iam")
    role = iam.create_role(
        RoleName=ROLE_NAME,
        Description="Pump's customer access to organization-level services in the management account",
        AssumeRolePolicyDocument=json.dumps(vendor_trust_policy(organization_id)),
    )["Role"]
    policy_arn = iam.create_policy(
        PolicyName=PERMISSIONS_POLICY_NAME, PolicyDocument=json.dumps(vendor_permissions_policy())
    )["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=ROLE_NAME, PolicyArn=policy_arn)
    second = iam.create_role(
        RoleName=SECOND_ROLE_NAME,
        Description="Pump's access to the organization's billing (a second managed role: multi-role requests)",
        AssumeRolePolicyDocument=json.dumps(vendor_trust_policy(organization_id)),
    )["Role"]

    users = []
    for person in PEOPLE:
        account = member_account if person.account == MEMBER_ACCOUNT else person.account
        people_iam = _iam_in(session, account)
        user = people_iam.create_user(UserName=person.name)["User"]
        key = people_iam.create_access_key(UserName=person.name)["AccessKey"]
        users.append(
            DemoUser(
                person.profile,
                person.name,
                account,
                user["Arn"],
                user["UserId"],
                key["AccessKeyId"],
                key["SecretAccessKey"],
                person.does,
            )
        )
    return DemoOrganization(
        organization_id=organization_id,
        management_account=session.client("sts").get_caller_identity()["Account"],
        member_accounts=(member_account,),
        outsider_account=OUTSIDER_ACCOUNT,
        role_arn=role["Arn"],
        users=tuple(users),
        second_role_arn=second["Arn"],
    )
