"""``genseal faces``: the protected-identity registry (enrol, list, remove, match).

Photos are read, reduced to one 128-d descriptor each and forgotten: the registry keeps the
descriptors, the name, a note and each photo's sha256 (to skip a photo enrolled twice).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.cli._help import GensealTyper
from api.cli._support import JsonOption, _dump, _errors, _read_file, _settings, err, out

if TYPE_CHECKING:
    from PIL import Image

    from safety import FaceRegistry

faces_app = GensealTyper(
    help=(
        "Protected identities: people whose likeness genseal refuses to generate or edit, "
        "kept as face descriptors only (never photos), in the genseal database."
    ),
    no_args_is_help=True,
)

_DEFAULT_DISTANCE = 0.6  # the policies' default thresholds.identity_match_distance

NameArgument = Annotated[str, typer.Argument(help="The person's name, e.g. 'Jane Doe'.")]


def _registry() -> FaceRegistry:
    from safety import FaceRegistry

    return FaceRegistry(_settings().store_url)


def _photo(path: Path, settings: Any) -> tuple[Image.Image, str]:
    """The photo, upright as its camera meant, and the sha256 of its bytes."""
    from PIL import ImageOps

    from gen import decode_image

    data = _read_file(path, "photo")
    image = decode_image(
        data,
        max_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_image_pixels,
        name=str(path),
    )
    return ImageOps.exif_transpose(image), hashlib.sha256(data).hexdigest()


@faces_app.command("enroll")
def faces_enroll(
    name: NameArgument,
    photos: Annotated[
        list[Path],
        typer.Argument(
            help="Photos of the person, each showing exactly one face.", metavar="PHOTO"
        ),
    ],
    note: Annotated[
        str | None, typer.Option("--note", help="Why they are protected, who asked, when.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Enrol a protected identity from photos, or add photos to one.

    Every photo must show exactly one face; only its descriptor is stored, never the photo.
    Nothing is stored unless every photo is usable.
    """
    from safety import FaceRegistry, face_analyzer

    with _errors(as_json):
        FaceRegistry.validate_name(name)
        settings = _settings()
        analyzer = face_analyzer()
        descriptors, sources = [], []
        for path in photos:
            image, digest = _photo(path, settings)
            descriptors.append(analyzer.single_face_descriptor(image, str(path)))
            sources.append(digest)
        result = FaceRegistry(settings.store_url).enroll(
            name, descriptors, model=analyzer.descriptor_model, sources=sources, note=note
        )
        if as_json:
            _dump(result.model_dump(mode="json"))
            return
        skipped = f", {result.duplicates} already enrolled" if result.duplicates else ""
        out.print(
            f"enrolled [bold]{result.identity.name}[/]: {result.added} photo(s) added{skipped}, "
            f"{result.identity.photos} in all",
            highlight=False,
        )
        err.print("Only face descriptors were stored; the photos were not kept.")


@faces_app.command("list")
def faces_list(as_json: JsonOption = False) -> None:
    """Every enrolled identity, with how many photos it was enrolled from."""
    from rich.table import Table

    with _errors(as_json):
        identities = _registry().identities()
        if as_json:
            _dump([i.model_dump(mode="json") for i in identities])
            return
        if not identities:
            out.print("no protected identities enrolled")
            return
        table = Table("name", "photos", "note", "updated")
        for identity in identities:
            table.add_row(
                identity.name,
                str(identity.photos),
                identity.note or "",
                f"{identity.updated_at:%Y-%m-%d %H:%M}",
            )
        out.print(table)


@faces_app.command("remove")
def faces_remove(name: NameArgument, as_json: JsonOption = False) -> None:
    """Forget an identity and every descriptor enrolled for it."""
    with _errors(as_json):
        _registry().remove(name)
        if as_json:
            _dump({"removed": name})
        else:
            out.print(f"removed [bold]{name}[/]", highlight=False)


@faces_app.command("match")
def faces_match(
    photo: Annotated[Path, typer.Argument(help="A photo to compare with the registry.")],
    distance: Annotated[
        float,
        typer.Option(
            "--distance",
            min=0.01,
            max=2.0,
            help="A match is at or under this descriptor distance (dlib's same-person bar).",
        ),
    ] = _DEFAULT_DISTANCE,
    as_json: JsonOption = False,
) -> None:
    """Distances from each face in PHOTO to every enrolled identity, nearest first."""
    from safety import face_analyzer

    with _errors(as_json):
        settings = _settings()
        image, _ = _photo(photo, settings)
        registry = _registry()
        analyzer = face_analyzer()
        snapshot = registry.snapshot()
        analysis = analyzer.analyze(image, descriptors=True)
        faces: list[dict[str, Any]] = []
        for index, face in enumerate(analysis.faces):
            assert face.descriptor is not None  # asked for above
            matches = snapshot.match(face.descriptor, model=analyzer.descriptor_model)
            faces.append(
                {
                    "index": index,
                    "box": list(face.box),
                    "matches": [
                        {
                            "name": m.name,
                            "distance": round(m.distance, 4),
                            "match": m.distance <= distance,
                        }
                        for m in matches
                    ],
                }
            )
        matched = sorted({m["name"] for f in faces for m in f["matches"] if m["match"]})
        report = {
            "photo": str(photo),
            "max_distance": distance,
            "enrolled_identities": snapshot.identities,
            "face_count": analysis.detected,
            "faces": faces,
            "matched": matched,
        }
        if as_json:
            _dump(report)
            return
        _print_match(report)


def _print_match(report: dict[str, Any]) -> None:
    if not report["faces"]:
        out.print(f"no face found in {report['photo']}")
        return
    if not report["enrolled_identities"]:
        out.print("no protected identities enrolled")
    for face in report["faces"]:
        out.print(f"face {face['index'] + 1} at {face['box']}:", highlight=False)
        for m in face["matches"]:
            mark = "[bold red]match[/]" if m["match"] else "no match"
            out.print(f"  {m['distance']:.3f}  {m['name']}  {mark}", highlight=False)
    if report["matched"]:
        out.print(f"matches: {', '.join(report['matched'])}", highlight=False)
    else:
        out.print(f"no identity within {report['max_distance']:g}")
