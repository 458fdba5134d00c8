"""Reading and validating Content Credentials with c2pa-python, mapped to `C2paReport`.

c2pa's verdict is kept as it is (``validation_state`` Trusted / Valid / Invalid); this module
only translates it, extracts what an auditor reads, and turns "no manifest" into the state
``absent`` rather than an error. Trust needs the verifier's anchors (``trust.trust_anchors``,
see `TrustConfig`): without them the best a manifest can be is Valid, which the report
carries as a warning, never as success.

Both of c2pa's JSON views of a read (``Reader.json()`` and ``Reader.crjson()``) are mapped to
the report in `provenance.c2pa._mapping`.

A ``.c2pa`` sidecar (a detached manifest store) is validated through c2pa's own detached
path (``Reader(..., manifest_data)``): its hard binding must hold for the file's bytes. A
manifest that was embedded when signed (as genseal's are) binds the file *with* the manifest
inside, so its store given as a sidecar holds for that file, not for a stripped copy of it;
a stripped copy is traced back by recovery (watermark, fingerprint) instead.
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
from typing import Any

import c2pa

from genseal.errors import InputError
from provenance.c2pa._mapping import as_dict, assertion_data, report_from_store
from provenance.c2pa._report import (
    C2paReport,
    ManifestSource,
    StatusCode,
)
from provenance.identity import TrustConfig

__all__ = ["C2paReader", "read_assertion"]

_SIDECAR_HINT = "give the .c2pa manifest store of the image, as GET /v1/manifests/{id} serves it"
# A manifest store is a JUMBF superbox: 4-byte length, then the box type.
_JUMBF_TYPE = b"jumb"
_REMOTE_URL = re.compile(r"remote manifests? from url (\S+)")


class C2paReader:
    """Reads manifests with one c2pa Context per process (contexts do not survive ``fork``).

    ``trust_anchors_pem``: roots to trust (PEM); ``trust``: the full trust configuration
    (anchors, allowed EKUs, trust list, network fetching), to which those roots are added.
    """

    def __init__(
        self, trust_anchors_pem: bytes | None = None, *, trust: TrustConfig | None = None
    ) -> None:
        self.trust = (trust or TrustConfig()).with_anchors(trust_anchors_pem or b"")
        self._settings = self.trust.c2pa_settings()
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
            return _with_source(_unreadable(exc, self.trust), source)
        with reader:
            try:
                store = json.loads(reader.json())
            except (c2pa.C2paError, ValueError) as exc:
                return _with_source(_unreadable(exc, self.trust), source)
            try:
                detail = json.loads(reader.crjson())
            except (c2pa.C2paError, ValueError):
                detail = {}
        return report_from_store(as_dict(store), as_dict(detail)).model_copy(
            update={"source": source}
        )

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
    manifest = as_dict(as_dict(store.get("manifests")).get(store.get("active_manifest", "")))
    return assertion_data(manifest, label)


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


def _unreadable(exc: Exception, trust: TrustConfig) -> C2paReport:
    """What a file c2pa finds no readable manifest in reports: a state and the reason."""
    message = _message(exc)
    if isinstance(exc, c2pa.C2paError.ManifestNotFound):
        return C2paReport(
            state="absent", reason=f"no C2PA manifest is embedded in the file ({message})"
        )
    if isinstance(exc, c2pa.C2paError.RemoteManifest) or message.startswith("Remote:"):
        found = _REMOTE_URL.search(message)
        url = found.group(1) if found else None
        fetched = "could not be fetched" if trust.fetch_remote_manifests else "was not fetched"
        advice = (
            ""
            if trust.fetch_remote_manifests
            else " (remote fetching is off: GENSEAL_VERIFY_REMOTE_MANIFESTS=true turns it on)"
        )
        reason = f"the file embeds no manifest; it points to a remote one that {fetched}"
        return C2paReport(
            state="absent",
            remote_manifest=url,
            reason=reason + (f": {url}" if url else ""),
            warnings=[f"{reason}{advice}, so nothing about its provenance was checked"],
            status_codes=[
                StatusCode(
                    code="manifest.inaccessible",
                    explanation=f"the manifest is remote and {fetched}: {message}",
                )
            ],
        )
    if isinstance(exc, c2pa.C2paError.NotSupported):
        # A container c2pa cannot carry a manifest in (BMP, GIF, ...): nothing embedded.
        return C2paReport(
            state="absent",
            reason=f"the file's format cannot carry an embedded C2PA manifest ({message})",
        )
    if "could not be parsed" in message:
        # The container itself is broken (truncated, say): no manifest could be found in it.
        return C2paReport(
            state="absent",
            reason=f"the file is damaged and no manifest could be found in it ({message})",
            informational=[StatusCode(code="general.error", explanation=message)],
        )
    if "unknown algorithm" in message:
        code, why = "algorithm.unsupported", "it uses an algorithm c2pa does not support"
    elif "prerelease" in message:
        code, why = "general.error", "it is pre-release (pre-1.0) C2PA content, no longer read"
    else:
        code, why = "general.error", "c2pa cannot read it"
    return C2paReport(
        state="invalid",
        reason=f"the file carries a manifest that cannot be validated: {why} ({message})",
        warnings=["the manifest cannot be validated: nothing it says can be relied on"],
        status_codes=[StatusCode(code=code, explanation=f"the manifest cannot be read: {message}")],
    )
