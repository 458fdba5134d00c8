"""`provenance` and each of its sub-packages export, in order, exactly the public names they
define."""

from __future__ import annotations

import types

import pytest

import provenance
import provenance.c2pa
import provenance.fingerprints
import provenance.identity
import provenance.store
import provenance.verify
import provenance.watermark
from tests._exports import exports_problems

PACKAGES = [
    provenance,
    provenance.c2pa,
    provenance.fingerprints,
    provenance.identity,
    provenance.store,
    provenance.verify,
    provenance.watermark,
]


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_all_names_exactly_the_public_members_in_order(package: types.ModuleType) -> None:
    assert exports_problems(package) == []
