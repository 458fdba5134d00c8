"""`safety` and each of its sub-packages export, sorted, exactly the public names they define."""

from __future__ import annotations

import types

import pytest

import safety
import safety.bias
import safety.faces
import safety.image
import safety.policy
import safety.prompt
from tests._exports import exports_problems

PACKAGES = [safety, safety.bias, safety.faces, safety.image, safety.policy, safety.prompt]


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_all_names_exactly_the_public_members_in_order(package: types.ModuleType) -> None:
    assert exports_problems(package) == []
