"""The dependency direction the README states, checked on every import in the code (function-level ones too):
`replay` → `edge` → `recorder`, `uploader` → `core`."""

from __future__ import annotations

import ast
from pathlib import Path

from core import REPO_ROOT

PACKAGES = ("core", "edge", "recorder", "uploader", "replay")
MAY_IMPORT = {
    "core": {"core"},
    "recorder": {"core", "recorder"},
    "uploader": {"core", "uploader"},
    "edge": {"core", "edge", "recorder", "uploader"},
    "replay": set(PACKAGES),
}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


def test_no_part_imports_one_to_its_left() -> None:
    wrong = [
        f"{path.relative_to(REPO_ROOT)} imports {', '.join(sorted(bad))}"
        for package in PACKAGES
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
        if (bad := imported_packages(path) - MAY_IMPORT[package])
    ]
    assert wrong == []


def test_the_check_sees_function_level_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from replay.cli import replay\n    import edge.config\n")
    assert imported_packages(module) == {"replay", "edge"}
