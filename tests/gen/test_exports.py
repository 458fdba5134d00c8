"""`gen` and `gen.probe` export, in order, exactly the public names they define."""

from __future__ import annotations

import types

import pytest

import gen
import gen.probe
from tests._exports import exports_problems


@pytest.mark.parametrize("package", [gen, gen.probe], ids=lambda p: p.__name__)
def test_all_names_exactly_the_public_members_in_order(package: types.ModuleType) -> None:
    assert exports_problems(package) == []
