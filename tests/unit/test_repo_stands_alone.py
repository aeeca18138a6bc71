"""The repository stands on its own: a plain clone with nothing beside it has everything
its files refer to (issue 16). No file points at material outside the repository, every
`docs/...` path a comment or document names exists, and every relative Markdown link
lands on a file or folder inside it.

The files are those git tracks (`git ls-files`); without git (an exported tarball), every
file under the root except virtual environments, node_modules, caches and local state."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
THIS_FILE = Path(__file__).resolve()

# Folders a walk skips: not part of the repository, only of a working copy.
UNTRACKED_DIRS = frozenset(
    {".git", "node_modules", ".state", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
)
# Material that lived beside the checkout once and must never be referred to again.
OUTSIDE_WORDS = ("/work/shared", "handbook")
# `../shared` is fine only where it names a real path of the repository (e.g. a link
# from docs/ to the app's package, ../shared/graph.py); anywhere else it leaves the clone.
PARENT_SHARED = re.compile(r"(?:\.\./)+shared(?:/[^\s`'\")\]>,;]*)?")

# A path under docs/ named in any file (a comment citing `docs/graph-facts.md`, ...).
DOCS_PATH = re.compile(r"(?<![\w./-])docs/[\w./-]*[\w/]")

FENCE = re.compile(r"^\s*(```|~~~).*?^\s*\1", re.M | re.S)
CODE_SPAN = re.compile(r"`+[^`\n]*`+")
INLINE_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//|#)", re.I)


def repository_files(root: Path) -> list[Path]:
    """The tracked files of `root`, or every file under it when git cannot say."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"],  # noqa: S607 - git from PATH, as a developer runs it
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return list(_walk(root))
    names = [name for name in listed.decode("utf-8").split("\0") if name]
    return [root / name for name in names if (root / name).is_file()]


def _walk(root: Path) -> Iterable[Path]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in UNTRACKED_DIRS and not d.startswith(".venv")]
        for name in files:
            yield Path(folder) / name


def _lines(files: Iterable[Path]) -> Iterable[tuple[Path, int, str]]:
    """Every line of every text file but this one (whose examples are faults on purpose)."""
    for path in files:
        if path.resolve() == THIS_FILE:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary: no references to read
        for number, line in enumerate(text.splitlines(), start=1):
            yield path, number, line


def outside_references(root: Path, files: Iterable[Path]) -> list[str]:
    """`path:line: text` for every reference to something outside `root`."""
    found = []
    for path, number, line in _lines(files):
        lowered = line.lower()
        words = [w for w in OUTSIDE_WORDS if w in lowered]
        escaping = [
            m.group(0)
            for m in PARENT_SHARED.finditer(line)
            if not _inside(root, path.parent / m.group(0))
        ]
        if words or escaping:
            found.append(f"{path.relative_to(root)}:{number}: {line.strip()[:160]}")
    return found


def missing_doc_paths(root: Path, files: Iterable[Path]) -> list[str]:
    """`path:line: docs/...` for every path under docs/ that a file names and that is not there."""
    return [
        f"{path.relative_to(root)}:{number}: {named}"
        for path, number, line in _lines(files)
        for named in DOCS_PATH.findall(line)
        if not _inside(root, root / named)
    ]


def _inside(root: Path, target: Path) -> bool:
    resolved = target.resolve()
    return resolved.is_relative_to(root.resolve()) and resolved.exists()


def markdown_links(text: str) -> list[str]:
    """The link targets of a Markdown text, outside code blocks and code spans."""
    prose = CODE_SPAN.sub("", FENCE.sub("", text))
    return INLINE_LINK.findall(prose) + REFERENCE_LINK.findall(prose)


def broken_links(root: Path, documents: Iterable[Path]) -> list[str]:
    """`document: target` for every relative link that lands on nothing in `root`."""
    broken = []
    for document in documents:
        for target in markdown_links(document.read_text(encoding="utf-8")):
            if EXTERNAL.match(target):
                continue  # a URL, a mail address, or an anchor in the same page
            path = target.split("#", 1)[0].split("?", 1)[0]
            if not _inside(root, document.parent / path):
                broken.append(f"{document.relative_to(root)}: {target}")
    return broken


def documents_of(root: Path, files: Iterable[Path]) -> list[Path]:
    """README.md and every Markdown file under docs/."""
    docs = root / "docs"
    return sorted(
        f
        for f in files
        if f.suffix == ".md" and (f == root / "README.md" or f.is_relative_to(docs))
    )


def test_no_file_refers_to_anything_outside_the_repository() -> None:
    """No `../shared`, `/work/shared` or handbook reference in any tracked file."""
    problems = outside_references(REPO, repository_files(REPO))
    assert problems == [], "references outside the repository:\n" + "\n".join(problems)


def test_every_docs_path_a_file_names_exists() -> None:
    """A comment citing `docs/graph-facts.md, "Eventual consistency"` cites a real file."""
    problems = missing_doc_paths(REPO, repository_files(REPO))
    assert problems == [], "docs/ paths that do not exist:\n" + "\n".join(problems)


def test_every_relative_markdown_link_in_the_docs_resolves_inside_the_repository() -> None:
    """README.md's and docs/'s relative links land on a file or folder of the clone."""
    documents = documents_of(REPO, repository_files(REPO))
    assert REPO / "README.md" in documents
    assert REPO / "docs" / "contract.md" in documents
    problems = broken_links(REPO, documents)
    assert problems == [], "broken links:\n" + "\n".join(problems)


def test_the_checks_catch_outside_references_and_broken_links_without_git(
    tmp_path: Path,
) -> None:
    """In a folder git does not know, the walk finds planted faults and passes good ones."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "graph.py").write_text('# docs/facts.md, "Reads"; docs/gone-facts.md.\n')
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "x.md").write_text("see the handbook\n")
    (tmp_path / "README.md").write_text(
        "The contract is `../shared/handbook/contract.md`.\n"
        "[facts](docs/facts.md), [gone](docs/gone.md#top), [web](https://example.com)\n"
        "```\n[in a fence](nowhere.md)\n```\n"
    )
    (tmp_path / "docs" / "facts.md").write_text(
        "[package](../shared/graph.py) and [up](../README.md#the-contract)\n"
        "Excerpt: /work/shared/graph/x.yaml\n"
        "[missing]: ../shared/missing.py\n"
    )
    files = repository_files(tmp_path)
    assert tmp_path / "node_modules" / "x.md" not in files

    assert sorted(outside_references(tmp_path, files)) == [
        "README.md:1: The contract is `../shared/handbook/contract.md`.",
        "docs/facts.md:2: Excerpt: /work/shared/graph/x.yaml",
        "docs/facts.md:3: [missing]: ../shared/missing.py",
    ]
    assert sorted(missing_doc_paths(tmp_path, files)) == [
        "README.md:2: docs/gone.md",
        "shared/graph.py:1: docs/gone-facts.md",
    ]
    assert broken_links(tmp_path, documents_of(tmp_path, files)) == [
        "README.md: docs/gone.md#top",
        "docs/facts.md: ../shared/missing.py",
    ]
