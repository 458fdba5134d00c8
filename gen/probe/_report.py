"""The probe report: one self-contained HTML file (charts as inline SVG, images as data URIs).

It opens offline, can be mailed or attached to a release review, and says plainly what it
measured: how many images had a face at all, and what perceived attributes are and are not.
`compare_runs` sets two runs side by side (two models, or two versions of one) and marks the
differences that a chi-square test finds significant.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from gen.probe._run import subject_distributions, summarise
from safety import ATTRIBUTES, compare_metrics, prompt_metrics

__all__ = ["COMPARISON_FILE", "REPORT_FILE", "compare_runs", "render_comparison", "render_report"]

REPORT_FILE = "report.html"
COMPARISON_FILE = "comparison.html"
_THUMB = 112
_SIGNIFICANCE = 0.05

_LABELS = {
    "gender": "Perceived gender",
    "age": "Perceived age band",
    "monk": "Skin tone (Monk scale)",
    "ita": "Skin tone (ITA class)",
}
# The Monk Skin Tone Scale's orbs (skintone.google), so a chart shows the tone it counts.
_MONK_COLOURS = (
    "#f6ede4",
    "#f3e7db",
    "#f7ead0",
    "#eadaba",
    "#d7bd96",
    "#a07e56",
    "#825c43",
    "#604134",
    "#3a312a",
    "#292420",
)
_PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")
_FEMALE, _MALE = _PALETTE[1], _PALETTE[0]
_OPEN_GRIDS = 12  # up to this many prompts, every image grid starts unfolded

_IMBALANCE_NOTE = """
<p class="muted">Imbalance is HEIM's: the mean absolute difference between the shares and a
uniform split, (1/K)·Σ|p<sub>k</sub> − 1/K| (0: even; 0.5 for two categories all in one). It equals
DALL-Eval's mean absolute deviation. Hard shares count each image's most probable category;
soft shares (in brackets) average the estimators' probabilities, so they carry their uncertainty.
The pooled shares can look even when every prompt is skewed, one towards women and the next
towards men: the last column averages each prompt's own imbalance, as DALL-Eval reports it.</p>
"""

_LIMITS = """
<h2>What these numbers can and cannot tell</h2>
<ul>
<li><b>Perceived, not actual.</b> Gender, age and skin tone are what face models estimate from
pixels. They say nothing about anyone's identity, self-identified gender, ethnicity or age;
a drawn person has none. Use them to compare how a model draws groups, not to label people.</li>
<li><b>Two gender labels.</b> The gender model knows only the two labels it was trained on;
people outside them are not represented, and androgynous faces get an uncertain probability.</li>
<li><b>Skin tone depends on light.</b> The Monk and ITA estimates read the colour of skin
pixels; shadows, tinted light and stylised rendering move them. The spread of the estimate is
kept with each face.</li>
<li><b>Faces not found are reported, not hidden.</b> An image whose face the detector misses
(profile, tiny, stylised, no person at all) is counted as <i>no face</i> and left out of the
attribute distributions, which then describe fewer images than were drawn.</li>
<li><b>Small samples.</b> With a few images per prompt the distributions are coarse; the
bootstrap interval beside each imbalance shows how far it could move.</li>
</ul>
"""

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1200px;
color:#1d1d1f;padding:0 1rem}
h1{font-size:1.6rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f5f5f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
.warn{background:#fff4e5;border-left:4px solid #f0a020;padding:.6rem 1rem;margin:1rem 0}
.alarm{background:#fdecea;border-left:4px solid #d93025;padding:.6rem 1rem;margin:1rem 0}
.grid{display:flex;flex-wrap:wrap;gap:.5rem}
figure{margin:0;width:THUMBpx;font-size:.72rem;line-height:1.25}
figure img{width:THUMBpx;height:THUMBpx;object-fit:cover;display:block;border-radius:3px}
tr.sig td{background:#fdecea}.muted{color:#6e6e73}
details{margin:.4rem 0}summary{cursor:pointer;font-weight:600}
""".replace("THUMB", str(_THUMB))


# -- the report of one run -----------------------------------------------------------------


def render_report(results: Mapping[str, Any], run_dir: Path) -> str:
    """report.html for a run's results.json (`run_dir` holds the images it names)."""
    run = results["run"]
    overall = results["overall"]
    title = f"Bias probe: {run['model']['id']}"
    parts = [
        _head(title),
        f"<h1>{_e(title)}</h1>",
        _run_table(results),
        _face_banner(overall["image_count"], overall["no_face"]),
        "<h2>Overall</h2>",
        _IMBALANCE_NOTE,
        _metrics_table(overall["metrics"], overall.get("mean_prompt_imbalance") or {}),
        _overall_chart(overall["metrics"]),
        _reference_section(results["prompts"]),
        "<h2>By prompt</h2>",
        _prompt_table(results["prompts"]),
        _gender_chart(results["prompts"]),
        "<h2>Images</h2>",
        *(
            _prompt_detail(prompt, run_dir, unfolded=len(results["prompts"]) <= _OPEN_GRIDS)
            for prompt in results["prompts"]
        ),
        _LIMITS,
        "</body></html>",
    ]
    return "\n".join(part for part in parts if part)


def _run_table(results: Mapping[str, Any]) -> str:
    run = results["run"]
    sets = ", ".join(
        f"{s['name']}" + (f" ({s['source']})" if s.get("source") else "")
        for s in run["prompt_sets"]
    )
    seeds = run["seeds"]
    rows = [
        ("Model", f"{run['model']['id']} @ {run['model']['version']} on {run['model']['device']}"),
        ("Prompt sets", sets),
        ("Prompts", str(len(results["prompts"]))),
        ("Images per prompt", f"{run['images_per_prompt']} (seeds {seeds[0]}–{seeds[-1]})"),
        ("Steps / size", f"{run['steps'] or 'model default'} / {_size(run['size'])}"),
        ("Estimators", f"{run['estimator']['version']}"),
        ("Finished", str(results["created"])),
    ]
    return _table(["", ""], [[_e(k), _e(v)] for k, v in rows], header=False)


def _face_banner(images: int, no_face: int) -> str:
    if images == 0:
        return ""
    found = images - no_face
    if found == 0:
        return (
            f'<div class="alarm"><b>No face was found in any of the {images} images.</b> '
            "This run measures nothing about whom the model draws: the attribute tables below "
            "are empty. A model that draws no people (or the embedded <code>tiny</code> model, "
            "which draws noise) gives this result.</div>"
        )
    if no_face:
        return (
            f'<div class="warn">Faces were found in <b>{found} of {images}</b> images '
            f"({found / images:.0%}). The distributions describe those {found} images only; "
            f"the other {no_face} are counted as <i>no face</i>.</div>"
        )
    return f'<p class="muted">A face was found in every one of the {images} images.</p>'


def _metrics_table(
    metrics: Mapping[str, Any], per_prompt: Mapping[str, float | None] | None = None
) -> str:
    rows = []
    for attribute, m in metrics.items():
        label = _e(_LABELS.get(attribute, attribute))
        mean = (per_prompt or {}).get(attribute)
        if not m.get("measured"):
            rows.append([label, _num(0), "—", "—", "—", "—"][: 6 if per_prompt is not None else 5])
            continue
        shares = ", ".join(
            f"{_e(c)} {p:.0%} <span class=muted>({m['soft_proportions'][c]:.0%})</span>"
            for c, p in m["proportions"].items()
            if p > 0 or m["soft_proportions"].get(c, 0) >= 0.005
        )
        low, high = m.get("imbalance_ci95") or (None, None)
        interval = f" [{low:.2f}, {high:.2f}]" if low is not None and high is not None else ""
        row = [
            label,
            _num(m["measured"]),
            shares,
            _num(f"{m['imbalance']:.3f}{interval}"),
            _num(f"{m['normalized_entropy']:.2f}"),
        ]
        if per_prompt is not None:
            row.append(_num(_fmt(mean, ".3f")))
        rows.append(row)
    header = [
        "Attribute",
        "Images measured",
        "Share (hard) <span class=muted>(soft)</span>",
        "Imbalance [95% CI]",
        "Entropy / max",
    ]
    if per_prompt is not None:
        header.append("Mean imbalance per prompt")
    return _table(header, rows)


def _overall_chart(metrics: Mapping[str, Any]) -> str:
    measured = {a: m for a, m in metrics.items() if m.get("measured")}
    if not measured:
        return ""
    figure = Figure(figsize=(3.2 * len(measured), 2.8), layout="constrained")
    axes = figure.subplots(1, len(measured), squeeze=False)[0]
    for ax, (attribute, m) in zip(axes, measured.items(), strict=True):
        categories = list(ATTRIBUTES[attribute])
        values = [m["soft_proportions"].get(c, 0.0) for c in categories]
        ax.bar(
            range(len(categories)),
            values,
            color=_colours(attribute, len(categories)),
            edgecolor="#555",
            linewidth=0.5,
        )
        ax.axhline(1 / len(categories), color="#888", linestyle="--", linewidth=0.8)
        ax.set_xticks(range(len(categories)), categories, rotation=45 if len(categories) > 5 else 0)
        ax.set_ylim(0, 1)
        ax.set_title(_LABELS.get(attribute, attribute), fontsize=9)
        ax.tick_params(labelsize=7)
    figure.suptitle("Soft shares over all images (dashed: uniform)", fontsize=9)
    return _svg(figure)


def _reference_section(prompts: Sequence[Mapping[str, Any]]) -> str:
    found = [
        (prompt["key"], attribute, m)
        for prompt in prompts
        for attribute, m in prompt["metrics"].items()
        if m.get("deviation_from_reference") is not None
    ]
    if not found:
        return ""
    found.sort(key=lambda item: -item[2]["deviation_from_reference"])
    rows = [
        [
            _e(key),
            _e(_LABELS.get(attribute, attribute)),
            ", ".join(f"{_e(c)} {p:.0%}" for c, p in (m["reference"] or {}).items()),
            ", ".join(f"{_e(c)} {p:.0%}" for c, p in m["proportions"].items()),
            _num(f"{m['deviation_from_reference']:.2f}"),
        ]
        for key, attribute, m in found
    ]
    header = ["Prompt", "Attribute", "Reference", "Drawn", "Deviation (TVD)"]
    return "<h2>Against the reference</h2>\n" + _table(header, rows)


def _prompt_table(prompts: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for prompt in prompts:
        gender = prompt["metrics"].get("gender", {})
        monk = prompt["metrics"].get("monk", {})
        rows.append(
            (
                gender.get("imbalance") if gender.get("measured") else -1.0,
                [
                    _e(prompt["text"]),
                    _num(f"{prompt['image_count'] - prompt['no_face']}/{prompt['image_count']}"),
                    _share(gender, "female"),
                    _num(f"{gender['imbalance']:.2f}") if gender.get("measured") else "—",
                    _dominant(monk),
                    _num(f"{monk['imbalance']:.2f}") if monk.get("measured") else "—",
                ],
            )
        )
    rows.sort(key=lambda item: -(item[0] or 0.0))
    header = [
        "Prompt",
        "Faces found",
        "Perceived female",
        "Gender imbalance",
        "Most drawn Monk tone",
        "Monk imbalance",
    ]
    return _table(header, [row for _, row in rows])


def _gender_chart(prompts: Sequence[Mapping[str, Any]]) -> str:
    measured = [p for p in prompts if p["metrics"].get("gender", {}).get("measured")]
    if not measured:
        return ""
    measured.sort(key=lambda p: p["metrics"]["gender"]["soft_proportions"].get("female", 0.0))
    height = max(2.0, 0.22 * len(measured) + 0.8)
    figure = Figure(figsize=(7.5, height))
    ax = figure.subplots()
    female = [p["metrics"]["gender"]["soft_proportions"].get("female", 0.0) for p in measured]
    ax.barh(range(len(measured)), female, color=_FEMALE, label="perceived female")
    ax.barh(
        range(len(measured)),
        [1 - f for f in female],
        left=female,
        color=_MALE,
        label="perceived male",
    )
    for row, prompt in enumerate(measured):
        reference = (prompt.get("reference") or {}).get("gender")
        if reference and "female" in reference:
            ax.plot([reference["female"]] * 2, [row - 0.4, row + 0.4], color="black", lw=1.5)
    ax.axvline(0.5, color="#888", linestyle="--", linewidth=0.8)
    ax.set_yticks(range(len(measured)), [p["key"] for p in measured], fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of images (soft); black tick: reference", fontsize=8)
    ax.legend(fontsize=7, loc="lower right")
    return _svg(figure)


def _prompt_detail(prompt: Mapping[str, Any], run_dir: Path, *, unfolded: bool) -> str:
    figures = []
    for image in prompt["images"]:
        subject = (image["attributes"].get("faces") or [None])[0]
        thumb = _thumbnail(run_dir / image["file"], subject)
        figures.append(
            f'<figure><img alt="seed {image["seed"]}" src="{thumb}">'
            f"<figcaption>seed {image['seed']}<br>{_caption(subject)}</figcaption></figure>"
        )
    found = prompt["image_count"] - prompt["no_face"]
    summary = (
        f"{_e(prompt['text'])} <span class=muted>— faces in {found}/{prompt['image_count']}</span>"
    )
    grid = f'<div class="grid">{"".join(figures)}</div>'
    return f"<details{' open' if unfolded else ''}><summary>{summary}</summary>{grid}</details>"


def _caption(face: Mapping[str, Any] | None) -> str:
    if face is None:
        return "<i>no face found</i>"
    bits = []
    if face.get("gender"):
        bits.append(f"{_e(face['gender'])} {face['gender_probability']:.0%}")
    if face.get("age_band"):
        bits.append(f"age {_e(face['age_band'])}")
    skin = face.get("skin")
    if skin:
        bits.append(f"Monk {skin['monk']} · ITA {skin['ita']:.0f}°±{skin['ita_std']:.0f}")
    else:
        bits.append("<i>too little skin to read</i>")
    return "<br>".join(bits)


def _thumbnail(path: Path, face: Mapping[str, Any] | None) -> str:
    try:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
    except OSError:
        return ""
    scale = _THUMB / max(image.size)
    image.thumbnail((_THUMB, _THUMB))
    if face is not None and face.get("box"):
        left, top, right, bottom = (round(v * scale) for v in face["box"])
        ImageDraw.Draw(image).rectangle((left, top, right, bottom), outline=(255, 196, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# -- comparing two runs --------------------------------------------------------------------


def compare_runs(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Two runs side by side: overall, and per prompt the two have in common."""
    prompts_a = {(p["set"], p["key"]): p for p in a["prompts"]}
    prompts_b = {(p["set"], p["key"]): p for p in b["prompts"]}
    common = [key for key in prompts_a if key in prompts_b]
    every_a: list[Any] = []
    every_b: list[Any] = []
    per_prompt = []
    for key in common:
        images_a = subject_distributions(prompts_a[key])
        images_b = subject_distributions(prompts_b[key])
        every_a += images_a
        every_b += images_b
        per_prompt.append(
            {
                "set": key[0],
                "key": key[1],
                "text": prompts_a[key]["text"],
                "attributes": compare_metrics(prompt_metrics(images_a), prompt_metrics(images_b)),
            }
        )
    return {
        "a": _run_label(a),
        "b": _run_label(b),
        "prompts_compared": len(common),
        "only_in_a": [f"{s}/{k}" for s, k in prompts_a if (s, k) not in prompts_b],
        "only_in_b": [f"{s}/{k}" for s, k in prompts_b if (s, k) not in prompts_a],
        "overall": {
            "a": summarise(every_a),
            "b": summarise(every_b),
            "attributes": compare_metrics(prompt_metrics(every_a), prompt_metrics(every_b)),
        },
        "prompts": per_prompt,
    }


def render_comparison(comparison: Mapping[str, Any]) -> str:
    a, b = comparison["a"], comparison["b"]
    title = f"Bias probe comparison: {a['name']} vs {b['name']}"
    overall = comparison["overall"]
    parts = [
        _head(title),
        f"<h1>{_e(title)}</h1>",
        _table(
            ["", "A", "B"],
            [
                ["Run", _e(a["name"]), _e(b["name"])],
                ["Model", _e(a["model"]), _e(b["model"])],
                ["Finished", _e(a["created"]), _e(b["created"])],
                [
                    "Faces found",
                    _num(_found(overall["a"])),
                    _num(_found(overall["b"])),
                ],
            ],
        ),
        f"<p>{comparison['prompts_compared']} prompts in common. Rows in red differ "
        f"significantly (chi-square test of homogeneity, p &lt; {_SIGNIFICANCE}).</p>",
        _face_banner(overall["a"]["image_count"], overall["a"]["no_face"]).replace(
            "<b>", "<b>A: ", 1
        ),
        _face_banner(overall["b"]["image_count"], overall["b"]["no_face"]).replace(
            "<b>", "<b>B: ", 1
        ),
        "<h2>Overall</h2>",
        _comparison_table([("all prompts", overall["attributes"])]),
        "<h2>By prompt</h2>",
        _comparison_table([(p["text"], p["attributes"]) for p in comparison["prompts"]]),
        _LIMITS,
        "</body></html>",
    ]
    return "\n".join(part for part in parts if part)


def _comparison_table(rows_in: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    rows = []
    for label, attributes in rows_in:
        for attribute, result in attributes.items():
            if not result.get("a_measured") and not result.get("b_measured"):
                continue
            p_value = result.get("p_value")
            significant = bool(result.get("significant"))
            rows.append(
                (
                    significant,
                    [
                        _e(label),
                        _e(_LABELS.get(attribute, attribute)),
                        _shares(result.get("a_proportions", {})),
                        _shares(result.get("b_proportions", {})),
                        _num(_fmt(result.get("tvd"), ".2f")),
                        _num(_fmt(p_value, ".3g")),
                    ],
                )
            )
    header = ["Prompt", "Attribute", "A", "B", "Difference (TVD)", "p"]
    body = "".join(
        f"<tr{' class=sig' if sig else ''}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>"
        for sig, row in rows
    )
    head = "".join(f"<th>{h}</th>" for h in header)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _run_label(results: Mapping[str, Any]) -> dict[str, Any]:
    model = results["run"]["model"]
    return {
        "name": f"{model['id']}@{str(model['version'])[:12]}",
        "model": f"{model['id']} @ {model['version']}",
        "created": results.get("created", ""),
    }


# -- small pieces ----------------------------------------------------------------------------


def _head(title: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
    )


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]], *, header: bool = True) -> str:
    head = (
        ("<thead><tr>" + "".join(f"<th>{c}</th>" for c in columns) + "</tr></thead>")
        if header
        else ""
    )
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table>{head}<tbody>{body}</tbody></table>"


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return f'<div class="chart">{text[text.index("<svg") :]}</div>'


def _colours(attribute: str, count: int) -> list[str]:
    if attribute == "monk":
        return list(_MONK_COLOURS)
    if attribute == "gender":
        return [_FEMALE, _MALE]
    return [_PALETTE[k % len(_PALETTE)] for k in range(count)]


def _share(metrics: Mapping[str, Any], category: str) -> str:
    if not metrics.get("measured"):
        return "—"
    hard = metrics["proportions"].get(category, 0.0)
    soft = metrics["soft_proportions"].get(category, 0.0)
    return _num(f"{hard:.0%} <span class=muted>({soft:.0%})</span>")


def _dominant(metrics: Mapping[str, Any]) -> str:
    if not metrics.get("measured"):
        return "—"
    category, share = max(metrics["proportions"].items(), key=lambda item: item[1])
    return f"{_e(category)} ({share:.0%})"


def _shares(proportions: Mapping[str, float]) -> str:
    return ", ".join(f"{_e(c)} {p:.0%}" for c, p in proportions.items() if p > 0) or "—"


def _found(summary: Mapping[str, Any]) -> str:
    return f"{summary['image_count'] - summary['no_face']}/{summary['image_count']}"


def _fmt(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return format(value, spec)


def _size(size: Sequence[int] | None) -> str:
    return f"{size[0]}×{size[1]}" if size else "model default"


def _num(value: object) -> str:
    return f'<span class="num">{value}</span>'


def _e(value: object) -> str:
    return html.escape(str(value))
