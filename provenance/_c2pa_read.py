"""Reading and validating Content Credentials with c2pa-python, mapped to `C2paReport`.

c2pa's verdict is kept as it is (``validation_state`` Trusted / Valid / Invalid); this module
only translates it, extracts what an auditor reads, and turns "no manifest" into the state
``absent`` rather than an error. Trust needs the verifier's anchors (``trust.trust_anchors``):
without them the best a manifest can be is Valid.

A ``.c2pa`` sidecar (a detached manifest store) is validated through c2pa's own detached
path (``Reader(..., manifest_data)``): its hard binding must hold for the file's bytes. A
manifest that was embedded when signed (as genseal's are) binds the file *with* the manifest
inside, so its store given as a sidecar holds for that file, not for a stripped copy of it;
a stripped copy is traced back by recovery (watermark, fingerprint) instead.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import threading
from typing import Any

import c2pa
from cryptography import x509

from genseal.errors import ConfigError, InputError

from ._c2pa import MODERATION_LABEL, SOFT_BINDING_LABEL
from ._report import C2paReport, C2paState, ManifestSource, StatusCode

__all__ = ["C2paReader", "read_assertion"]

# Offline and deterministic: never fetch a remote manifest or an OCSP response.
_OFFLINE: dict[str, Any] = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
_STATES: dict[str, C2paState] = {"trusted": "trusted", "valid": "valid", "invalid": "invalid"}
_SIDECAR_HINT = "give the .c2pa manifest store of the image, as GET /v1/manifests/{id} serves it"
# A manifest store is a JUMBF superbox: 4-byte length, then the box type.
_JUMBF_TYPE = b"jumb"


class C2paReader:
    """Reads manifests with one c2pa Context per process (contexts do not survive ``fork``)."""

    def __init__(self, trust_anchors_pem: bytes | None) -> None:
        self._settings = dict(_OFFLINE)
        if trust_anchors_pem:
            _check_anchors(trust_anchors_pem)
            self._settings["trust"] = {"trust_anchors": trust_anchors_pem.decode("ascii")}
        self._lock = threading.Lock()
        self._context: c2pa.Context | None = None
        self._pid = -1

    def read(self, data: bytes, mime: str | None, manifest: bytes | None = None) -> C2paReport:
        """Validate ``data`` against its embedded manifest, or against ``manifest`` (the bytes
        of a ``.c2pa`` sidecar) when given; InputError if that sidecar cannot be read."""
        source: ManifestSource = "embedded" if manifest is None else "sidecar"
        if manifest is not None:
            _check_sidecar(manifest)
        try:
            reader = c2pa.Reader(mime, io.BytesIO(data), manifest, context=self._process_context())
        except c2pa.C2paError as exc:
            if manifest is not None:
                # With a sidecar, what c2pa fails on here is the sidecar (garbage, truncated
                # JUMBF): bytes it cannot hash against the sidecar still read as Invalid.
                raise InputError(
                    f"the sidecar manifest cannot be read: {_message(exc)}",
                    hint=_SIDECAR_HINT,
                ) from exc
            return _with_source(_unreadable(exc), source)
        with reader:
            try:
                store = json.loads(reader.json())
            except (c2pa.C2paError, ValueError) as exc:
                return _with_source(_unreadable(exc), source)
            certificates = _certificates(reader, store.get("active_manifest"))
        return _report(store, certificates).model_copy(update={"source": source})

    def _process_context(self) -> c2pa.Context:
        pid = os.getpid()
        if self._context is not None and self._pid == pid:
            return self._context
        with self._lock:
            if self._context is None or self._pid != pid:
                self._context = c2pa.Context.from_dict(self._settings)
                self._pid = pid
            return self._context


def read_assertion(manifest_store: bytes, label: str) -> dict[str, Any] | None:
    """One assertion of the active manifest of a stored ``.c2pa`` manifest store.

    Read without the asset, so c2pa reports the store Invalid (nothing to hash): only the
    content is used, never that verdict.
    """
    try:
        with c2pa.Reader("application/c2pa", io.BytesIO(manifest_store)) as reader:
            store = json.loads(reader.json())
    except (c2pa.C2paError, ValueError):
        return None
    manifest = store.get("manifests", {}).get(store.get("active_manifest", ""), {})
    return _assertion(manifest, label)


def _check_sidecar(manifest: bytes) -> None:
    """Turn away what is plainly no manifest store with a message saying so (c2pa's own is
    ``invalid JUMBF header``, or a buffer-size error for empty bytes)."""
    if not manifest:
        raise InputError("the sidecar manifest is empty", hint=_SIDECAR_HINT)
    if manifest[4:8] != _JUMBF_TYPE:
        raise InputError(
            "the sidecar is not a C2PA manifest store (no JUMBF box at its start)",
            hint=_SIDECAR_HINT,
        )


def _message(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _with_source(report: C2paReport, source: ManifestSource) -> C2paReport:
    # "absent" has no source: nothing was there to come from anywhere.
    if report.state == "absent":
        return report
    return report.model_copy(update={"source": source})


def _check_anchors(pem: bytes) -> None:
    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise ConfigError(
            f"the trust anchors are not PEM certificates: {exc}",
            hint="pass the root.pem written by `genseal keys init`, or another PEM bundle",
        ) from exc
    if not certificates:
        raise ConfigError("the trust anchor file holds no certificate")


def _unreadable(exc: Exception) -> C2paReport:
    message = _message(exc)
    if isinstance(exc, c2pa.C2paError.ManifestNotFound):
        return C2paReport(state="absent")
    if isinstance(exc, c2pa.C2paError.RemoteManifest) or message.startswith("Remote:"):
        return C2paReport(
            state="absent",
            status_codes=[
                StatusCode(
                    code="manifest.inaccessible",
                    explanation=f"the manifest is remote and was not fetched (offline): {message}",
                )
            ],
        )
    if isinstance(exc, c2pa.C2paError.NotSupported):
        # A container c2pa cannot carry a manifest in (BMP, GIF, ...): nothing embedded.
        return C2paReport(state="absent")
    if "could not be parsed" in message:
        # The container itself is broken (truncated, say): no manifest could be found in it.
        return C2paReport(
            state="absent",
            informational=[StatusCode(code="general.error", explanation=message)],
        )
    code = "algorithm.unsupported" if "unknown algorithm" in message else "general.error"
    return C2paReport(
        state="invalid",
        status_codes=[StatusCode(code=code, explanation=f"the manifest cannot be read: {message}")],
    )


def _report(store: dict[str, Any], certificates: dict[str, Any]) -> C2paReport:
    label = store.get("active_manifest")
    manifest = store.get("manifests", {}).get(label or "", None)
    results = store.get("validation_results") or {}
    active = results.get("activeManifest") or {}
    failures = [_status(s) for s in active.get("failure", [])]
    if not results:
        failures = [_status(s) for s in store.get("validation_status", [])]
    seen = {(s.code, s.url) for s in failures}
    for delta in results.get("ingredientDeltas", []):
        for status in delta.get("validationDeltas", {}).get("failure", []):
            item = _status(status)
            if (item.code, item.url) not in seen:
                seen.add((item.code, item.url))
                failures.append(item)
    state = _STATES.get(str(store.get("validation_state", "")).lower())
    if state is None:
        state = "invalid" if failures else "valid"
    if manifest is None:
        failures.append(StatusCode(code="claim.missing", explanation="no active manifest"))
        return C2paReport(state="invalid", status_codes=failures)
    actions = _actions(manifest)
    signature = manifest.get("signature_info") or {}
    subject = certificates.get("subject") or {}
    issuer = certificates.get("issuer") or {}
    return C2paReport(
        state=state,
        status_codes=failures,
        informational=[_status(s) for s in active.get("informational", [])],
        success_codes=sorted({str(s.get("code")) for s in active.get("success", [])}),
        manifest_label=label,
        signer=subject.get("CN") or signature.get("common_name"),
        signer_organization=subject.get("O"),
        issuer=_name(issuer) or signature.get("issuer"),
        signed_at=_timestamp(signature.get("time")),
        claim_generator=_claim_generator(manifest),
        title=manifest.get("title"),
        actions=actions,
        digital_source_type=next(
            (a["digitalSourceType"] for a in actions if a.get("digitalSourceType")), None
        ),
        ingredients=_ingredients(manifest, results.get("ingredientDeltas", [])),
        moderation=_assertion(manifest, MODERATION_LABEL),
        soft_binding=_assertion(manifest, SOFT_BINDING_LABEL),
    )


def _status(raw: dict[str, Any]) -> StatusCode:
    return StatusCode(
        code=str(raw.get("code", "unknown")),
        explanation=raw.get("explanation"),
        url=raw.get("url"),
    )


def _certificates(reader: c2pa.Reader, label: Any) -> dict[str, Any]:
    """Subject and issuer of the active manifest's signing certificate (crJSON has them)."""
    try:
        document = json.loads(reader.crjson())
    except (c2pa.C2paError, ValueError):
        return {}
    manifests = [m for m in document.get("manifests") or [] if isinstance(m, dict)]
    active = next((m for m in manifests if m.get("label") == label), {})
    info = (active.get("signature") or {}).get("certificateInfo") or {}
    return {"subject": info.get("subject") or {}, "issuer": info.get("issuer") or {}}


def _name(parts: dict[str, Any]) -> str | None:
    cn, org = parts.get("CN"), parts.get("O")
    if cn and org:
        return f"{cn} ({org})"
    return cn or org or None


def _timestamp(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


def _claim_generator(manifest: dict[str, Any]) -> str | None:
    info = manifest.get("claim_generator_info")
    if isinstance(info, list) and info and isinstance(info[0], dict):
        name, version = info[0].get("name"), info[0].get("version")
        if name:
            return f"{name} {version}" if version else str(name)
    generator = manifest.get("claim_generator")
    return str(generator) if generator else None


def _actions(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    actions: list[dict[str, Any]] = []
    for assertion in manifest.get("assertions", []):
        if str(assertion.get("label", "")).startswith("c2pa.actions"):
            data = assertion.get("data") or {}
            actions.extend(a for a in data.get("actions", []) if isinstance(a, dict))
    return actions


def _assertion(manifest: dict[str, Any], label: str) -> dict[str, Any] | None:
    for assertion in manifest.get("assertions", []):
        # c2pa may version labels (c2pa.soft-binding.v2) or number repeats (__1).
        found = str(assertion.get("label", ""))
        if found == label or found.startswith((label + ".v", label + "__")):
            data = assertion.get("data")
            return data if isinstance(data, dict) else None
    return None


def _ingredients(manifest: dict[str, Any], deltas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_label: dict[str, dict[str, Any]] = {}
    for delta in deltas:
        uri = str(delta.get("ingredientAssertionURI", ""))
        by_label[uri.rsplit("/", 1)[-1]] = delta.get("validationDeltas") or {}
    out = []
    for ingredient in manifest.get("ingredients", []):
        delta = by_label.get(str(ingredient.get("label", "")), {})
        codes = {str(s.get("code")) for s in delta.get("success", [])}
        if delta.get("failure"):
            state = "invalid"
        elif not ingredient.get("active_manifest"):
            state = "absent"  # no provenance of its own (ingredient.unknownProvenance)
        elif "signingCredential.trusted" in codes:
            state = "trusted"
        else:
            state = "valid"
        out.append(
            {
                "title": ingredient.get("title"),
                "relationship": ingredient.get("relationship"),
                "format": ingredient.get("format"),
                "validation_state": state,
                "failures": [str(s.get("code")) for s in delta.get("failure", [])],
            }
        )
    return out
