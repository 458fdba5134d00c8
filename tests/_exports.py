"""The exported-members check every package's test runs: ``__all__`` is in ruff's order, names
only what exists, and names every public member the package defines or imports."""

from __future__ import annotations

import ast
import re
import types
from pathlib import Path


def _order(name: str) -> tuple[int, list[int | str]]:
    """The order ruff keeps `__all__` in (RUF022): constants, then classes, then the rest; each
    in natural order (digits as numbers)."""
    kind = 0 if len(name) > 1 and name.isupper() else 1 if name[:1].isupper() else 2
    return kind, [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def exports_problems(package: types.ModuleType) -> list[str]:
    """What is wrong with ``package.__all__`` (empty when nothing is).

    A package that imports its names on first use declares them in ``__init__.pyi``: there the
    stub's ``__all__`` must be in order and hold exactly the names the package resolves.
    """
    exported = list(package.__all__)
    problems = []
    stub = _stub_exports(package)
    if stub is not None:
        if sorted(stub) != sorted(exported):
            problems.append(f"{package.__name__}: __init__.pyi's __all__ differs from its imports")
        exported = stub
    if exported != sorted(exported, key=_order):
        problems.append(f"{package.__name__}.__all__ is not in order")
    problems += [
        f"{name} is exported but missing" for name in exported if not hasattr(package, name)
    ]
    public = [
        name
        for name, value in vars(package).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    ]
    problems += [f"{name} is public but not in __all__" for name in public if name not in exported]
    return problems


def _stub_exports(package: types.ModuleType) -> list[str] | None:
    stub = Path(str(package.__file__)).with_suffix(".pyi")
    if not stub.is_file():
        return None
    for node in ast.parse(stub.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            return [str(ast.literal_eval(element)) for element in node.value.elts]  # type: ignore[attr-defined]
    return []
