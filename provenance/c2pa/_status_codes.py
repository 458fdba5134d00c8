"""What each C2PA validation status code means, in words an auditor can read.

The codes are those of the C2PA 2.x specification ("Standard Status Codes"), the CAWG identity
assertion codes (``cawg.identity.*``, ``cawg.ica.*``, ``cawg.x509.*``) that c2pa reports beside
them, and the 1.x names validators still emit for old manifests. c2pa's own ``explanation``
says what happened in one file; the meaning here says what the code stands for, so a report is
readable without the specification at hand.

A code missing from the table is not an error: validators add codes faster than any table
follows, so an unknown one gets a meaning from its family (``timeStamp.*``, ``assertion.*``...)
and no kind, never an exception.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Literal

__all__ = ["STATUS_CODES", "StatusKind", "status_kind", "status_meaning"]

StatusKind = Literal["success", "informational", "failure"]

_S: StatusKind = "success"
_I: StatusKind = "informational"
_F: StatusKind = "failure"

_TABLE: dict[str, tuple[StatusKind, str]] = {
    # -- success --------------------------------------------------------------------------------
    "claimSignature.validated": (_S, "the claim signature is cryptographically valid"),
    "claimSignature.insideValidity": (
        _S,
        "the claim was signed while the signing certificate was valid",
    ),
    "signingCredential.trusted": (
        _S,
        "the signing certificate chains to one of the verifier's trust anchors",
    ),
    "signingCredential.ocsp.notRevoked": (
        _S,
        "an OCSP response says the signing certificate was not revoked",
    ),
    "timeStamp.validated": (
        _S,
        "the RFC 3161 time-stamp is well formed and covers this signature",
    ),
    "timeStamp.trusted": (
        _S,
        "the time-stamp authority's certificate is on the verifier's trust list",
    ),
    "assertion.hashedURI.match": (
        _S,
        "an assertion's bytes match the hash the claim recorded for it",
    ),
    "assertion.dataHash.match": (
        _S,
        "the file's bytes outside the manifest match the signed hash (hard binding holds)",
    ),
    "assertion.bmffHash.match": (_S, "the BMFF boxes of the file match the signed hash"),
    "assertion.boxesHash.match": (_S, "the file's boxes or chunks match the signed hashes"),
    "assertion.collectionHash.match": (
        _S,
        "every file of the collection matches its signed hash",
    ),
    "assertion.accessible": (_S, "a remote (non-embedded) assertion could be fetched"),
    "ingredient.manifest.validated": (
        _S,
        "the ingredient's manifest matches the hash its parent recorded",
    ),
    "ingredient.claimSignature.validated": (
        _S,
        "the ingredient's claim signature matches the hash its parent recorded",
    ),
    # -- informational --------------------------------------------------------------------------
    "signingCredential.ocsp.skipped": (
        _I,
        "revocation was not checked online (OCSP fetching is off)",
    ),
    "signingCredential.ocsp.inaccessible": (
        _I,
        "an online revocation check was attempted but got no answer",
    ),
    "timeStamp.mismatch": (
        _I,
        "the time-stamp does not cover this signature, so it proves no signing time",
    ),
    "timeStamp.malformed": (
        _I,
        "the time-stamp cannot be parsed, so it proves no signing time",
    ),
    "timeStamp.outsideValidity": (
        _I,
        "the time-stamp falls outside the validity of the signing or TSA certificate",
    ),
    "timeStamp.untrusted": (
        _I,
        "the time-stamp authority is not on the verifier's trust list",
    ),
    "manifest.unknownProvenance": (_I, "the manifest cannot be interpreted by this validator"),
    "manifest.unreferenced": (
        _I,
        "a manifest in the store is not referenced by any ingredient",
    ),
    "ingredient.unknownProvenance": (
        _I,
        "the ingredient carries no manifest of its own (or none this validator reads): "
        "its history is unknown",
    ),
    "algorithm.deprecated": (_I, "a deprecated algorithm was used"),
    "timeOfSigning.insideValidity": (
        _I,
        "the claimed signing time lies within the certificate's validity and before any "
        "trusted time-stamp",
    ),
    # -- failure --------------------------------------------------------------------------------
    "claim.malformed": (_F, "the claim is not well formed"),
    "claim.missing": (_F, "a referenced claim cannot be found"),
    "claim.multiple": (_F, "the manifest holds more than one claim"),
    "claim.hardBindings.missing": (
        _F,
        "the claim binds no content: it has no hard-binding assertion",
    ),
    "claim.required.missing": (_F, "a required field of the claim is missing"),
    "claim.cbor.invalid": (_F, "the claim's CBOR is not valid"),
    "claimSignature.missing": (_F, "the claim signature cannot be found in the manifest"),
    "claimSignature.mismatch": (
        _F,
        "the claim signature does not verify: the claim was altered or signed with another key",
    ),
    "claimSignature.outsideValidity": (
        _F,
        "the claim was signed outside the signing certificate's validity period",
    ),
    "manifest.inaccessible": (
        _F,
        "the manifest is stored remotely and could not be fetched",
    ),
    "manifest.multipleParents": (_F, "the manifest has more than one parentOf ingredient"),
    "manifest.update.invalid": (
        _F,
        "an update manifest carries a hard binding or actions, which it may not",
    ),
    "manifest.update.wrongParents": (
        _F,
        "an update manifest must have exactly one parentOf ingredient",
    ),
    "manifest.timestamp.invalid": (
        _F,
        "a time-stamp manifest carries an assertion it may not",
    ),
    "manifest.timestamp.wrongParents": (
        _F,
        "a time-stamp manifest must have exactly one parentOf ingredient",
    ),
    "manifest.compressed.invalid": (_F, "the compressed manifest is not valid"),
    "signingCredential.untrusted": (
        _F,
        "the signing certificate does not chain to any of the verifier's trust anchors",
    ),
    "signingCredential.invalid": (
        _F,
        "the signing certificate is not valid for signing (key usage, EKU or structure)",
    ),
    "signingCredential.ocsp.revoked": (_F, "the signing certificate has been revoked"),
    "signingCredential.ocsp.unknown": (
        _F,
        "the OCSP responder does not know the signing certificate",
    ),
    "signingCredential.expired": (
        _F,
        "the signing certificate had expired at the time the signature is judged "
        "(without a trusted time-stamp that is now)",
    ),
    "assertion.hashedURI.mismatch": (
        _F,
        "an assertion's bytes differ from the hash the claim recorded: it was altered",
    ),
    "assertion.missing": (_F, "an assertion the claim lists is not in the manifest"),
    "assertion.multipleHardBindings": (_F, "the claim has more than one hard binding"),
    "assertion.undeclared": (
        _F,
        "the manifest holds an assertion the claim does not declare",
    ),
    "assertion.inaccessible": (_F, "a remote (non-embedded) assertion could not be fetched"),
    "assertion.notRedacted": (
        _F,
        "an assertion declared redacted is still present",
    ),
    "assertion.selfRedacted": (_F, "a claim redacts one of its own assertions"),
    "assertion.required.missing": (_F, "a required field of an assertion is missing"),
    "assertion.json.invalid": (_F, "an assertion's JSON(-LD) is not valid"),
    "assertion.cbor.invalid": (_F, "an assertion's CBOR is not valid"),
    "assertion.outsideManifest": (
        _F,
        "the claim lists an assertion that lives outside its own manifest",
    ),
    "assertion.action.ingredientMismatch": (
        _F,
        "an action that needs an ingredient names none, or one that cannot be found",
    ),
    "assertion.action.malformed": (_F, "an actions assertion is not well formed"),
    "assertion.action.redacted": (_F, "an actions assertion was redacted, which is not allowed"),
    "assertion.action.redactionMismatch": (
        _F,
        "a redaction action names no redaction, or one that cannot be found",
    ),
    "assertion.dataHash.mismatch": (
        _F,
        "the file's bytes differ from the signed hash: the content changed after signing "
        "(or the manifest was moved into other content)",
    ),
    "assertion.dataHash.malformed": (_F, "the data-hash assertion is not well formed"),
    "assertion.dataHash.redacted": (_F, "the hard-binding assertion was redacted"),
    "assertion.dataHash.additionalExclusionsPresent": (
        _I,
        "the data hash leaves more of the file unhashed than the manifest itself",
    ),
    "assertion.bmffHash.mismatch": (
        _F,
        "the file's BMFF boxes differ from the signed hash: the content changed",
    ),
    "assertion.bmffHash.malformed": (_F, "the BMFF hash assertion is not well formed"),
    "assertion.boxesHash.mismatch": (
        _F,
        "the file's boxes or chunks differ from the signed hashes: the content changed",
    ),
    "assertion.boxesHash.unknownBox": (
        _F,
        "the file has a box or chunk the signed box hashes do not account for",
    ),
    "assertion.boxesHash.malformed": (_F, "the box hash assertion is not well formed"),
    "assertion.collectionHash.mismatch": (
        _F,
        "a file of the collection differs from its signed hash",
    ),
    "assertion.collectionHash.incorrectFileCount": (
        _F,
        "a file listed in the collection hash is missing",
    ),
    "assertion.collectionHash.invalidURI": (
        _F,
        "a collection hash names a file with '.' or '..' in its path",
    ),
    "assertion.collectionHash.malformed": (_F, "the collection hash assertion is not well formed"),
    "assertion.multiAssetHash.malformed": (_F, "the multi-asset hash assertion is not well formed"),
    "assertion.multiAssetHash.missingPart": (
        _F,
        "a required part of the multi-part asset cannot be found",
    ),
    "assertion.cloud-data.hardBinding": (
        _F,
        "a hard binding sits in a cloud-data assertion, which is not allowed",
    ),
    "assertion.cloud-data.actions": (
        _F,
        "an update manifest's cloud-data assertion references actions",
    ),
    "assertion.cloud-data.malformed": (_F, "a cloud-data assertion is incomplete"),
    "assertion.ingredient.malformed": (_F, "an ingredient assertion is incomplete"),
    "assertion.metadata.disallowed": (
        _F,
        "a metadata assertion holds a field the specification does not allow",
    ),
    "assertion.timestamp.malformed": (_F, "the time-stamp assertion is not well formed"),
    "ingredient.hashedURI.mismatch": (
        _F,
        "an ingredient's claim differs from the hash its parent recorded",
    ),
    "ingredient.manifest.missing": (
        _F,
        "the manifest an ingredient points to is not in the manifest store",
    ),
    "ingredient.manifest.mismatch": (
        _F,
        "the ingredient's manifest differs from the hash its parent recorded",
    ),
    "ingredient.claimSignature.missing": (
        _F,
        "the claim signature an ingredient points to cannot be found",
    ),
    "ingredient.claimSignature.mismatch": (
        _F,
        "the ingredient's claim signature differs from the hash its parent recorded",
    ),
    "hashedURI.missing": (_F, "the data a hashed URI points to cannot be found"),
    "hashedURI.mismatch": (_F, "the data a hashed URI points to differs from its hash"),
    "algorithm.unsupported": (
        _F,
        "an algorithm (signature or hash) is unknown to or unsupported by this validator",
    ),
    "general.error": (_F, "an error no specific status code covers"),
    # -- CAWG identity assertion ----------------------------------------------------------------
    "cawg.identity.trusted": (
        _S,
        "the identity assertion is valid and its credential is trusted",
    ),
    "cawg.identity.well-formed": (
        _S,
        "the identity assertion is well formed and its signature holds (trust aside)",
    ),
    "cawg.identity.cbor.invalid": (_F, "the identity assertion's CBOR is not valid"),
    "cawg.identity.assertion.mismatch": (
        _F,
        "the identity assertion references an assertion the claim does not hold",
    ),
    "cawg.identity.assertion.duplicate": (
        _F,
        "the identity assertion references the same assertion twice",
    ),
    "cawg.identity.credential_revoked": (
        _F,
        "the identity assertion was signed with a revoked credential",
    ),
    "cawg.identity.hard_binding_missing": (
        _F,
        "the identity assertion does not reference the claim's hard binding",
    ),
    "cawg.identity.hard_binding_incorrect": (
        _F,
        "the identity assertion references the wrong hard binding",
    ),
    "cawg.identity.sig_type.unknown": (_F, "the identity assertion's signature type is unknown"),
    "cawg.identity.pad.invalid": (_F, "the identity assertion's padding holds non-zero bytes"),
    "cawg.identity.expected_partial_claim.mismatch": (
        _F,
        "the identity assertion expected a different claim",
    ),
    "cawg.identity.expected_claim_generator.mismatch": (
        _F,
        "the identity assertion expected a different claim generator",
    ),
    "cawg.identity.unexpected_countersigner": (
        _F,
        "an identity assertion is present that the others did not expect",
    ),
    "cawg.identity.expected_countersigner.mismatch": (
        _F,
        "an identity assertion is signed by other credentials than expected",
    ),
    "cawg.identity.expected_countersigner.missing": (
        _F,
        "an identity assertion the others expected is missing",
    ),
    "cawg.x509.signature.validated": (
        _S,
        "the X.509 signature of the identity assertion is valid",
    ),
    "cawg.x509.credential.untrusted": (
        _F,
        "the identity assertion's X.509 certificate does not chain to a CAWG trust anchor "
        "configured here",
    ),
    "cawg.ica.credential_valid": (
        _S,
        "the identity claims aggregation credential passed every check",
    ),
    "cawg.ica.invalid_cose_sign1": (_F, "the aggregation credential is not a valid COSE_Sign1"),
    "cawg.ica.invalid_alg": (
        _F,
        "the aggregation credential's algorithm is missing or unsupported",
    ),
    "cawg.ica.invalid_content_type": (
        _F,
        "the aggregation credential's content type is missing or wrong",
    ),
    "cawg.ica.invalid_verifiable_credential": (
        _F,
        "the aggregation credential is not a valid verifiable credential",
    ),
    "cawg.ica.invalid_issuer": (_F, "the aggregation credential's issuer is not a DID"),
    "cawg.ica.did_unsupported_method": (
        _F,
        "the issuer's DID uses a method this validator does not support",
    ),
    "cawg.ica.did_unavailable": (_F, "the issuer's DID document could not be resolved"),
    "cawg.ica.invalid_did_document": (_F, "the issuer's DID document cannot be parsed"),
    "cawg.ica.untrusted_issuer": (
        _I,
        "the issuer of the identity claims is not one this validator trusts",
    ),
    "cawg.ica.signature_mismatch": (
        _F,
        "the identity claims aggregation signature does not verify",
    ),
    "cawg.ica.time_stamp.validated": (_S, "the aggregation credential's time-stamp is valid"),
    "cawg.ica.time_stamp.invalid": (_F, "the aggregation credential's time-stamp is not valid"),
    "cawg.ica.valid_from.missing": (_F, "the aggregation credential has no validFrom date"),
    "cawg.ica.valid_from.invalid": (_F, "the aggregation credential's validFrom date is invalid"),
    "cawg.ica.valid_until.invalid": (
        _F,
        "the aggregation credential's validUntil date is invalid or past",
    ),
    "cawg.ica.revocation.unsupported": (
        _F,
        "the aggregation credential's revocation method is not supported",
    ),
    "cawg.ica.revocation.unavailable": (
        _F,
        "the aggregation credential's revocation status could not be had",
    ),
    "cawg.ica.credential.not_revoked": (_S, "the aggregation credential is not revoked"),
    "cawg.ica.credential.revoked": (_F, "the aggregation credential has been revoked"),
    "cawg.ica.signer_payload.mismatch": (
        _F,
        "the aggregation credential is bound to another asset than this one",
    ),
    "cawg.ica.verified_identities.missing": (
        _F,
        "the aggregation credential lists no verified identities",
    ),
    "cawg.ica.verified_identities.invalid": (
        _F,
        "an entry of the aggregation credential's verified identities is invalid",
    ),
    # -- validator-specific ---------------------------------------------------------------------
    "com.adobe.prerelease": (
        _F,
        "the manifest is pre-release (pre-1.0) C2PA content that current validators do not read",
    ),
}

STATUS_CODES = MappingProxyType(_TABLE)

# Longest prefix first, so ``cawg.identity.*`` wins over ``cawg.*``.
_FAMILIES: tuple[tuple[str, str], ...] = (
    ("cawg.identity.", "the CAWG identity assertion"),
    ("cawg.ica.", "the CAWG identity claims aggregation credential"),
    ("cawg.x509.", "the CAWG identity assertion's X.509 credential"),
    ("cawg.", "a CAWG assertion"),
    ("claimSignature.", "the claim signature"),
    ("signingCredential.", "the signing certificate"),
    ("timeStamp.", "the RFC 3161 time-stamp"),
    ("timeOfSigning.", "the claimed time of signing"),
    ("assertion.", "an assertion"),
    ("ingredient.", "an ingredient"),
    ("manifest.", "the manifest"),
    ("claim.", "the claim"),
    ("algorithm.", "an algorithm"),
    ("hashedURI.", "a hashed URI"),
)


def status_kind(code: str) -> StatusKind | None:
    """Whether the specification counts ``code`` as a success, informational or failure;
    None for a code this table does not know (c2pa's placement then stands alone)."""
    entry = _TABLE.get(code)
    return entry[0] if entry else None


def status_meaning(code: str) -> str:
    """The meaning of ``code`` in words; a generic one, never an error, for unknown codes."""
    entry = _TABLE.get(code)
    if entry is not None:
        return entry[1]
    about = next((what for prefix, what in _FAMILIES if code.startswith(prefix)), None)
    if about is None:
        return f"a status code this verifier does not know ({code}): see the explanation"
    return f"a status about {about} that this verifier does not know: see the explanation"
