"""Start-up of the commands a new user runs first, each as a fresh process: ``genseal screen
--prompt``, ``genseal verify FILE``, ``genseal generate`` on ``tiny``, and ``genseal serve`` until
``/readyz`` answers 200. Each is timed over ``--runs`` processes (median and p90), after one
warm-up run that fills the operating system's file cache (a first run after boot is slower).
The ``import_profile`` lists, per command, the modules whose import took longest (``python -X
importtime``), so the figures come with where the time goes.

Targets on the reference 2-core machine: verify ≤ 1 s, screen ≤ 2 s, generate ≤ 5 s, serve
ready ≤ 20 s.

    python -m bench.startup [--runs N]      or      genseal bench startup --runs N --json
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench._harness import measure, report

TARGETS_MS = {"screen": 2000, "verify": 1000, "generate": 5000, "serve": 20000}
_GENSEAL = [sys.executable, "-c", "from api.cli import main; main()"]
_DIFFUSERS_IMPORTS = [
    sys.executable,
    "-c",
    "import torch; from diffusers import StableDiffusionPipeline, UNet2DConditionModel; "
    "from transformers import CLIPTextModel",
]


def run(runs: int = 5) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="genseal-startup-") as scratch:
        workdir = Path(scratch)
        env = {**os.environ, "GENSEAL_HOME": str(workdir / "home")}
        out = workdir / "out"
        _check([*_GENSEAL, "generate", "a red fox", "--out", str(out)], env)  # identity, image
        sealed = str(next(out.glob("*.png")))
        commands = {
            "screen": [*_GENSEAL, "screen", "--prompt", "a red fox", "--json"],
            "verify": [*_GENSEAL, "verify", sealed, "--json"],
            "generate": [*_GENSEAL, "generate", "a red fox", "--out", str(out), "--json"],
        }
        results: dict[str, Any] = {}
        for name, command in commands.items():
            stats = measure(lambda command=command: _check(command, env), runs, warmup=1)
            results[name] = {**stats, "target_ms": TARGETS_MS[name], "met": _met(stats, name)}
            results[name]["import_profile"] = _import_profile(command, env)
        # What no generate on the diffusers backend can go below: the interpreter importing
        # torch, diffusers and transformers for a Stable Diffusion pipeline, nothing of genseal.
        floor = measure(lambda: _check(_DIFFUSERS_IMPORTS, env), runs, warmup=1)
        results["generate"]["diffusers_import_floor_ms"] = floor["median_ms"]
        serve = measure(lambda: _serve_ready(env), max(1, runs // 2), warmup=1)
        results["serve"] = {**serve, "target_ms": TARGETS_MS["serve"], "met": _met(serve, "serve")}
    headline = results["screen"]
    return report(
        "startup",
        {k: headline[k] for k in ("runs", "median_ms", "p90_ms", "min_ms", "max_ms")},
        headline_is="screen",
        commands=results,
    )


def _met(stats: dict[str, Any], name: str) -> bool:
    return bool(stats["median_ms"] <= TARGETS_MS[name])


def _check(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[3:])} exited {done.returncode}: {done.stderr}")


def _import_profile(command: list[str], env: dict[str, str], top: int = 8) -> list[dict[str, Any]]:
    """The slowest imports of one run, cumulative milliseconds (``python -X importtime``)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *command[1:]], env=env, capture_output=True, text=True
    )
    rows = []
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|(\s*)(\S+)", line)
        if match and len(match.group(2)) <= 3:  # top-level and first-level imports only
            rows.append({"module": match.group(3), "ms": round(int(match.group(1)) / 1000, 1)})
    return sorted(rows, key=lambda row: -row["ms"])[:top]


def _serve_ready(env: dict[str, str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [*_GENSEAL, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if server.poll() is not None:
                raise RuntimeError(f"genseal serve exited {server.returncode}")
            time.sleep(0.1)
        raise RuntimeError("genseal serve was not ready within 300 s")
    finally:
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    from bench._cli import main

    main(run)
