"""Every example in the README and docs runs, as a reader would run it.

Each page's fenced ``bash``, ``python`` and ``yaml`` blocks run in order in one scratch
directory (a page is a session: a later block may use what an earlier one made), with
``GENSEAL_HOME`` inside it and the files the examples name (``me.jpg``, ``photo.jpg``,
``image.png``, ``photos/``, ``partner.pem``, ``policies/``) put there first.

- ``bash``: the block runs under ``bash -eo pipefail``; a leading ``pip install … &&`` is
  dropped (the tests run in the installed genseal).
- ``python``: runs against a ``genseal serve``-equivalent server on a free port, with
  ``http://127.0.0.1:8000`` and the key placeholders (``sk-…``, ``<the key>``) replaced by the
  test server's address and a tenant's key.
- ``yaml``: a policy or tenant overlay is linted (``genseal policy lint``); a list of rules is
  linted as the rules of a copy of the default policy (in place of its rules of the same id).

A block that cannot run here says so on the line before it, with the reason:
``<!-- example: skip — needs … -->``. Blocks in other languages (console output, trees) are
not code.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests._media import photo

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"(?ms)^```(bash|python|yaml)\n(.*?)^```")
_SKIP = re.compile(r"<!-- example: skip — (.+?) -->\s*$")
_PIP = re.compile(r"^pip install [^\n&]*&&\s*")


@dataclass(frozen=True)
class Example:
    page: Path
    line: int
    language: str
    source: str
    skip: str | None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def examples(page: Path) -> list[Example]:
    text = page.read_text()
    found = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = _SKIP.search(before)
        line = text[: match.start()].count("\n") + 1
        found.append(
            Example(page, line, match.group(1), match.group(2), skip.group(1) if skip else None)
        )
    return found


def test_every_skipped_example_says_why() -> None:
    for page in PAGES:
        for match in re.finditer(r"<!-- example: skip(.*?)-->", page.read_text()):
            assert match.group(1).startswith(" — ") and len(match.group(1)) > 8, page


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, str]]:
    """A genseal API on a free port (the examples' 127.0.0.1:8000) and a tenant's key."""
    import tempfile

    from api.http import create_app
    from gen import SealedGenerationService
    from genseal.settings import Settings
    from tests.api.conftest import running

    with tempfile.TemporaryDirectory() as scratch:
        service = SealedGenerationService(Settings(home=Path(scratch) / "home"))
        app = create_app(service)
        key = app.state.genseal.tenants.create("examples").api_key
        with running(app) as url:
            yield url, key
        service.close()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One prepared workspace, copied for each page (sealing and keys once, not per page)."""
    path = tmp_path_factory.mktemp("examples")
    _prepare(path, _environment(path))
    return path


def _environment(path: Path) -> dict[str, str]:
    return {**os.environ, "GENSEAL_HOME": str(path / "home"), "NO_COLOR": "1", "COLUMNS": "200"}


def _prepare(path: Path, env: dict[str, str]) -> None:
    """The files the examples name."""
    for name, source in (("me.jpg", "astronaut"), ("photo.jpg", "astronaut")):
        (path / name).write_bytes(photo(source, size=384, fmt="JPEG"))
    (path / "landscape.png").write_bytes(photo("coffee", size=512))
    (path / "jane1.jpg").write_bytes(photo("astronaut", size=320, fmt="JPEG"))
    (path / "jane2.jpg").write_bytes(photo("astronaut", size=400, fmt="JPEG"))
    shutil.copytree(ROOT / "policies", path / "policies")
    genseal = [sys.executable, "-c", "from api.cli import main; main()"]
    sealed = path / "sealed"
    subprocess.run(
        [*genseal, "seal", str(path / "landscape.png"), "--out", str(sealed)],
        cwd=path,
        env=env,
        check=True,
        capture_output=True,
    )
    image = next(sealed.glob("*"))
    shutil.copy(image, path / "image.png")
    (path / "photos").mkdir()
    shutil.copy(image, path / "photos" / image.name)
    root = subprocess.run(
        [*genseal, "keys", "root"], cwd=path, env=env, check=True, capture_output=True
    )
    for name in ("partner.pem", "partner-root.pem"):
        (path / name).write_bytes(root.stdout)


def _run(
    example: Example, cwd: Path, env: dict[str, str], server: Any, scope: dict[str, Any]
) -> None:
    if example.language == "bash":
        script = _PIP.sub("", example.source)
        bin_dir = Path(sys.executable).parent
        env = {**env, "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"}
        done = subprocess.run(
            ["bash", "-eo", "pipefail", "-c", script],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"{example.where}\n{done.stdout}\n{done.stderr}"
    elif example.language == "python":
        url, key = server()
        source = example.source.replace("http://127.0.0.1:8000", url)
        source = source.replace('"sk-…"', repr(key)).replace('"<the key>"', repr(key))
        scope.setdefault("key", key)
        old = Path.cwd()
        os.chdir(cwd)
        try:
            exec(compile(source, example.where, "exec"), scope)
        finally:
            os.chdir(old)
    else:
        _lint_yaml(example, cwd, env)


def _lint_yaml(example: Example, cwd: Path, env: dict[str, str]) -> None:
    document = yaml.safe_load(example.source)
    if isinstance(document, list):  # rules: checked as rules of the default policy
        policy = yaml.safe_load((cwd / "policies" / "default.yaml").read_text())
        shown = {rule["id"] for rule in document}
        policy["rules"] = [r for r in policy["rules"] if r["id"] not in shown] + document
        target = cwd / "policies" / "example-rules.yaml"
        target.write_text(yaml.safe_dump(policy, sort_keys=False))
    else:
        tenants = cwd / "policies" / "tenants"
        tenants.mkdir(exist_ok=True)
        target = tenants / f"{document['id']}.yaml"
        target.write_text(example.source)
    done = subprocess.run(
        [sys.executable, "-c", "from api.cli import main; main()", "policy", "lint", str(target)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"{example.where}\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_the_page_s_examples_run(
    page: Path, tmp_path: Path, template: Path, request: pytest.FixtureRequest
) -> None:
    runnable = [example for example in examples(page) if example.skip is None]
    if not runnable:
        pytest.skip("no runnable example on this page")
    workspace = tmp_path / "workspace"
    shutil.copytree(template, workspace)
    env = _environment(workspace)
    scope: dict[str, Any] = {"__name__": "__example__"}
    for example in runnable:
        _run(example, workspace, env, lambda: request.getfixturevalue("server"), scope)
