"""c2pa's JSON views of a manifest store mapped to `C2paReport`: states, status codes with
their meanings, certificates, time-stamps, the nested ingredient tree, the assertions an auditor
reads, and the warnings that keep `valid` from reading as success.

Two views of one read are used: ``Reader.json()`` (the manifest store keyed by label, with
``validation_results`` and per-ingredient deltas) and ``Reader.crjson()``, which alone has the
certificates' full subject and issuer, the time-stamp's authority and each manifest's own
validation results. The ingredient tree follows ingredient ``active_manifest`` labels through
the store, guarded against cycles and against trees too big to list.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from provenance.c2pa._report import (
    C2paReport,
    C2paState,
    CertificateInfo,
    Creator,
    IdentityAssertion,
    IngredientReport,
    StatusCode,
    TimeStamp,
)
from provenance.c2pa._sign import MODERATION_LABEL, SOFT_BINDING_LABEL
from provenance.c2pa._status_codes import status_kind

__all__ = ["as_dict", "assertion_data", "report_from_store"]

_STATES: dict[str, C2paState] = {"trusted": "trusted", "valid": "valid", "invalid": "invalid"}
_TRAINING_MINING = ("cawg.training-mining", "c2pa.training-mining")
_CREATIVE_WORK = "stds.schema-org.CreativeWork"
_IDENTITY = "cawg.identity"
_UNTRUSTED = "signingCredential.untrusted"
_INGREDIENT_URI = re.compile(r"/c2pa/(?P<manifest>[^/]+)/c2pa\.assertions/(?P<assertion>[^/]+)$")
# An ingredient tree is a DAG that may share sub-trees: bounded, so a crafted store cannot
# make a report of millions of nodes.
_MAX_DEPTH = 16
_MAX_INGREDIENTS = 256
_DN_SPECIAL = re.compile(r'([,+"\\<>;=])')


def report_from_store(store: dict[str, Any], detail: dict[str, Any]) -> C2paReport:
    label = store.get("active_manifest")
    manifests = as_dict(store.get("manifests"))
    manifest = manifests.get(label) if isinstance(label, str) else None
    results = as_dict(store.get("validation_results"))
    active = as_dict(results.get("activeManifest"))
    failures = _statuses(active.get("failure"))
    if not results:
        failures = _statuses(store.get("validation_status"))
    seen = {(s.code, s.url) for s in failures}
    deltas = _deltas(results.get("ingredientDeltas"))
    for delta in deltas.values():
        for item in _statuses(delta.get("failure")):
            if (item.code, item.url) not in seen:
                seen.add((item.code, item.url))
                failures.append(item)
    state = _STATES.get(str(store.get("validation_state", "")).lower())
    if state is None:
        state = "invalid" if failures else "valid"
    if not isinstance(manifest, dict):
        failures.append(StatusCode(code="claim.missing", explanation="no active manifest"))
        return C2paReport(
            state="invalid",
            status_codes=failures,
            reason="the manifest store names no active manifest it holds",
            warnings=["the manifest cannot be validated: nothing it says can be relied on"],
        )
    informational = _statuses(active.get("informational"))
    successes = _unique(_statuses(active.get("success")))
    base = C2paReport(
        state=state,
        status_codes=failures,
        informational=informational,
        success_codes=sorted({s.code for s in successes}),
        successes=successes,
        manifest_label=label,
    )
    try:
        return _detailed(base, manifest, manifests, deltas, _crjson_by_label(detail))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # The verdict is c2pa's and stands; only the details could not all be read.
        return base.model_copy(
            update={
                "reason": _reason(base),
                "warnings": [*_state_warnings(base), f"not every detail could be read: {exc}"],
            }
        )


def _detailed(
    base: C2paReport,
    manifest: dict[str, Any],
    manifests: dict[str, Any],
    deltas: dict[tuple[str, str], dict[str, Any]],
    detail: dict[str, dict[str, Any]],
) -> C2paReport:
    label = str(base.manifest_label)
    actions = _actions(manifest)
    signature = as_dict(manifest.get("signature_info"))
    cr_signature = as_dict(detail.get(label, {}).get("signature"))
    certificate = _certificate(cr_signature.get("certificateInfo"))
    every = [*base.status_codes, *base.informational, *base.successes]
    time_stamp = _time_stamp(signature, cr_signature, every)
    ingredients = _ingredient_tree(label, manifests, deltas, detail, [label], [0])
    # Validated, not copied: a manifest says whatever its signer wrote, types included.
    report = C2paReport.model_validate(
        {
            **dict(base),
            "signer": (certificate.common_name if certificate else None)
            or _text_or_none(signature.get("common_name")),
            "signer_organization": certificate.organization if certificate else None,
            "issuer": _name(certificate) or _text_or_none(signature.get("issuer")),
            "signing_certificate": certificate,
            "signature_algorithm": _text_or_none(
                cr_signature.get("algorithm") or signature.get("alg")
            ),
            # c2pa gives the TSA's time even when the TSA is not trusted; only a trusted
            # time-stamp proves when the signature was made.
            "signed_at": time_stamp.time if time_stamp.validated and time_stamp.trusted else None,
            "time_stamp": time_stamp,
            "claim_generator": _claim_generator(manifest),
            "title": _text_or_none(manifest.get("title")),
            "actions": actions,
            "digital_source_type": _source_type(actions),
            "ingredients": ingredients,
            "moderation": assertion_data(manifest, MODERATION_LABEL),
            "soft_binding": assertion_data(manifest, SOFT_BINDING_LABEL),
            "training_mining": next(
                (a for a in (assertion_data(manifest, t) for t in _TRAINING_MINING) if a), None
            ),
            "creator": _creator(manifest, detail.get(label, {}), every),
        }
    )
    return report.model_copy(update={"reason": _reason(report), "warnings": _warnings(report)})


def _reason(report: C2paReport) -> str:
    signer = report.signer or "an unknown signer"
    if report.state == "trusted":
        return (
            f"signed by {signer}, whose certificate chains to a trust anchor, over content "
            "that matches the signed hashes"
        )
    if report.state == "valid":
        return (
            f"the signature and hashes hold, but the signer ({signer}) is not in the trust list "
            "(signingCredential.untrusted)"
        )
    broken = [s for s in report.status_codes if s.code != _UNTRUSTED] or report.status_codes
    unique = list(dict.fromkeys(s.code for s in broken))
    described = "; ".join(f"{code}: {_meaning(broken, code)}" for code in unique[:3])
    return f"the manifest does not hold ({described or 'unknown failure'})"


def _meaning(statuses: list[StatusCode], code: str) -> str:
    return next(s.meaning for s in statuses if s.code == code)


def _state_warnings(report: C2paReport) -> list[str]:
    if report.state == "valid":
        signer = report.signer or "an unknown signer"
        return [
            f"the signature is intact but the signer ({signer}) is not in the trust list: "
            "nothing here vouches for who made this; add the signer's root to trust it"
        ]
    if report.state == "invalid":
        return ["the Content Credentials do not hold: do not rely on anything they say"]
    return []


def _warnings(report: C2paReport) -> list[str]:
    warnings = _state_warnings(report)
    stamp = report.time_stamp
    if report.state in ("trusted", "valid"):
        if not stamp.present:
            expiry = ""
            cert = report.signing_certificate
            if cert is not None and cert.not_after is not None:
                expiry = f" ({cert.not_after:%Y-%m-%d})"
            warnings.append(
                "the signature has no RFC 3161 time-stamp: when it was made is unproven, and "
                f"it stops validating once the signing certificate expires{expiry}"
            )
        elif not (stamp.validated and stamp.trusted):
            codes = ", ".join(dict.fromkeys(s.code for s in stamp.status_codes)) or "not verified"
            warnings.append(f"the time-stamp does not hold or is not trusted ({codes})")
    for ingredient in _walk(report.ingredients):
        title = ingredient.title or ingredient.label or "untitled"
        if ingredient.validation_state == "invalid":
            codes = ", ".join(dict.fromkeys(ingredient.failures)) or "unknown failure"
            warnings.append(f"ingredient '{title}' does not hold ({codes})")
        elif broken := [c for c in ingredient.recorded_failures if c != _UNTRUSTED]:
            # Whom the parent's signer trusted says nothing: trust is judged here, now.
            codes = ", ".join(dict.fromkeys(broken))
            warnings.append(
                f"ingredient '{title}' had failures when it was taken in ({codes}); it "
                "validates today, but its history was broken then"
            )
    for identity in report.creator.identities if report.creator else []:
        broken = [s.code for s in identity.status_codes if status_kind(s.code) != "success"]
        broken = [c for c in broken if c.startswith("cawg.")]
        if broken:
            codes = ", ".join(dict.fromkeys(broken))
            warnings.append(f"the identity assertion {identity.label} is not verified ({codes})")
    return warnings


def _walk(ingredients: list[IngredientReport]) -> list[IngredientReport]:
    out: list[IngredientReport] = []
    for ingredient in ingredients:
        out.append(ingredient)
        out.extend(_walk(ingredient.ingredients))
    return out


def _statuses(raw: Any) -> list[StatusCode]:
    out = []
    for item in _list(raw):
        if isinstance(item, dict):
            explanation, url = item.get("explanation"), item.get("url")
            out.append(
                StatusCode(
                    code=str(item.get("code", "unknown")),
                    explanation=str(explanation) if explanation is not None else None,
                    url=str(url) if url is not None else None,
                )
            )
    return out


def _unique(statuses: list[StatusCode]) -> list[StatusCode]:
    return list({(s.code, s.url): s for s in statuses}.values())


def _deltas(raw: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """Ingredient validation deltas by (manifest label, ingredient assertion label)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for delta in _list(raw):
        found = _INGREDIENT_URI.search(str(as_dict(delta).get("ingredientAssertionURI", "")))
        if found:
            out[(found["manifest"], found["assertion"])] = as_dict(delta.get("validationDeltas"))
    return out


def _crjson_by_label(detail: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        str(m["label"]): m
        for m in _list(detail.get("manifests"))
        if isinstance(m, dict) and m.get("label")
    }


def _certificate(raw: Any) -> CertificateInfo | None:
    info = as_dict(raw)
    subject, issuer = as_dict(info.get("subject")), as_dict(info.get("issuer"))
    if not subject and not issuer:
        return None
    validity = as_dict(info.get("validity"))
    return CertificateInfo(
        subject=_dn(subject),
        issuer=_dn(issuer),
        common_name=_part(subject, "CN"),
        organization=_part(subject, "O"),
        issuer_common_name=_part(issuer, "CN"),
        issuer_organization=_part(issuer, "O"),
        serial_number=str(info["serialNumber"]) if info.get("serialNumber") else None,
        not_before=_timestamp(validity.get("notBefore")),
        not_after=_timestamp(validity.get("notAfter")),
    )


def _dn(parts: dict[str, Any]) -> str | None:
    """RFC 4514: most specific attribute first (crJSON lists them as the certificate does)."""
    rdns = []
    for key, value in reversed(list(parts.items())):
        for one in value if isinstance(value, list) else [value]:
            text = _DN_SPECIAL.sub(r"\\\1", str(one))
            if text.startswith(("#", " ")):
                text = "\\" + text
            if text.endswith(" ") and not text.endswith("\\ "):
                text = text[:-1] + "\\ "
            rdns.append(f"{key}={text}")
    return ",".join(rdns) or None


def _part(parts: dict[str, Any], key: str) -> str | None:
    value = parts.get(key)
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value) if value else None


def _name(certificate: CertificateInfo | None) -> str | None:
    if certificate is None:
        return None
    cn, org = certificate.issuer_common_name, certificate.issuer_organization
    if cn and org:
        return f"{cn} ({org})"
    return cn or org or None


def _time_stamp(
    signature: dict[str, Any], cr_signature: dict[str, Any], statuses: list[StatusCode]
) -> TimeStamp:
    codes = _unique([s for s in statuses if s.code.startswith("timeStamp.")])
    info = cr_signature.get("timeStampInfo")
    if not isinstance(info, dict) and not codes:
        return TimeStamp()
    stamp = as_dict(info)
    authority = _certificate(stamp.get("certificateInfo"))
    names = {s.code for s in codes}
    return TimeStamp(
        present=True,
        time=_timestamp(stamp.get("timestamp")) or _timestamp(signature.get("time")),
        authority=authority.common_name if authority else None,
        authority_organization=authority.organization if authority else None,
        authority_subject=authority.subject if authority else None,
        authority_issuer=authority.issuer if authority else None,
        validated="timeStamp.validated" in names,
        trusted="timeStamp.trusted" in names,
        status_codes=codes,
    )


def _trusted_time(signature: dict[str, Any], successes: set[str]) -> dt.datetime | None:
    trusted = {"timeStamp.validated", "timeStamp.trusted"} <= successes
    return _timestamp(signature.get("time")) if trusted else None


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
    for assertion in _list(manifest.get("assertions")):
        if str(as_dict(assertion).get("label", "")).startswith("c2pa.actions"):
            data = as_dict(assertion.get("data"))
            actions.extend(a for a in _list(data.get("actions")) if isinstance(a, dict))
    return actions


def _source_type(actions: list[dict[str, Any]]) -> str | None:
    # Some signers pad the IRI with spaces; it is compared as a string downstream.
    found = next((a["digitalSourceType"] for a in actions if a.get("digitalSourceType")), None)
    return str(found).strip() if found else None


def assertion_data(manifest: dict[str, Any], label: str) -> dict[str, Any] | None:
    found = _assertions(manifest, label)
    return found[0][1] if found else None


def _assertions(manifest: dict[str, Any], label: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for assertion in _list(manifest.get("assertions")):
        # c2pa may version labels (c2pa.soft-binding.v2) or number repeats (__1).
        found = str(as_dict(assertion).get("label", ""))
        if found == label or found.startswith((label + ".v", label + "__")):
            data = assertion.get("data")
            if isinstance(data, dict):
                out.append((found, data))
    return out


def _creator(
    manifest: dict[str, Any], cr_manifest: dict[str, Any], statuses: list[StatusCode]
) -> Creator | None:
    identities = []
    cr_assertions = as_dict(cr_manifest.get("assertions"))
    for label, data in _assertions(manifest, _IDENTITY):
        identities.append(_identity(label, data, as_dict(cr_assertions.get(label)), statuses))
    work = assertion_data(manifest, _CREATIVE_WORK)
    authors: list[dict[str, Any]] = []
    if work is not None:
        raw = work.get("author")
        for author in raw if isinstance(raw, list) else [raw] if raw else []:
            authors.append(author if isinstance(author, dict) else {"name": str(author)})
    if not identities and work is None:
        return None
    return Creator(identities=identities, authors=authors, creative_work=work)


def _identity(
    label: str, data: dict[str, Any], cr_data: dict[str, Any], statuses: list[StatusCode]
) -> IdentityAssertion:
    # X.509 identities come as signer_payload + signature_info; claims aggregation comes as
    # the verifiable credential itself, its payload under c2paAsset.
    payload = as_dict(data.get("signer_payload") or data.get("c2paAsset"))
    referenced = [
        str(as_dict(r).get("url")) for r in _list(payload.get("referenced_assertions")) if r
    ]
    certificate = _certificate(as_dict(cr_data.get("signature")).get("certificateInfo"))
    signature = as_dict(data.get("signature_info"))
    identities = [i for i in _list(data.get("verifiedIdentities")) if isinstance(i, dict)]
    sig_type = payload.get("sig_type")
    aggregated = sig_type == "cawg.identity_claims_aggregation"
    issuer = data.get("issuer")
    if aggregated:
        signer = next((str(i["name"]) for i in identities if i.get("name")), None)
        issuer_text = str(as_dict(issuer).get("id") or issuer) if issuer else None
        organization = None
    else:
        signer = (certificate.common_name if certificate else None) or _text_or_none(
            signature.get("common_name")
        )
        issuer_text = (certificate.issuer if certificate else None) or _text_or_none(
            signature.get("issuer")
        )
        organization = certificate.organization if certificate else None
    mine = [s for s in statuses if str(s.url or "").endswith("/c2pa.assertions/" + label)]
    names = {s.code for s in mine}
    return IdentityAssertion(
        label=label,
        sig_type=str(sig_type) if sig_type else None,
        referenced_assertions=referenced,
        signer=signer,
        signer_organization=organization,
        issuer=issuer_text,
        verified_identities=identities,
        well_formed="cawg.identity.well-formed" in names or "cawg.identity.trusted" in names,
        trusted="cawg.identity.trusted" in names,
        status_codes=_unique(mine),
        data=data,
    )


def _ingredient_tree(
    parent: str,
    manifests: dict[str, Any],
    deltas: dict[tuple[str, str], dict[str, Any]],
    detail: dict[str, dict[str, Any]],
    path: list[str],
    count: list[int],
) -> list[IngredientReport]:
    """The ingredients of manifest ``parent``, each with its own manifest's ingredients below.

    ``path`` holds the manifests from the active one down to ``parent``; ``count`` the nodes
    made so far (a one-item list, shared by the whole walk).
    """
    out = []
    for raw in _list(as_dict(manifests.get(parent)).get("ingredients")):
        if not isinstance(raw, dict):
            continue
        if count[0] >= _MAX_INGREDIENTS:
            break
        count[0] += 1
        label = str(raw.get("label") or "")
        child = raw.get("active_manifest")
        child = str(child) if child else None
        child_manifest = as_dict(manifests.get(child)) if child else {}
        delta = deltas.get((parent, label))
        if delta is None and child:
            # No delta for this instance: the ingredient manifest's own results, if any.
            delta = as_dict(as_dict(detail.get(child)).get("validationResults"))
        delta = delta or {}
        failures = _statuses(delta.get("failure"))
        successes = {s.code for s in _statuses(delta.get("success"))}
        state = _ingredient_state(child, child_manifest, failures, successes)
        cr_child = as_dict(detail.get(child)) if child else {}
        certificate = _certificate(as_dict(cr_child.get("signature")).get("certificateInfo"))
        signature = as_dict(child_manifest.get("signature_info"))
        actions = _actions(child_manifest)
        nested: list[IngredientReport] = []
        unexpanded = None
        if child and child_manifest:
            if child in path:
                unexpanded = "its manifest is one of its own ancestors (a cycle): not followed"
            elif len(path) >= _MAX_DEPTH:
                unexpanded = f"the ingredient tree is deeper than {_MAX_DEPTH}: not followed"
            else:
                nested = _ingredient_tree(child, manifests, deltas, detail, [*path, child], count)
        out.append(
            IngredientReport(
                title=_text_or_none(raw.get("title")),
                relationship=_text_or_none(raw.get("relationship")),
                format=_text_or_none(raw.get("format")),
                label=label or None,
                manifest_label=child,
                data_types=[str(as_dict(t).get("type")) for t in _list(raw.get("data_types")) if t],
                validation_state=state,
                failures=[s.code for s in failures],
                status_codes=failures,
                informational=_statuses(delta.get("informational")),
                recorded_failures=_recorded_failures(raw),
                signer=(certificate.common_name if certificate else None)
                or _text_or_none(signature.get("common_name")),
                signer_organization=certificate.organization if certificate else None,
                issuer=_name(certificate) or _text_or_none(signature.get("issuer")),
                claim_generator=_claim_generator(child_manifest) if child_manifest else None,
                signed_at=_trusted_time(signature, successes),
                digital_source_type=_source_type(actions),
                ingredients=nested,
                unexpanded=unexpanded,
            )
        )
    if count[0] >= _MAX_INGREDIENTS and out:
        last = out[-1]
        if last.unexpanded is None:
            out[-1] = last.model_copy(
                update={"unexpanded": f"more than {_MAX_INGREDIENTS} ingredients: list cut"}
            )
    return out


def _ingredient_state(
    child: str | None,
    child_manifest: dict[str, Any],
    failures: list[StatusCode],
    successes: set[str],
) -> C2paState:
    # An untrusted signer leaves an ingredient valid, as it does the active manifest.
    broken = [s for s in failures if s.code != _UNTRUSTED]
    if not child or not child_manifest:
        # No manifest of its own (or one the store lacks: ingredient.manifest.missing).
        return "invalid" if broken or child else "absent"
    if broken:
        return "invalid"
    return "trusted" if "signingCredential.trusted" in successes else "valid"


def _recorded_failures(ingredient: dict[str, Any]) -> list[str]:
    """Failure codes the parent stored with the ingredient (v1/v2 validation_status, or v3
    validation_results), by the 2.x meaning of each code."""
    recorded = _statuses(ingredient.get("validation_status"))
    results = as_dict(ingredient.get("validation_results"))
    recorded += _statuses(as_dict(results.get("activeManifest")).get("failure"))
    return [s.code for s in recorded if status_kind(s.code) == "failure"]


def _text_or_none(value: Any) -> str | None:
    return str(value) if value is not None and value != "" else None


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
