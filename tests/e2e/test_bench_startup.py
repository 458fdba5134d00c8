"""The start-up benchmark's parts: a failing command is an error, and the import profile names
the modules a command spends its start on."""

from __future__ import annotations

import os

import pytest

from bench import BENCHMARKS
from bench.startup import _GENSEAL, _check, _import_profile


def test_it_is_a_benchmark_genseal_runs() -> None:
    assert "startup" in BENCHMARKS


def test_the_import_profile_names_the_slowest_imports(tmp_path: os.PathLike[str]) -> None:
    env = {**os.environ, "GENSEAL_HOME": str(tmp_path)}
    profile = _import_profile([*_GENSEAL, "--version"], env)
    assert profile and all(row["ms"] >= 0 for row in profile)
    assert profile == sorted(profile, key=lambda row: -row["ms"])
    assert any(row["module"].startswith("api") for row in profile)


def test_a_command_that_fails_is_an_error(tmp_path: os.PathLike[str]) -> None:
    env = {**os.environ, "GENSEAL_HOME": str(tmp_path)}
    with pytest.raises(RuntimeError, match="exited 2"):
        _check([*_GENSEAL, "verify", "/nonexistent.png"], env)
