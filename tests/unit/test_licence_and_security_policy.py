"""The repository carries its licence (Apache-2.0) and a security policy true to the code (issue 12, §3)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trustgate.app import approval_links
from trustgate_local.template import load_template

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def test_the_licence_is_the_full_apache_2_0_text() -> None:
    text = (ROOT / "LICENSE").read_text()

    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    numbered = re.findall(r"^\s+(\d)\. (\w[\w ]+)\.", text, flags=re.MULTILINE)
    assert [title for _, title in numbered] == [
        "Definitions",
        "Grant of Copyright License",
        "Grant of Patent License",
        "Redistribution",
        "Submission of Contributions",
        "Trademarks",
        "Disclaimer of Warranty",
        "Limitation of Liability",
        "Accepting Warranty or Additional Liability",
    ]
    assert "END OF TERMS AND CONDITIONS" in text
    assert "http://www.apache.org/licenses/LICENSE-2.0" in text
    assert len(text.split()) > 1500  # the whole text, not a summary


def test_the_security_policy_says_how_to_report_and_what_is_protected() -> None:
    text = (ROOT / "SECURITY.md").read_text()

    assert "## Reporting a vulnerability" in text
    assert "never in a public issue" in text
    assert "## Threat model in brief" in text
    assert "What TrustGate protects" in text
    assert "**What it cannot protect against.**" in text


def test_the_security_policy_is_true_to_the_code() -> None:
    text = (ROOT / "SECURITY.md").read_text()
    template = load_template(ROOT / "template.yaml")

    assert f"{approval_links.TOKEN_BYTES * 8} random bits" in text
    schedules = [
        event["Properties"]["Schedule"]
        for event in template["Resources"]["ReconcileFunction"]["Properties"]["Events"].values()
    ]
    assert schedules == ["rate(5 minutes)"]
    assert "every 5 minutes" in text
    for parameter in re.findall(r"`([A-Z][A-Za-z]+)`", text):
        if parameter not in ("AWS_IAM", "TrustGateSessionGuard"):
            assert parameter in template["Parameters"], f"SECURITY.md names {parameter}, not a template parameter"
    for target, anchor in re.findall(r"\]\(([^)#]+)#?([^)]*)\)", text):
        path = ROOT / target
        assert path.is_file(), f"SECURITY.md links to {target}, which is not in the repository"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", path.read_text(), flags=re.MULTILINE)
            slugs = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
            assert anchor in slugs, f"SECURITY.md links to {target}#{anchor}, which has no such heading"


def test_the_readme_points_to_the_licence_and_the_security_policy() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "[LICENSE](LICENSE)" in readme
    assert "[SECURITY.md](SECURITY.md)" in readme
