"""The docs stand alone: every link and every path they name is in the repository (issue 12, section 6)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "SECURITY.md", ROOT / "cli" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Documents that were never part of this repository; its own docs/api.md and the served OpenAPI are the contract.
OUTSIDE = ("shared/API.md", "DESIGN.md", "../shared")
LINK = re.compile(r"\]\(([^)\s]+)\)")
# A path in backquotes, with a directory and a file extension: `bench/prices.py`, `templates/editor-role.yaml`.
PATH = re.compile(r"`([\w.-]+(?:/[\w.-]+)+\.(?:py|md|yaml|yml|json|toml|txt|mjs|png))`")
PATH_BASES = (ROOT, ROOT / "layers" / "trustgate")  # `trustgate/app/sync.py` is the layer's package
GENERATED = (".trustgate/",)  # written by the local stack and the fuzz run, not kept in git


def _doc_ids() -> list[str]:
    return [str(doc.relative_to(ROOT)) for doc in DOCS]


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped (not `-` or `_`), spaces to hyphens."""
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+?)\s*$", markdown, flags=re.MULTILINE):
        slug = re.sub(r"[^\w -]", "", heading.lower()).replace(" ", "-")
        candidate, n = slug, 0
        while candidate in found:  # a repeated heading gets -1, -2, …
            n += 1
            candidate = f"{slug}-{n}"
        found.add(candidate)
    return found


def test_the_docs_are_all_there() -> None:
    assert all(doc.is_file() for doc in DOCS)
    assert ROOT / "docs" / "deploy.md" in DOCS


@pytest.mark.parametrize("doc", DOCS, ids=_doc_ids())
def test_every_relative_link_points_at_a_file_of_the_repository_and_an_existing_heading(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    for link in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", link):  # https:, mailto: — outside links are fine
            continue
        target, _, anchor = link.partition("#")
        path = (doc.parent / target).resolve() if target else doc
        assert path.is_relative_to(ROOT), f"{doc.name} links to {link}, outside the repository"
        assert path.exists(), f"{doc.name} links to {link}, which is not in the repository"
        if anchor and path.suffix == ".md":
            assert anchor in anchors(path.read_text(encoding="utf-8")), (
                f"{doc.name} links to {link}, but {path.name} has no such heading"
            )


@pytest.mark.parametrize("doc", DOCS, ids=_doc_ids())
def test_no_doc_mentions_documents_outside_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8").lower()
    for name in OUTSIDE:
        assert name.lower() not in text, f"{doc.name} mentions {name}, which is not part of this repository"


@pytest.mark.parametrize("doc", DOCS, ids=_doc_ids())
def test_every_path_a_doc_names_is_in_the_repository(doc: Path) -> None:
    for named in PATH.findall(doc.read_text(encoding="utf-8")):
        if named.startswith(GENERATED):
            continue
        assert any((base / named).exists() for base in PATH_BASES), f"{doc.name} names {named}, which does not exist"


def test_anchors_follow_githubs_rules() -> None:
    text = "# Identity: persons, not ARNs\n## 1. Where to deploy\n### The local stack (`make local`)\n## A\n## A\n"
    assert anchors(text) == {"identity-persons-not-arns", "1-where-to-deploy", "the-local-stack-make-local", "a", "a-1"}
