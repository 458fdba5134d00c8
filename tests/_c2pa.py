"""Reading sealed images with c2pa-python's own Reader, independently of genseal's verifier."""

from __future__ import annotations

import io
import json
from typing import Any

import c2pa


def c2pa_read(data: bytes, mime: str, anchors_pem: bytes) -> tuple[str, dict[str, Any]]:
    """(validation state, the parts of the active manifest tests look at), trusting the PEM."""
    context = c2pa.Context.from_dict(
        {
            "trust": {"trust_anchors": anchors_pem.decode()},
            "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
        }
    )
    with c2pa.Reader(mime, io.BytesIO(data), context=context) as reader:
        store = json.loads(reader.json())
    manifest = store["manifests"][store["active_manifest"]]
    assertions = {a["label"]: a["data"] for a in manifest.get("assertions", [])}
    actions = assertions.get("c2pa.actions.v2") or assertions.get("c2pa.actions") or {}
    return store["validation_state"], {
        "actions": actions.get("actions", []),
        "ingredients": manifest.get("ingredients", []),
        "moderation": assertions.get("org.genseal.moderation"),
        "soft_binding": assertions.get("c2pa.soft-binding"),
        "claim_generator": manifest.get("claim_generator"),
    }
