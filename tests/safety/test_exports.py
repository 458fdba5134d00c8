"""`safety` and each of its sub-packages export, sorted, exactly the public names they define."""

from __future__ import annotations

import re
import types

import pytest

import safety
import safety.bias
import safety.faces
import safety.image
import safety.policy
import safety.prompt

PACKAGES = [safety, safety.bias, safety.faces, safety.image, safety.policy, safety.prompt]


def _order(name: str) -> tuple[int, list[int | str]]:
    """The order ruff keeps `__all__` in (RUF022): constants, then classes, then the rest; each
    in natural order (digits as numbers)."""
    kind = 0 if len(name) > 1 and name.isupper() else 1 if name[:1].isupper() else 2
    return kind, [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _sorted(names: list[str]) -> list[str]:
    return sorted(names, key=_order)


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_all_is_sorted_and_every_name_in_it_exists(package: types.ModuleType) -> None:
    assert package.__all__ == _sorted(package.__all__)
    for name in package.__all__:
        assert hasattr(package, name), name


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_all_names_every_public_member(package: types.ModuleType) -> None:
    public = [
        name
        for name, value in vars(package).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    ]
    assert package.__all__ == _sorted(public)
