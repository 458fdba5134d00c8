"""Provenance fixtures: one real signing identity per test session, real photos, sealing."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from provenance import (
    C2paSigner,
    DwtDctSvdWatermarker,
    IngredientSpec,
    ManifestRecord,
    ManifestStore,
    SealClaim,
    SignedAsset,
    SigningIdentity,
    Watermarker,
    crop_print,
    fingerprint,
    init_identity,
)

SIZE = 512


def photo_image(name: str, size: int = SIZE) -> Image.Image:
    from skimage import data

    image = Image.fromarray(getattr(data, name)()).convert("RGB")
    return image.resize((size, size), Image.Resampling.LANCZOS)


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def claim(
    genseal_id: str = "gs_test",
    *,
    payload: str = "0badcafe",
    ingredient: IngredientSpec | None = None,
) -> SealClaim:
    return SealClaim(
        genseal_id=genseal_id,
        title=f"{genseal_id}.png",
        software_agent="genseal 0.1.0",
        model_id="tiny",
        kind="edited" if ingredient is not None else "created",
        moderation={"decision": "release", "policy": "default@1", "findings": []},
        soft_binding_alg="org.genseal.dwtdctsvd.1",
        soft_binding_value=payload,
        ingredient=ingredient,
    )


@dataclass(frozen=True)
class Sealed:
    """A released image as the service would produce it, and its stored record."""

    original: Image.Image
    marked: Image.Image
    signed: SignedAsset
    record: ManifestRecord


SealFn = Callable[..., Sealed]


@pytest.fixture(scope="session")
def identity(tmp_path_factory: pytest.TempPathFactory) -> SigningIdentity:
    return init_identity(tmp_path_factory.mktemp("genseal-home"))


@pytest.fixture(scope="session")
def signer(identity: SigningIdentity) -> C2paSigner:
    return C2paSigner(identity)


@pytest.fixture(scope="session")
def watermarker() -> DwtDctSvdWatermarker:
    return DwtDctSvdWatermarker()


@pytest.fixture(scope="session")
def photos() -> dict[str, Image.Image]:
    return {name: photo_image(name) for name in ("astronaut", "coffee", "chelsea")}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ManifestStore]:
    manifest_store = ManifestStore(f"sqlite:///{tmp_path / 'genseal.db'}")
    yield manifest_store
    manifest_store.close()


def make_sealer(signer: C2paSigner, watermarker: Watermarker, target: ManifestStore) -> SealFn:
    """The seal stage in miniature: watermark, encode, sign, fingerprint, store."""

    def seal(
        image: Image.Image,
        payload: str,
        *,
        fmt: str = "PNG",
        ingredient: IngredientSpec | None = None,
    ) -> Sealed:
        genseal_id = f"gs_{uuid.uuid4().hex[:12]}"
        marked = watermarker.embed(image, payload)
        mime = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}[fmt]
        options: dict[str, object] = {"quality": 90} if fmt != "PNG" else {}
        data = encode(marked, fmt, **options)
        signed = signer.sign(data, mime, claim(genseal_id, payload=payload, ingredient=ingredient))
        record = ManifestRecord(
            id=genseal_id,
            manifest_label=signed.manifest_label,
            manifest_store=signed.manifest_store,
            watermark_alg=watermarker.name,
            watermark_payload=payload,
            fingerprint_alg="pdq",
            fingerprint_hex=fingerprint(marked).hex,
            fingerprint_crop=crop_print(marked),
            mime=mime,
            sha256=hashlib.sha256(signed.data).hexdigest(),
            created_at=dt.datetime.now(dt.UTC),
            tenant="tenant-a",
            model_id="tiny",
            decision="release",
        )
        target.add(record)
        return Sealed(image, marked, signed, record)

    return seal


@pytest.fixture
def seal(signer: C2paSigner, watermarker: DwtDctSvdWatermarker, store: ManifestStore) -> SealFn:
    return make_sealer(signer, watermarker, store)
