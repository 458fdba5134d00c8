"""Provenance: C2PA manifests, signing identities, watermarks, fingerprints, the manifest store,
the audit log and verification.

One concern per sub-package: `provenance.c2pa` (signing manifests, reading and validating
them), `provenance.identity` (signing identities, remote signers, trust), `provenance.watermark`
(the watermark seam and its backends), `provenance.fingerprints` (PDQ and the crop print),
`provenance.store` (the manifest store and audit log) and `provenance.verify` (the verifier and
its report). Here: the names the rest of genseal uses; each sub-package exports all of its own.

Sealing one image (what `gen` does, in this order)::

    marked = watermarker.embed(image, payload)            # pixels first
    data = encode(marked)                                  # PNG / JPEG / WebP bytes
    signed = C2paSigner(identity).sign(data, mime, claim)  # manifest over the marked pixels
    store.add(ManifestRecord(..., fingerprint_hex=fingerprint(marked).hex,
                             fingerprint_crop=crop_print(marked), ...))
    store.append_audit("released", ...)

Verifying: ``Verifier(store, root_pem, watermarker).verify(data, name)``.

Never imports `gen`, `safety` or `api`.
"""

import lazy_loader

# Each name is imported on first use, so a command that needs one corner of the package (verify,
# screen) does not pay for importing all of it. The names and where they live: __init__.pyi.
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
