"""The README's Layout section names exactly the packages and modules that exist.

The Layout section is a table whose first column holds paths in backticks: a package
as its folder (``features/``), a module as its file (``features/contract.py``); a row
may name several modules that share a role. Every
path under one of the code roots must exist, and every package and module under those
roots must be listed, so the section cannot go stale. Paths are taken relative to the
repository root found from this file, never from the clone's absolute path.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE_ROOTS = ("features", "models", "pipelines", "serving", "synthetic")
_FIRST_CELL = re.compile(r"^\|([^|]*)\|")
_PATH = re.compile(r"`([^`]+)`")


def layout_section(readme: str) -> str:
    """The text of the README's ``## Layout`` section (up to the next ``## `` heading)."""
    match = re.search(r"^## Layout[ \t]*\n(.*?)(?=^## |\Z)", readme, re.MULTILINE | re.DOTALL)
    assert match is not None, "README.md has no '## Layout' section"
    return match.group(1)


def listed_paths(section: str) -> set[str]:
    """Paths in the first column of the section's table rows that sit under a code root."""
    cells = [m.group(1) for line in section.splitlines() if (m := _FIRST_CELL.match(line.strip()))]
    paths = {path for cell in cells for path in _PATH.findall(cell)}
    return {p for p in paths if p.split("/", 1)[0] in CODE_ROOTS}


def real_paths(root: Path) -> set[str]:
    """Packages (``folder/``, a folder with ``__init__.py``) and modules under the roots."""
    found: set[str] = set()
    for name in CODE_ROOTS:
        top = root / name
        if not top.is_dir():
            continue
        for path in top.rglob("*.py"):
            rel = path.relative_to(root)
            if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
                continue
            if path.name == "__init__.py":
                found.add(rel.parent.as_posix() + "/")
            else:
                found.add(rel.as_posix())
    return found


def test_layout_parser_reads_packages_and_modules_and_ignores_the_rest() -> None:
    section = layout_section(
        "# x\n\n## Layout\n\n| path | role |\n|---|---|\n| `features/` | pure |\n"
        "| `features/a.py` | a |\n| `features/c.py`, `features/d.py` | c, d |\n"
        "| `bench/` | not a code root |\n| x | `models/e.py` in a role |\n\n"
        "## Next\n| `models/b.py` | b |\n"
    )
    assert listed_paths(section) == {"features/", "features/a.py", "features/c.py", "features/d.py"}


def test_real_paths_sees_packages_as_folders(tmp_path: Path) -> None:
    pkg = tmp_path / "leadscore" / "serving" / "store"
    pkg.mkdir(parents=True)
    for path in (pkg / "__init__.py", pkg / "writer.py", pkg.parent / "__init__.py"):
        path.write_text("")
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "writer.py").write_text("")
    # a clone named "leadscore" (the obvious name) changes nothing: paths are relative
    assert real_paths(tmp_path / "leadscore") == {
        "serving/",
        "serving/store/",
        "serving/store/writer.py",
    }


def test_readme_layout_lists_every_module_and_nothing_else() -> None:
    listed = listed_paths(layout_section((ROOT / "README.md").read_text(encoding="utf-8")))
    real = real_paths(ROOT)
    missing = sorted(real - listed)
    extra = sorted(listed - real)
    assert not missing and not extra, (
        "README.md's Layout section is out of date.\n"
        + "".join(f"missing (add a row): `{p}`\n" for p in missing)
        + "".join(f"extra (no such package/module, remove the row): `{p}`\n" for p in extra)
    )


def test_readme_stays_a_users_readme() -> None:
    """Research and long tables live in docs/ and bench/README.md; the README stays short."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines (<= 250): move detail to docs/"
