"""C2PA signing: manifest contents, formats, errors, fork safety."""

from __future__ import annotations

import io
import json
import os
from dataclasses import replace
from typing import Any

import c2pa
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError

from genseal.errors import SigningError
from provenance import (
    MODERATION_LABEL,
    TRAINED_ALGORITHMIC_MEDIA,
    C2paSigner,
    IngredientSpec,
    SealClaim,
    SigningIdentity,
)
from tests.provenance.conftest import claim, encode, photo_image


def _read(data: bytes, identity: SigningIdentity) -> tuple[str, dict[str, Any]]:
    context = c2pa.Context.from_dict(
        {
            "trust": {"trust_anchors": identity.root_cert_pem.decode()},
            "verify": {"ocsp_fetch": False},
        }
    )
    with c2pa.Reader(io.BytesIO(data), context=context) as reader:
        store = json.loads(reader.json())
        return str(reader.get_validation_state()), store["manifests"][store["active_manifest"]]


def _assertion(manifest: dict[str, Any], prefix: str) -> dict[str, Any]:
    return next(a["data"] for a in manifest["assertions"] if a["label"].startswith(prefix))


@pytest.fixture(scope="module")
def png() -> bytes:
    return encode(photo_image("coffee"))


def test_created_manifest_contents(
    signer: C2paSigner, identity: SigningIdentity, png: bytes
) -> None:
    signed = signer.sign(png, "image/png", claim("gs_created", payload="1234abcd"))
    state, manifest = _read(signed.data, identity)
    assert state == "Trusted"
    assert manifest["label"] == signed.manifest_label
    assert manifest["title"] == "gs_created.png"
    (action,) = _assertion(manifest, "c2pa.actions")["actions"]
    assert action["action"] == "c2pa.created"
    assert action["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    assert action["softwareAgent"]["name"] == "genseal 0.1.0"
    assert action["parameters"]["org.genseal.model_id"] == "tiny"
    moderation = _assertion(manifest, MODERATION_LABEL)
    assert moderation == {
        "decision": "release",
        "policy": "default@1",
        "findings": [],
        "genseal_id": "gs_created",
    }
    soft = _assertion(manifest, "c2pa.soft-binding")
    assert soft == {
        "alg": "org.genseal.dwtdctsvd.1",
        "blocks": [{"scope": {}, "value": "1234abcd"}],
    }
    labels = [a["label"] for a in manifest["assertions"]]
    assert not any("thumbnail" in label for label in labels), labels
    assert "thumbnail" not in manifest


def test_edited_manifest_records_the_input_as_parent(
    signer: C2paSigner, identity: SigningIdentity, png: bytes
) -> None:
    source = encode(photo_image("chelsea", 256), "JPEG", quality=85)
    ingredient = IngredientSpec(data=source, mime="image/jpeg", title="input.jpg")
    signed = signer.sign(png, "image/png", claim("gs_edit", ingredient=ingredient))
    state, manifest = _read(signed.data, identity)
    assert state == "Trusted"
    (parent,) = manifest["ingredients"]
    assert parent["title"] == "input.jpg"
    assert parent["relationship"] == "parentOf"
    assert parent["format"] == "image/jpeg"
    opened, edited = _assertion(manifest, "c2pa.actions")["actions"]
    assert opened["action"] == "c2pa.opened"
    (reference,) = opened["parameters"]["ingredients"]
    assert reference["url"].endswith(parent["label"])
    assert edited["action"] == "c2pa.edited"
    assert edited["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA


@pytest.mark.parametrize(("fmt", "mime"), [("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_signs_jpeg_and_webp(
    signer: C2paSigner, identity: SigningIdentity, fmt: str, mime: str
) -> None:
    data = encode(photo_image("astronaut", 256), fmt, quality=90)
    signed = signer.sign(data, mime, claim())
    assert _read(signed.data, identity)[0] == "Trusted"
    assert signed.mime == mime
    assert signed.manifest_store.startswith(b"\x00\x00") and b"jumb" in signed.manifest_store[:16]


def test_kind_and_ingredient_must_agree() -> None:
    base = claim().model_dump()
    ingredient = IngredientSpec(data=b"x", mime="image/png", title="in.png")
    with pytest.raises(ValidationError, match="needs the input image"):
        SealClaim.model_validate({**base, "kind": "edited"})
    with pytest.raises(ValidationError, match="takes no ingredient"):
        SealClaim.model_validate({**base, "kind": "created", "ingredient": ingredient})


def test_unsupported_or_mislabelled_image_is_a_signing_error(
    signer: C2paSigner, png: bytes
) -> None:
    with pytest.raises(SigningError, match="genseal seals"):
        signer.sign(png, "image/gif", claim())
    with pytest.raises(SigningError, match="declared image/jpeg"):
        signer.sign(png, "image/jpeg", claim())
    with pytest.raises(SigningError):
        signer.sign(png[:100], "image/png", claim())


def test_bad_credentials_become_signing_errors(identity: SigningIdentity, png: bytes) -> None:
    with pytest.raises(SigningError, match="signing credentials"):
        C2paSigner(replace(identity, private_key_pem=b"not a key"))
    stranger = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(SigningError, match="signing credentials") as info:
        C2paSigner(replace(identity, private_key_pem=stranger)).sign(png, "image/png", claim())
    assert isinstance(info.value.__cause__, c2pa.C2paError)


def test_unserialisable_moderation_is_refused(signer: C2paSigner, png: bytes) -> None:
    bad = claim().model_copy(update={"moderation": {"score": float("nan")}})
    with pytest.raises(SigningError, match="JSON"):
        signer.sign(png, "image/png", bad)


def test_signer_made_before_fork_works_in_the_child(
    signer: C2paSigner, identity: SigningIdentity, png: bytes
) -> None:
    signer.sign(png, "image/png", claim())  # the parent's context is built and used
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report, never return into pytest
        code = 1
        try:
            signed = signer.sign(png, "image/png", claim("gs_child"))
            os.write(write_end, signed.data[:8] + signed.manifest_label.encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert answer.startswith(b"\x89PNG") and b"urn:c2pa:" in answer
