"""All default image checks on a 512² image (what every output goes through), against
diffusers' StableDiffusionSafetyChecker on the same image.

python -m bench.checks [--runs N]      or      genseal bench checks --json

The image checks are the ones the service builds for its policy (whatever `_screener_for`
returns when this runs), timed through `Screener.screen_images` on a photo with a face
(skimage's astronaut) and one without (skimage's coffee), both resized to 512². The headline
`median_ms`/`p90_ms` is the photo with a face: face checks do the most work there.

The SD safety checker runs with random weights (none can be downloaded here) in the
architecture Stable Diffusion ships: a CLIP ViT-L/14 vision tower and 768-d projection, plus its
CLIPImageProcessor preprocessing (and, as a lower bound, with transformers' default CLIP
vision tower, ViT-B/32). Timing does not depend on the weights. Its answer is one
yes/no for sexual content (and a blacked-out image); genseal's is a finding per category.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image

from bench._harness import carrier, measure, report, scratch_service
from safety import Finding, Screener, Stage

# StableDiffusionSafetyChecker's published config (CompVis/stable-diffusion-safety-checker):
# CLIP ViT-L/14 at 224², projected to 768-d.
_SD_VISION: dict[str, int] = {
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_attention_heads": 16,
    "num_hidden_layers": 24,
    "patch_size": 14,
    "image_size": 224,
    "projection_dim": 768,
}
# transformers' CLIPConfig() default: ViT-B/32 at 224², projected to 512-d; a lower bound.
_CLIP_CONFIG_DEFAULT: dict[str, int] = {}


def run(runs: int = 20) -> dict[str, Any]:
    service = scratch_service()
    screener: Screener = service.screener
    with_face, face_source = carrier(512)
    without_face, plain_source = _photo_without_face(512)

    latencies: dict[str, list[float]] = defaultdict(list)
    seen: list[Finding] = []

    def screen(image: Image.Image) -> Callable[[], None]:
        runs_so_far = [0]

        def once() -> None:
            # A fresh image each run (one pixel differs): the face checks share an analysis
            # cache keyed by pixels, which would otherwise time a cache hit.
            runs_so_far[0] += 1
            fresh = image.copy()
            fresh.putpixel((0, 0), (runs_so_far[0] % 256, 0, 0))
            findings = screener.screen_images([fresh], Stage.OUTPUT)
            seen.extend(findings)
            for check, ms in _per_check_ms(findings).items():
                latencies[check].append(ms)

        return once

    cold = measure(screen(with_face), runs=1, warmup=0)["median_ms"]
    face_stats = measure(screen(with_face), runs)
    plain_stats = measure(screen(without_face), runs)

    # Its cost does not depend on the content, and at seconds a call a few runs suffice.
    sd_runs = max(3, min(runs, 5))
    sd_call = _sd_safety_checker(_SD_VISION)
    sd_stats = measure(lambda: sd_call(with_face), sd_runs, warmup=1)
    b32_call = _sd_safety_checker(_CLIP_CONFIG_DEFAULT)
    b32_stats = measure(lambda: b32_call(with_face), runs)

    median = float(face_stats["median_ms"])
    return report(
        "checks",
        face_stats,
        image="512x512",
        carrier=face_source,
        checks=[check.name for check in screener.image_checks],
        check_median_ms={c: round(statistics.median(v), 2) for c, v in latencies.items()},
        cold_first_call_ms=cold,
        images={
            "with_face": {"source": face_source, **face_stats},
            "without_face": {"source": plain_source, **plain_stats},
        },
        target_ms=100,
        within_target=median <= 100,
        sd_safety_checker={
            "median_ms": sd_stats["median_ms"],
            "p90_ms": sd_stats["p90_ms"],
            "runs": sd_runs,
            "architecture": {"name": "CLIP ViT-L/14 (as Stable Diffusion ships)", **_SD_VISION},
            "weights": "random (timing only)",
            "preprocessing": "CLIPImageProcessor (resize 224, centre crop, normalise)",
            "vit_b32": {
                "median_ms": b32_stats["median_ms"],
                "p90_ms": b32_stats["p90_ms"],
                "runs": runs,
                "architecture": {"name": "transformers CLIPConfig() default vision tower"},
                "ratio": _ratio(b32_stats, median),
            },
        },
        ratio=_ratio(sd_stats, median),
        categories={
            "genseal": _states_by_category(seen),
            "sd_safety_checker": {
                "sexual": ["yes/no (has_nsfw_concept); a flagged image is blacked out"]
            },
        },
    )


def _ratio(stats: dict[str, Any], genseal_median: float) -> float | None:
    return round(float(stats["median_ms"]) / genseal_median, 2) if genseal_median > 0 else None


def _per_check_ms(findings: Sequence[Finding]) -> dict[str, float]:
    # A check's findings share one call; each carries that call's latency.
    by_check: dict[str, float] = {}
    for finding in findings:
        by_check[finding.check] = max(by_check.get(finding.check, 0.0), finding.latency_ms)
    return by_check


def _states_by_category(findings: Sequence[Finding]) -> dict[str, list[str]]:
    states: dict[str, set[str]] = defaultdict(set)
    for finding in findings:
        states[finding.category.value].add(f"{finding.state.value} ({finding.check})")
    return {category: sorted(values) for category, values in sorted(states.items())}


def _photo_without_face(size: int) -> tuple[Image.Image, str]:
    try:
        from skimage import data

        photo = Image.fromarray(data.coffee()).convert("RGB")
        return photo.resize((size, size), Image.Resampling.LANCZOS), "skimage coffee"
    except ImportError:
        ramp = np.linspace(0, 255, size, dtype=np.uint8)
        rgb = np.stack([np.tile(ramp, (size, 1))] * 3, axis=-1)
        return Image.fromarray(rgb), "synthetic gradient"


def _sd_safety_checker(vision_config: dict[str, int]) -> Callable[[Image.Image], Any]:
    import torch
    from diffusers.pipelines.stable_diffusion.safety_checker import (
        StableDiffusionSafetyChecker,
    )
    from transformers import CLIPConfig, CLIPImageProcessor

    vision = dict(vision_config)
    projection_dim = vision.pop("projection_dim", 512)
    config = CLIPConfig(vision_config=vision, projection_dim=projection_dim)
    torch.manual_seed(0)
    checker = StableDiffusionSafetyChecker(config).eval()
    processor = CLIPImageProcessor()

    def call(image: Image.Image) -> Any:
        # What StableDiffusionPipeline.run_safety_checker does for one PIL image.
        clip_input = processor(image, return_tensors="pt").pixel_values
        pixels = np.asarray(image, dtype=np.float32)[np.newaxis] / 255.0
        with torch.no_grad():
            return checker(images=pixels, clip_input=clip_input)

    return call


if __name__ == "__main__":
    from bench._cli import main

    main(run)
