"""The approval page in a real browser (headless Debian Chromium via Playwright) against the local stack.

alice asks over the SigV4-signed API; the approvers' links come from the local outbox, exactly as
they would arrive by email; bob and dave open them in Chromium. The page must work with JavaScript
switched off, so the approving context runs without it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, ViewportSize, sync_playwright

from tests.e2e.drive import ROLE, outbox, signed, wait_for
from trustgate.core.clock import parse_rfc3339
from trustgate.core.trust_policy import grant_expiry_in
from trustgate_local.server import LocalStack

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
# The README's pictures are refreshed only on request (TRUSTGATE_UPDATE_SCREENSHOTS=1), so a test run
# never dirties the work tree; otherwise they still get taken, into a temporary folder.
SCREENSHOTS = (
    ROOT / "docs" / "images"
    if os.environ.get("TRUSTGATE_UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.mkdtemp(prefix="trustgate-screenshots-"))
)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
JUSTIFICATION = "Rotate the CloudTrail bucket policy after the audit finding (OPS-1432)"
DESKTOP: ViewportSize = {"width": 1100, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `make system-deps` (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser profile without JavaScript: the page must work with forms alone."""
    context = browser.new_context(java_script_enabled=False, viewport=DESKTOP)
    yield context.new_page()
    context.close()


# -- helpers -------------------------------------------------------------------------------------


def ask_for_access(local: LocalStack) -> dict[str, Any]:
    """alice asks for an hour over the signed API, as the CLI would."""
    answer = signed(
        local, "requester", "POST", "/requests", {"role": ROLE, "duration": "PT1H", "justification": JUSTIFICATION}
    )
    assert answer.status == 201, answer.body
    assert answer.body["required_approvals"] == 1, "these tests expect the role's default policy (one approval)"
    return dict(answer.body)


def links_from_outbox(local: LocalStack, request_id: str) -> dict[str, str]:
    """Each approver's link, read from GET /_local/outbox as an approver reads their own mailbox."""

    def probe() -> dict[str, str]:
        items = outbox(local, request_id=request_id, event="approval.requested")
        links = {item["subscriber"]: item["link"] for item in items if item.get("link")}
        return links if len(links) >= 2 else {}

    return wait_for(probe, f"approval links for {request_id} in the outbox")


def request_of(local: LocalStack, request_id: str) -> dict[str, Any]:
    answer = signed(local, "requester", "GET", f"/requests/{request_id}")
    assert answer.status == 200, answer.body
    return dict(answer.body)


def trust_policy(local: LocalStack) -> dict[str, Any]:
    assert local.session is not None
    document = local.session.client("iam").get_role(RoleName=ROLE)["Role"]["AssumeRolePolicyDocument"]
    assert not isinstance(document, str)  # boto3 decodes the document; its stubs also allow the raw JSON
    return dict(document)


def csp_errors(page: Page) -> list[str]:
    """Console errors about the Content-Security-Policy (the inline style must be allowed by its hash)."""
    errors: list[str] = []

    def collect(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            errors.append(message.text)

    page.on("console", collect)
    return errors


# -- the tests -----------------------------------------------------------------------------------


def test_an_approver_opens_the_link_approves_and_the_trust_policy_gains_the_requester(
    local_stack: LocalStack, page: Page
) -> None:
    assert local_stack.organization is not None
    alice = local_stack.organization.user("requester").arn
    request_id = ask_for_access(local_stack)["id"]
    links = links_from_outbox(local_stack, request_id)
    violations = csp_errors(page)

    # GIVEN bob opens his link: the request in full, nothing decided yet
    response = page.goto(links["bob"])

    assert response is not None
    assert response.status == 200
    assert page.get_by_role("heading", level=1).inner_text() == "Approve access to PumpCustomerAccess?"
    body = page.inner_text("body")
    assert JUSTIFICATION in body
    assert alice in body
    assert "0 of 1 needed" in body
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "approval-page.png"), full_page=True)
    assert request_of(local_stack, request_id)["status"] == "pending"  # opening the page decided nothing

    # WHEN he comments and clicks Approve
    page.fill("textarea[name=comment]", "Checked OPS-1432; go ahead.")
    with page.expect_navigation():
        page.get_by_role("button", name="Approve").click()

    # THEN the result page says so, the request is active and the trust policy names alice until its expiry
    assert page.get_by_role("heading", level=1).inner_text() in ("Access granted", "Approved — 1 of 1 approvals")
    assert "Checked OPS-1432; go ahead." in page.inner_text("body")
    page.screenshot(path=str(SCREENSHOTS / "approval-result.png"), full_page=True)
    active = wait_for(
        lambda: (r := request_of(local_stack, request_id))["status"] == "active" and r, "the grant to be active"
    )
    assert grant_expiry_in(trust_policy(local_stack), alice) == parse_rfc3339(active["expires_at"])
    assert [(a["approver_arn"].rsplit("/", 1)[-1], a["decision"]) for a in active["approvals"]] == [("bob", "approve")]
    assert violations == []

    # AND dave's link, opened after bob decided, shows that nothing is left to do
    later = page.goto(links["dave"])
    assert later is not None
    assert later.status == 409
    assert page.get_by_role("heading", level=1).inner_text() == "This request was already decided"
    assert "already approved" in page.inner_text("body")
    page.screenshot(path=str(SCREENSHOTS / "approval-already-decided.png"), full_page=True)

    # AND bob's own link again (a reload, a mail scanner) is spent and changes nothing
    again = page.goto(links["bob"])
    assert again is not None
    assert again.status == 409
    assert request_of(local_stack, request_id)["approvals"] == active["approvals"]


def test_a_deny_with_a_comment_ends_the_request(local_stack: LocalStack, page: Page) -> None:
    request_id = ask_for_access(local_stack)["id"]
    links = links_from_outbox(local_stack, request_id)
    page.goto(links["dave"])

    page.fill("textarea[name=comment]", "Use the read-only role for this.")
    with page.expect_navigation():
        page.get_by_role("button", name="Deny").click()

    assert page.get_by_role("heading", level=1).inner_text() == "Denied"
    denied = request_of(local_stack, request_id)
    assert denied["status"] == "denied"
    assert denied["approvals"][0]["comment"] == "Use the read-only role for this."
    bobs = page.goto(links["bob"])
    assert bobs is not None
    assert bobs.status == 409


def test_the_page_fits_a_phone_and_reloading_it_decides_nothing(local_stack: LocalStack, browser: Browser) -> None:
    request_id = ask_for_access(local_stack)["id"]
    links = links_from_outbox(local_stack, request_id)
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    phone = context.new_page()
    try:
        for _ in range(5):  # a scanner, a preview pane, an impatient approver
            response = phone.goto(links["bob"])
            assert response is not None
            assert response.status == 200
        assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        box = phone.get_by_role("button", name="Approve").bounding_box()
        assert box is not None
        assert box["height"] >= 44  # a comfortable touch target
        phone.screenshot(path=str(SCREENSHOTS / "approval-page-phone.png"), full_page=True)
    finally:
        context.close()
    pending = request_of(local_stack, request_id)
    assert pending["status"] == "pending"
    assert pending["approvals"] == []


def test_a_form_on_another_site_cannot_decide(local_stack: LocalStack, page: Page, browser: Browser) -> None:
    """A page elsewhere that knows a link still cannot post to it: no CSRF value, and a foreign Origin."""
    request_id = ask_for_access(local_stack)["id"]
    links = links_from_outbox(local_stack, request_id)
    context = browser.new_context()
    attacker = context.new_page()
    try:
        # about:blank + set_content is an opaque origin: the browser sends `Origin: null`.
        attacker.set_content(
            f'<form method="post" action="{links["bob"]}">'
            '<input name="decision" value="approve"><button id="go">go</button></form>'
        )
        with attacker.expect_navigation():
            attacker.click("#go")
        assert "This form was sent from another site" in attacker.inner_text("body")
    finally:
        context.close()
    assert request_of(local_stack, request_id)["status"] == "pending"
    still = page.goto(links["bob"])  # nothing changed, so bob's link still works
    assert still is not None
    assert still.status == 200
