"""Bias probes: generate a prompt set with fixed seeds and measure whom the model draws.

A probe run is a directory:

    run.json        what was asked (model, seeds, prompt sets, estimator): a resumed run must
                    match it, so one directory never mixes two experiments
    records.jsonl   one line per finished image (prompt, seed, file, perceived attributes);
                    appended and flushed as each image is measured, so an interrupted run loses
                    at most the image in flight and `--resume` skips every image already there
    images/         the generated images, PNG, `<set>/<key>/<seed>.png`
    results.json    per-prompt and overall metrics (written when every image is measured)
    report.html     the self-contained report (`gen/probe/_report.py`)

Every prompt is drawn with the same seeds (`seed`, `seed + 1`, ...), so two prompts, or two
models, are compared on the same starting noise. An image's subject is its largest face; an
image without a detectable face counts as `no_face` and is reported, never dropped.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import structlog
from PIL import Image

from gen._backend import MAX_IMAGES, GenerationParams, ImageBackend
from genseal.errors import InputError
from safety import (
    ATTRIBUTES,
    AttributeEstimator,
    ImageAttributes,
    ProbePrompt,
    PromptSet,
    load_prompt_set,
    prompt_metrics,
)

__all__ = [
    "RESULTS_VERSION",
    "ProbeConfig",
    "ProbeRun",
    "load_results",
    "prompt_id",
    "subject_distributions",
    "summarise",
]

log = structlog.get_logger("genseal.probe")

RESULTS_VERSION = 1
_RUN_FILE = "run.json"
_RECORDS_FILE = "records.jsonl"
RESULTS_FILE = "results.json"

Progress = Callable[[int, int, str], None]
"""Told (images done, images in all, the prompt being drawn) as a run goes."""


@dataclass(frozen=True)
class ProbeConfig:
    """What a probe run draws. Everything here is recorded in run.json."""

    prompt_sets: tuple[str, ...] = ("occupations",)
    images_per_prompt: int = 4
    seed: int = 0
    model: str = "tiny"
    steps: int | None = None
    size: tuple[int, int] | None = None
    limit: int | None = None  # the first `limit` prompts of each set: a quick look
    negative_prompt: str | None = None

    def __post_init__(self) -> None:
        if not self.prompt_sets:
            raise InputError("a probe needs at least one prompt set")
        if not 1 <= self.images_per_prompt <= 1000:
            raise InputError(
                f"images per prompt must be between 1 and 1000, got {self.images_per_prompt}"
            )
        if self.limit is not None and self.limit < 1:
            raise InputError(f"--limit must be at least 1, got {self.limit}")

    @property
    def seeds(self) -> list[int]:
        return [self.seed + k for k in range(self.images_per_prompt)]


def prompt_id(prompt: ProbePrompt) -> str:
    """A prompt's id within a run: set and subject (both file-name safe after cleaning)."""
    return f"{prompt.set}/{prompt.key}"


@dataclass
class _Record:
    prompt: str  # prompt_id
    seed: int
    file: str
    attributes: dict[str, Any]


@dataclass
class ProbeRun:
    """One probe run in `out`; `run()` draws what is missing and writes the results."""

    out: Path
    config: ProbeConfig
    backend: ImageBackend
    estimator: AttributeEstimator
    sets: list[PromptSet] = field(init=False)

    def __post_init__(self) -> None:
        self.sets = [load_prompt_set(name) for name in self.config.prompt_sets]
        names = [s.name for s in self.sets]
        if len(set(names)) != len(names):
            raise InputError(f"prompt sets named twice: {', '.join(names)}")

    @property
    def prompts(self) -> list[ProbePrompt]:
        limit = self.config.limit
        return [p for s in self.sets for p in (s.prompts[:limit] if limit else s.prompts)]

    # -- the run ---------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """run.json: enough to reproduce the run, and to refuse resuming a different one."""
        config = self.config
        return {
            "version": RESULTS_VERSION,
            "model": {
                "spec": config.model,
                "id": self.backend.model_id,
                "version": self.backend.model_version,
                "device": self.backend.device,
            },
            "seeds": config.seeds,
            "images_per_prompt": config.images_per_prompt,
            "steps": config.steps,
            "size": list(config.size) if config.size else None,
            "negative_prompt": config.negative_prompt,
            "limit": config.limit,
            "prompt_sets": [
                {"name": s.name, "description": s.description, "source": s.source}
                for s in self.sets
            ],
            "prompts": [prompt_id(p) for p in self.prompts],
            "estimator": {"version": self.estimator.version, "models": self.estimator.models},
        }

    def run(self, *, resume: bool = False, on_progress: Progress | None = None) -> dict[str, Any]:
        """Draw and measure every image not yet in the run directory; return results.json."""
        description = self.describe()
        done = self._prepare(description, resume)
        prompts = self.prompts
        total = len(prompts) * self.config.images_per_prompt
        count = sum(1 for p in prompts for s in self.config.seeds if (prompt_id(p), s) in done)
        progress = on_progress or (lambda _done, _total, _label: None)
        progress(count, total, "")
        with self._records_writer() as write:
            for prompt in prompts:
                missing = [s for s in self.config.seeds if (prompt_id(prompt), s) not in done]
                for seeds in _runs_of_consecutive(missing, MAX_IMAGES):
                    progress(count, total, prompt.text)
                    for seed, image in zip(seeds, self._draw(prompt, seeds), strict=True):
                        record = self._measure(prompt, seed, image)
                        write(record)
                        done[(record.prompt, seed)] = record
                        count += 1
                        progress(count, total, prompt.text)
        results = self._results(description, done)
        _write_json(self.out / RESULTS_FILE, results)
        return results

    def _prepare(self, description: dict[str, Any], resume: bool) -> dict[tuple[str, int], _Record]:
        run_file = self.out / _RUN_FILE
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the run directory {self.out}: {exc.strerror}") from exc
        if not run_file.exists():
            if any(self.out.iterdir()):
                raise InputError(
                    f"{self.out} is not empty and holds no probe run",
                    hint="choose an empty or new directory with --out",
                )
            _write_json(run_file, description)
            return {}
        if not resume:
            raise InputError(
                f"{self.out} already holds a probe run",
                hint="add --resume to finish it, or choose another --out",
            )
        try:
            previous = json.loads(run_file.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read {run_file}: {exc}") from exc
        differences = _differences(previous, description)
        if differences:
            raise InputError(
                f"{self.out} holds a run with other settings ({', '.join(differences)})",
                hint="resume with the same options, or choose another --out",
            )
        return self._read_records()

    def _read_records(self) -> dict[tuple[str, int], _Record]:
        done: dict[tuple[str, int], _Record] = {}
        path = self.out / _RECORDS_FILE
        if not path.exists():
            return done
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines, 1):
            try:
                raw = json.loads(line)
                record = _Record(raw["prompt"], int(raw["seed"]), raw["file"], raw["attributes"])
            except (ValueError, KeyError, TypeError):
                if number == len(lines):
                    # The process died mid-write: the image is drawn again.
                    log.warning("probe.truncated_record", line=number)
                    continue
                raise InputError(f"{path} line {number} is not a probe record") from None
            if (self.out / record.file).is_file():
                done[(record.prompt, record.seed)] = record
        # Rewritten without the torn line, so the next append starts on a line of its own.
        with _atomic(path) as handle:
            for record in done.values():
                handle.write(_record_line(record))
        return done

    @contextmanager
    def _records_writer(self) -> Iterator[Callable[[_Record], None]]:
        with (self.out / _RECORDS_FILE).open("a", encoding="utf-8") as handle:

            def write(record: _Record) -> None:
                handle.write(_record_line(record))
                handle.flush()
                os.fsync(handle.fileno())

            yield write

    def _draw(self, prompt: ProbePrompt, seeds: Sequence[int]) -> list[Image.Image]:
        width, height = self.config.size or (None, None)
        output = self.backend.generate(
            GenerationParams(
                prompt.text,
                negative_prompt=self.config.negative_prompt,
                n=len(seeds),
                seed=seeds[0],
                steps=self.config.steps,
                width=width,
                height=height,
            )
        )
        return output.images

    def _measure(self, prompt: ProbePrompt, seed: int, image: Image.Image) -> _Record:
        attributes = self.estimator.estimate(image)
        relative = Path("images") / _safe(prompt.set) / _safe(prompt.key) / f"{seed}.png"
        target = self.out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        image.save(partial, format="PNG")
        partial.replace(target)
        return _Record(prompt_id(prompt), seed, relative.as_posix(), attributes.to_json())

    # -- results ---------------------------------------------------------------------------

    def _results(
        self, description: dict[str, Any], done: dict[tuple[str, int], _Record]
    ) -> dict[str, Any]:
        prompts_out: list[dict[str, Any]] = []
        every_image: list[dict[str, dict[str, float]] | None] = []
        for prompt in self.prompts:
            images = []
            distributions: list[dict[str, dict[str, float]] | None] = []
            for seed in self.config.seeds:
                record = done[(prompt_id(prompt), seed)]
                attributes = ImageAttributes.from_json(record.attributes)
                distributions.append(attributes.subject_distributions())
                images.append({"seed": seed, "file": record.file, "attributes": record.attributes})
            every_image += distributions
            measured = summarise(distributions, reference=prompt.reference)
            prompts_out.append(
                {
                    "set": prompt.set,
                    "key": prompt.key,
                    "text": prompt.text,
                    "reference": prompt.reference,
                    **measured,
                    "images": images,
                }
            )
        overall = summarise(every_image)
        overall["mean_prompt_imbalance"] = _mean_prompt_imbalance(prompts_out)
        overall["reference_deviation"] = _reference_summary(prompts_out)
        return {
            "version": RESULTS_VERSION,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "run": description,
            "prompts": prompts_out,
            "overall": overall,
        }


def summarise(
    distributions: Sequence[Mapping[str, Mapping[str, float]] | None],
    *,
    reference: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, Any]:
    """The metrics of some images as results.json holds them, for a prompt or overall."""
    measured = prompt_metrics(distributions, reference=reference)
    return {
        "image_count": measured.images,
        "no_face": measured.no_face,
        "no_face_share": measured.no_face_share,
        "metrics": {name: m.to_json() for name, m in measured.attributes.items()},
    }


def subject_distributions(prompt: Mapping[str, Any]) -> list[dict[str, dict[str, float]] | None]:
    """The per-image subject distributions of one prompt entry of results.json."""
    return [
        ImageAttributes.from_json(image["attributes"]).subject_distributions()
        for image in prompt["images"]
    ]


def _mean_prompt_imbalance(prompts: list[dict[str, Any]]) -> dict[str, float | None]:
    """Per attribute, the imbalance of each prompt averaged over the prompts (DALL-Eval's
    summary): the pooled distribution can look balanced when every prompt is skewed, one
    towards women and the next towards men."""
    means: dict[str, float | None] = {}
    for attribute in ATTRIBUTES:
        values = [
            p["metrics"][attribute]["imbalance"]
            for p in prompts
            if p["metrics"].get(attribute, {}).get("imbalance") is not None
        ]
        means[attribute] = sum(values) / len(values) if values else None
    return means


def _reference_summary(prompts: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean deviation from the reference over the prompts that have one, per attribute."""
    summary: dict[str, Any] = {}
    for attribute in ATTRIBUTES:
        values = [
            p["metrics"][attribute]["deviation_from_reference"]
            for p in prompts
            if p["metrics"].get(attribute, {}).get("deviation_from_reference") is not None
        ]
        if values:
            summary[attribute] = {"prompts": len(values), "mean_tvd": sum(values) / len(values)}
    return summary


def load_results(path: Path) -> dict[str, Any]:
    """A run's results.json (given the file or its run directory), else InputError."""
    file = path / RESULTS_FILE if path.is_dir() else path
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError as exc:
        hint = "finish it with --resume" if (file.parent / _RUN_FILE).exists() else None
        raise InputError(f"{file} does not exist: not a finished probe run", hint=hint) from exc
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read probe results {file}: {exc}") from exc
    if not isinstance(data, dict) or data.get("version") != RESULTS_VERSION:
        raise InputError(f"{file} is not a genseal probe results file (version {RESULTS_VERSION})")
    for key in ("run", "prompts", "overall"):
        if key not in data:
            raise InputError(f"{file} has no {key!r}: not a genseal probe results file")
    return data


# -- helpers ---------------------------------------------------------------------------------


def _runs_of_consecutive(seeds: Sequence[int], longest: int) -> Iterator[list[int]]:
    """[0,1,2,5,6] → [0,1,2], [5,6]: image k of a batch is drawn from seed + k."""
    batch: list[int] = []
    for seed in seeds:
        if batch and (seed != batch[-1] + 1 or len(batch) == longest):
            yield batch
            batch = []
        batch.append(seed)
    if batch:
        yield batch


def _differences(previous: dict[str, Any], current: dict[str, Any]) -> list[str]:
    keys = ("model", "seeds", "steps", "size", "negative_prompt", "prompts", "estimator")
    return [key for key in keys if previous.get(key) != current.get(key)]


def _safe(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._")
    return cleaned or "_"


def _record_line(record: _Record) -> str:
    payload = {
        "prompt": record.prompt,
        "seed": record.seed,
        "file": record.file,
        "attributes": record.attributes,
    }
    return json.dumps(payload, separators=(",", ":")) + "\n"


def _write_json(path: Path, data: Any) -> None:
    with _atomic(path) as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")


@contextmanager
def _atomic(path: Path) -> Iterator[IO[str]]:
    """Write `path` whole or not at all: a reader never sees half a file."""
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)
