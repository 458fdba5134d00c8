"""Whom the verifier trusts and what it may fetch: the trust part of c2pa's settings.

Trust is built from three kinds of source, merged (anchors and EKUs accumulate):

- PEM bundles of root certificates (the local signing root, ``GENSEAL_TRUST_ANCHORS``,
  ``genseal verify --trust``) → c2pa ``trust.trust_anchors``;
- an allowed-EKU file (``GENSEAL_TRUST_CONFIG``), one OID a line with ``//`` or ``#``
  comments, as the C2PA ``test-trust-config.txt`` → ``trust.trust_config``. c2pa adds these
  to the extended key usages it accepts by default (emailProtection and the C2PA ones), so
  the file widens what a trusted leaf may carry (documentSigning, say); it never narrows it;
- a trust list in c2pa's own settings format (``GENSEAL_TRUST_LIST``): a JSON (or TOML)
  document whose ``trust`` table holds ``trust_anchors``, ``user_anchors``, ``trust_config``
  and ``allowed_list`` (end-entity certificates trusted as they are), as the C2PA
  ``trust_config_test_settings.json``. Only that table is taken: the file cannot switch
  network fetching on or change anything else. ``allowed_list`` is handed to c2pa as given,
  but c2pa-python 0.38.1 was not seen to trust a signer by it (as PEM or as hashes): a root
  in the anchors is what makes a signer trusted.

c2pa accepts a malformed EKU line without a word and fails on bad PEM only when the first
file is read, so every source is checked here first and refused with a ConfigError that names
the file. Fetching remote manifests and OCSP responses stays off unless asked for.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography import x509

from genseal.errors import ConfigError

__all__ = ["TrustConfig", "load_allowed_ekus", "load_anchors", "load_trust_list"]

_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
_TRUST_KEYS = ("trust_anchors", "user_anchors", "trust_config", "allowed_list")
_ANCHOR_HINT = "give a PEM bundle of root certificates (-----BEGIN CERTIFICATE-----)"


@dataclass(frozen=True)
class TrustConfig:
    """The verifier's trust: roots, extra allowed EKUs, end-entity certificates, and whether
    it may reach the network while validating."""

    anchors_pem: bytes = b""
    allowed_ekus: tuple[str, ...] = ()
    allowed_certs_pem: bytes = b""
    fetch_remote_manifests: bool = False
    fetch_ocsp: bool = False

    @classmethod
    def from_files(
        cls,
        anchors: list[Path] | tuple[Path, ...] = (),
        *,
        allowed_ekus: Path | None = None,
        trust_list: Path | None = None,
        fetch_remote_manifests: bool = False,
        fetch_ocsp: bool = False,
    ) -> TrustConfig:
        """Trust from files, each checked (ConfigError naming the file when one is bad)."""
        trust = cls(fetch_remote_manifests=fetch_remote_manifests, fetch_ocsp=fetch_ocsp)
        for path in anchors:
            trust = trust.with_anchors(load_anchors(path))
        if allowed_ekus is not None:
            trust = trust.merged(cls(allowed_ekus=load_allowed_ekus(allowed_ekus)))
        if trust_list is not None:
            trust = trust.merged(load_trust_list(trust_list))
        return trust

    def with_anchors(self, pem: bytes, source: str = "the trust anchors") -> TrustConfig:
        """These trust settings plus the roots in ``pem`` (checked; blank adds nothing)."""
        if not pem.strip():
            return self
        _check_pem(pem, source)
        return replace(self, anchors_pem=_join(self.anchors_pem, pem))

    def merged(self, other: TrustConfig) -> TrustConfig:
        """Both trusts together; network fetching is on if either asks for it."""
        ekus = self.allowed_ekus + tuple(
            e for e in other.allowed_ekus if e not in self.allowed_ekus
        )
        return TrustConfig(
            anchors_pem=_join(self.anchors_pem, other.anchors_pem),
            allowed_ekus=ekus,
            allowed_certs_pem=_join(self.allowed_certs_pem, other.allowed_certs_pem),
            fetch_remote_manifests=self.fetch_remote_manifests or other.fetch_remote_manifests,
            fetch_ocsp=self.fetch_ocsp or other.fetch_ocsp,
        )

    @property
    def has_anchors(self) -> bool:
        """Whether any signer can be trusted at all (roots or end-entity certificates)."""
        return bool(self.anchors_pem.strip() or self.allowed_certs_pem.strip())

    def c2pa_settings(self) -> dict[str, Any]:
        """The settings dict for ``c2pa.Context.from_dict``."""
        settings: dict[str, Any] = {
            "verify": {
                "remote_manifest_fetch": self.fetch_remote_manifests,
                "ocsp_fetch": self.fetch_ocsp,
            }
        }
        trust: dict[str, str] = {}
        if self.anchors_pem.strip():
            trust["trust_anchors"] = self.anchors_pem.decode("ascii")
        if self.allowed_ekus:
            trust["trust_config"] = "".join(f"{oid}\n" for oid in self.allowed_ekus)
        if self.allowed_certs_pem.strip():
            trust["allowed_list"] = self.allowed_certs_pem.decode("ascii")
        if trust:
            settings["trust"] = trust
        return settings


def load_anchors(path: Path) -> bytes:
    """The PEM bundle of roots at ``path``, checked."""
    pem = _read(path, "trust anchor file")
    _check_pem(pem, f"trust anchor file {path}")
    return pem


def load_allowed_ekus(path: Path) -> tuple[str, ...]:
    """The OIDs of an allowed-EKU file (``test-trust-config.txt`` form), checked."""
    text = _text(_read(path, "allowed-EKU file"), f"allowed-EKU file {path}")
    return _parse_ekus(text, f"allowed-EKU file {path}")


def load_trust_list(path: Path) -> TrustConfig:
    """The ``trust`` table of a c2pa settings file (JSON, or TOML by its suffix), checked."""
    source = f"trust list {path}"
    text = _text(_read(path, "trust list"), source)
    document: Any
    try:
        document = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"the {source} is not a c2pa settings file: {exc}",
            hint='expected JSON such as {"trust": {"trust_anchors": "-----BEGIN ..."}}',
        ) from exc
    table = document.get("trust") if isinstance(document, dict) else None
    if not isinstance(table, dict):
        raise ConfigError(
            f"the {source} has no `trust` table",
            hint='a c2pa settings file keeps its trust list under "trust"',
        )
    values: dict[str, str] = {}
    for key in _TRUST_KEYS:
        value = table.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ConfigError(f"`trust.{key}` in the {source} must be a string")
        values[key] = value
    if not any(v.strip() for v in values.values()):
        raise ConfigError(
            f"the {source} names no trust anchors, allowed certificates or EKUs",
            hint=f"set one of {', '.join('trust.' + k for k in _TRUST_KEYS)}",
        )
    trust = TrustConfig()
    for key in ("trust_anchors", "user_anchors"):
        if values.get(key, "").strip():
            trust = trust.with_anchors(
                values[key].encode("ascii", "replace"), f"`trust.{key}` in the {source}"
            )
    if values.get("allowed_list", "").strip():
        allowed = values["allowed_list"].encode("ascii", "replace")
        _check_pem(allowed, f"`trust.allowed_list` in the {source}")
        trust = replace(trust, allowed_certs_pem=allowed)
    if values.get("trust_config", "").strip():
        ekus = _parse_ekus(values["trust_config"], f"`trust.trust_config` in the {source}")
        trust = replace(trust, allowed_ekus=ekus)
    return trust


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def _text(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"the {source} is not UTF-8 text") from exc


def _check_pem(pem: bytes, source: str) -> None:
    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise ConfigError(
            f"no PEM certificate could be read from {source}: {exc}", hint=_ANCHOR_HINT
        ) from exc
    if not certificates:
        raise ConfigError(f"no certificate in {source}", hint=_ANCHOR_HINT)
    # c2pa reads the bundle as one text: anything but ASCII breaks it later, less clearly.
    try:
        pem.decode("ascii")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source} is not plain ASCII PEM", hint=_ANCHOR_HINT) from exc


def _parse_ekus(text: str, source: str) -> tuple[str, ...]:
    oids: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("//", "#")):
            continue
        if not _OID.match(line):
            raise ConfigError(
                f"line {number} of the {source} is not an OID: {line[:60]!r}",
                hint="one dotted OID a line, e.g. 1.3.6.1.5.5.7.3.36; comments start with //",
            )
        if line not in oids:
            oids.append(line)
    if not oids:
        raise ConfigError(f"the {source} lists no OID")
    return tuple(oids)


def _join(first: bytes, second: bytes) -> bytes:
    if not first.strip():
        return second
    if not second.strip():
        return first
    return first.rstrip(b"\n") + b"\n" + second
