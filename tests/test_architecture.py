"""The shape of the code as a contract: no package reaches into another's private modules, and
no module grows past what a reader takes in at once.

Which package may import which is checked by ``lint-imports`` (the contracts in
pyproject.toml); this test checks the other half of the layers: across packages, only public
names. A violation names the file, the line and the import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("genseal", "gen", "safety", "provenance", "api", "bench")
MAX_LINES = 600
# A longer module says why in its docstring's first lines, with these words.
_LONG_REASON = "longer than 600 lines because"


def _private_imports(path: Path, package: str) -> list[str]:
    """The imports in ``path`` (part of ``package``) of another package's private module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            parts = target.split(".")
            other = parts[0] in PACKAGES and parts[0] != package
            if other and any(_private(part) for part in parts[1:]):
                found.append(f"{path}:{node.lineno}: imports {target}")
                break
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_no_package_imports_another_packages_private_modules(package: str) -> None:
    violations = [
        violation
        for path in sorted((ROOT / package).rglob("*.py"))
        for violation in _private_imports(path, package)
    ]
    assert violations == [], "\n".join(violations)


def test_the_check_finds_a_private_import(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text("from safety._policy import Policy\nfrom safety import Policy\n")
    assert len(_private_imports(module, "gen")) == 1
    assert _private_imports(module, "safety") == []


def _private(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__")  # __version__ is public


@pytest.mark.parametrize("package", ["genseal", "gen", "safety", "provenance", "api"])
def test_modules_stay_short_or_say_why(package: str) -> None:
    long = []
    for path in sorted((ROOT / package).rglob("*.py")):
        lines = path.read_text().splitlines()
        if len(lines) > MAX_LINES and _LONG_REASON not in "\n".join(lines[:10]):
            long.append(f"{path}: {len(lines)} lines")
    assert long == [], "\n".join(long)


def test_lazily_exported_packages_ship_their_stubs() -> None:
    # A package whose __init__.py reads its names from __init__.pyi fails to import without it:
    # the stubs must go into the wheel, not only into a checkout.
    import tomllib

    lazy = [
        path.parent
        for path in ROOT.glob("*/**/__init__.py")
        if ".venv" not in path.parts and "attach_stub" in path.read_text(encoding="utf-8")
    ]
    assert lazy, "no package reads its exports from a stub"
    for package in lazy:
        assert (package / "__init__.pyi").is_file(), package
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "*.pyi" in config["tool"]["setuptools"]["package-data"]["*"]
