"""The repository documents itself: nothing points outside it, links resolve, named tests exist."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from visurf.config.paths import ROOT

# Built from parts, so this file does not mention what it looks for.
OUTSIDE = ("../" + "shared", "DESIGN" + ".md", "DESIGN" + " §")
LINK = re.compile(r"\[[^\]]*\]\(([^)#\s]+)(?:#[^)]*)?\)")


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / line for line in out.splitlines() if (ROOT / line).is_file()]


def test_no_tracked_file_points_outside_the_repository():
    offenders = []
    for path in tracked_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:  # images and other binary files
            continue
        offenders += [f"{path.relative_to(ROOT)}: {word}" for word in OUTSIDE if word in text]
    assert not offenders, offenders


def markdown_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_docs_index_lists_every_page():
    index = (ROOT / "docs" / "README.md").read_text()
    for page in (ROOT / "docs").iterdir():
        if page.name != "README.md" and page.suffix in (".md", ".log"):
            assert f"]({page.name})" in index, page.name


def test_relative_links_in_the_docs_resolve():
    broken = []
    for page in markdown_pages():
        for target in LINK.findall(page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken


def test_the_tests_the_method_names_exist():
    named = set(re.findall(r"`(test_\w+)`", (ROOT / "docs" / "method.md").read_text()))
    defined = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        defined |= set(re.findall(r"^def (test_\w+)", path.read_text(), flags=re.M))
    assert len(named) >= 8 and not named - defined, sorted(named - defined)


def readme_map() -> list[str]:
    """The lines of the README's map of the repository (the code block under "The house")."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## The house") :]
    return section[section.index("```") + 3 : section.index("```", section.index("```") + 3)].splitlines()


def test_the_readme_map_matches_the_tree():
    lines = [line.strip() for line in readme_map() if line.strip()]
    named = {line.split()[0] for line in lines}
    tops = {p.relative_to(ROOT).parts[0] for p in tracked_files() if len(p.relative_to(ROOT).parts) > 1}
    tops = {f"{t}/" for t in tops if not t.startswith(".")}
    wings = {f"{p.parent.name}/" for p in (ROOT / "visurf").glob("*/__init__.py")}
    assert tops <= named, f"top-level folders missing from the README's map: {sorted(tops - named)}"
    assert wings <= named, f"visurf/ folders missing from the README's map: {sorted(wings - named)}"
    commands = {p.name for p in (ROOT / "visurf").glob("*.py") if p.name != "__init__.py"}
    entry = next(line for line in lines if line.startswith("run.py"))
    assert set(entry.split()[: len(commands)]) == commands, entry
    for name in named - {"run.py"}:  # nothing on the map that is not in the tree
        where = ROOT / "visurf" / name if f"{name}" in wings else ROOT / name
        assert where.exists(), f"the README's map names {name}, which does not exist"
