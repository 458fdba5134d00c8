"""TrustMark (Adobe's open watermark, PyPI ``trustmark`` 0.9): an optional backend, run only
from model files already on local disk.

TrustMark hides 100 bits in a 256x256 residual (a U-Net encoder) that is scaled onto the full
image, and reads them back with a ResNet decoder at 245x245 (224x224 for variant P). The 100
bits are a BCH packet: data bits, then ECC bits, then 4 version bits whose last two name the
schema (BCH_SUPER: 40 data + 56 ECC bits, corrects 8 flips; BCH_5: 61 + 35, 5 flips; BCH_4:
68 + 28, 4; BCH_3: 75 + 21, 3). genseal uses BCH_SUPER, the most robust, and fills its 40
data bits with::

    bits 0-31   the 32-bit payload, most significant bit first
    bits 32-39  CRC-8/I-432-1 of the payload's 4 bytes (poly 0x07, xorout 0x55)

``detected`` needs all three: the packet says BCH_SUPER, TrustMark's BCH decoder corrects it,
and the CRC holds. The CRC is not decoration: a decoder that reads all zeros (a flat or unmarked
image can) yields the all-zero BCH codeword, which BCH accepts; its CRC would be 0x55, not 0.
Confidence is ``1 - flips / 9`` for a detected mark (the bits BCH had to correct, of the 8 it
can), 0 otherwise.

Model files. The package keeps them in ``site-packages/trustmark/models/`` and, when one is
missing or its MD5 differs, downloads it from Adobe's CDN (:data:`MODEL_URL`) — which these
machines cannot reach. genseal never lets it: the files come from a directory the caller names
(``GENSEAL_TRUSTMARK_MODELS``), are checked against the package's own MD5 list first, and the
package's loader is pointed at that directory with its download step replaced by a check that
only refuses. Per variant ``T`` (genseal uses ``Q``) the embed + detect path needs
``trustmark_T.yaml``, ``encoder_T.ckpt`` and ``decoder_T.ckpt``, side by side in that
directory. (The remover ``trustmark_rm_T.*`` and, for Q and P, the box detector
``trustmark_bbox_T.*`` are not loaded.)

The soft-binding algorithm is ``org.genseal.trustmark.1`` for variant Q with the layout above;
another variant gets ``1b``, ``1c`` or ``1p`` (marks of one variant do not decode in another).
"""

from __future__ import annotations

import functools
import hashlib
import threading
from pathlib import Path
from typing import Any, Final, Literal, get_args

import numpy as np
import numpy.typing as npt
from PIL import Image

from genseal.errors import WatermarkError
from provenance._media import split_alpha
from provenance.watermark._protocol import WatermarkReading, check_payload

__all__ = [
    "MODEL_URL",
    "TrustMarkVariant",
    "TrustMarkWatermarker",
    "pack_payload",
    "read_packet",
    "required_model_files",
    "unpack_payload",
]

TrustMarkVariant = Literal["Q", "B", "C", "P"]
_VARIANTS: Final = get_args(TrustMarkVariant)

#: Where the trustmark package downloads its model files from (its MODEL_REMOTE_HOST).
MODEL_URL: Final = "https://cai-watermark.adobe.net/watermarking/trustmark-models/"

_PACKET_BITS: Final = 100  # TrustMark's secret_len
_DATA_BITS: Final = 40  # BCH_SUPER capacity
_BCH_BITS: Final = 96  # data + ECC; the last 4 of 100 are the version
_MAX_FLIPS: Final = 8  # BCH_SUPER corrects up to 8
_BCH_SUPER: Final = 0  # TrustMark.Encoding.BCH_SUPER, also the version it writes
_CRC_POLY: Final = 0x07
_CRC_XOROUT: Final = 0x55
_INSTALL_HINT: Final = "pip install 'genseal[trustmark]' (the trustmark package, 0.9.x)"


def required_model_files(variant: TrustMarkVariant = "Q") -> tuple[str, ...]:
    """The files embed + detect load for ``variant``, as named in TrustMark's model folder."""
    return (f"trustmark_{variant}.yaml", f"encoder_{variant}.ckpt", f"decoder_{variant}.ckpt")


def pack_payload(payload: str) -> str:
    """The 40 BCH_SUPER data bits (a '0'/'1' string) carrying ``payload`` and its CRC-8."""
    data = bytes.fromhex(check_payload(payload))
    return "".join(f"{byte:08b}" for byte in (*data, _crc8(data)))


def unpack_payload(bits: str) -> str | None:
    """The payload in 40 data bits, or None when they are not 40 bits or the CRC-8 fails."""
    if len(bits) != _DATA_BITS or set(bits) - {"0", "1"}:
        return None
    raw = int(bits, 2).to_bytes(_DATA_BITS // 8, "big")
    data, check = raw[:4], raw[4]
    return data.hex() if _crc8(data) == check else None


def read_packet(bits: npt.ArrayLike, ecc: Any) -> tuple[str | None, int]:
    """Decode 100 raw bits with TrustMark's own BCH layer ``ecc`` (its ``DataLayer``).

    Returns (payload, flips): the payload when the packet is BCH_SUPER, BCH corrects it and
    the CRC-8 holds, else None; ``flips`` is how many of the 96 BCH bits were corrected
    (-1 when nothing decoded).
    """
    word = np.asarray(bits).reshape(-1).astype(np.uint8)
    if word.size != _PACKET_BITS:
        raise WatermarkError(f"a TrustMark packet has {_PACKET_BITS} bits, got {word.size}")
    secret, present, schema = ecc.decode_bitstream(word[None, :], "binary")[0]
    if not present or schema != _BCH_SUPER:
        return None, -1
    payload = unpack_payload(str(secret))
    if payload is None:
        return None, -1
    clean = np.asarray(ecc.encode_binary([pack_payload(payload)])[0]).astype(np.uint8)
    return payload, int(np.count_nonzero(clean[:_BCH_BITS] != word[:_BCH_BITS]))


class TrustMarkWatermarker:
    """TrustMark (variant Q by default, BCH_SUPER) from local model files; see the module
    docstring. Construction is cheap: the package is imported and the models loaded on first
    use, and every problem there is a WatermarkError saying what to provide."""

    name: str = "trustmark"

    def __init__(
        self,
        model_dir: Path | None,
        *,
        variant: TrustMarkVariant = "Q",
        device: str | None = None,
    ) -> None:
        if variant not in _VARIANTS:
            raise WatermarkError(
                f"unknown TrustMark variant {variant!r}; choose one of {', '.join(_VARIANTS)}"
            )
        self._model_dir = model_dir
        self._variant: TrustMarkVariant = variant
        self._device = device or ""

    @property
    def version(self) -> str:
        return "1" if self._variant == "Q" else f"1{self._variant.lower()}"

    @property
    def min_side(self) -> int:
        return 1  # TrustMark resizes every image to the size its networks work at

    def embed(self, image: Image.Image, payload: str) -> Image.Image:
        """Return a marked copy (RGB, or RGBA with the alpha channel untouched)."""
        bits = pack_payload(payload)
        rgb_image, alpha = split_alpha(image)
        model = self._model()
        try:
            marked: Image.Image = model.encode(rgb_image, bits, MODE="binary").convert("RGB")
        except Exception as exc:  # torch raises its own untyped errors
            raise WatermarkError(f"TrustMark could not embed the watermark: {exc}") from exc
        if alpha is not None:
            marked.putalpha(alpha)
        return marked

    def detect(self, image: Image.Image, *, thorough: bool = False) -> WatermarkReading:
        """Read the payload; ``detected`` when BCH corrects the packet and the CRC-8 holds."""
        model = self._model()
        payload, flips = read_packet(self.read_bits(image), model.ecc)
        if payload is None:
            return WatermarkReading(algorithm=self.name, detected=False, confidence=0.0)
        return WatermarkReading(
            algorithm=self.name,
            detected=True,
            payload=payload,
            confidence=max(0.0, 1.0 - flips / (_MAX_FLIPS + 1)),
        )

    def read_bits(self, image: Image.Image) -> npt.NDArray[np.uint8]:
        """The 100 raw bits TrustMark's decoder reads, before error correction.

        The same steps as ``TrustMark.decode`` (centre region, bilinear resize to the
        decoder's resolution, [-1, 1], logits > 0), kept here for the raw bits it hides.
        """
        import torch

        model = self._model()
        rgb_image, _ = split_alpha(image)
        side = int(model.model_resolution_dec)
        region = model.get_the_image_for_processing(rgb_image)
        small = np.asarray(region.resize((side, side), Image.Resampling.BILINEAR), np.float32)
        tensor = torch.from_numpy(small.transpose(2, 0, 1).copy())[None] / 127.5 - 1.0
        try:
            with torch.no_grad():
                logits = model.decoder.decoder(tensor.to(model.decoder.device))
        except Exception as exc:  # torch raises its own untyped errors
            raise WatermarkError(f"TrustMark could not read the image: {exc}") from exc
        raw: npt.NDArray[np.uint8] = (logits[0] > 0).cpu().numpy().astype(np.uint8)
        return raw

    def _model(self) -> Any:
        if self._model_dir is None:
            raise WatermarkError(
                "the trustmark watermark has no model directory configured",
                hint=f"set GENSEAL_TRUSTMARK_MODELS to a directory holding "
                f"{', '.join(required_model_files(self._variant))}; "
                f"{_files_hint(self._variant)}",
            )
        return _load(self._model_dir.expanduser().resolve(), self._variant, self._device)


_LOCK = threading.Lock()


def _load(model_dir: Path, variant: TrustMarkVariant, device: str) -> Any:
    # One load per (directory, variant, device), and never two at once: loading reads
    # ~60 MB of checkpoints and builds a ResNet-50.
    with _LOCK:
        return _load_once(model_dir, variant, device)


@functools.cache
def _load_once(model_dir: Path, variant: TrustMarkVariant, device: str) -> Any:
    package = _import_trustmark()
    check_model_files(model_dir, variant, package.MODEL_CHECKSUMS)
    offline = _offline_class(package.TrustMark)
    try:
        model = offline(
            model_dir,
            verbose=False,
            model_type=variant,
            encoding_type=_BCH_SUPER,
            device=device,
            loadRemover=False,
            loadBBoxDetector=False,
        )
    except WatermarkError:
        raise
    except Exception as exc:  # torch / omegaconf raise their own errors
        raise WatermarkError(f"cannot load the TrustMark models from {model_dir}: {exc}") from exc
    if model.encoder is None or model.decoder is None:
        # TrustMark's loader prints and returns None on a file problem instead of raising.
        raise WatermarkError(
            f"cannot load the TrustMark models from {model_dir}",
            hint=_files_hint(variant),
        )
    return model


def check_model_files(
    model_dir: Path, variant: TrustMarkVariant, checksums: dict[str, str] | None = None
) -> None:
    """WatermarkError naming every required file that is missing, empty or (given the
    package's MD5 list) not the file TrustMark expects."""
    missing: list[str] = []
    wrong: list[str] = []
    for filename in required_model_files(variant):
        path = model_dir / filename
        if not path.is_file() or path.stat().st_size == 0:
            missing.append(filename)
        elif checksums and filename in checksums and _md5(path) != checksums[filename]:
            wrong.append(filename)
    if missing:
        raise WatermarkError(
            f"TrustMark model files missing from {model_dir}: {', '.join(missing)}",
            hint=_files_hint(variant),
        )
    if wrong:
        raise WatermarkError(
            f"TrustMark model files in {model_dir} do not match the trustmark package's "
            f"checksums: {', '.join(wrong)}",
            hint=_files_hint(variant),
        )


def _files_hint(variant: TrustMarkVariant) -> str:
    names = required_model_files(variant)
    return (
        f"genseal never downloads them: on a machine with access, fetch {MODEL_URL}{names[0]} "
        f"and likewise {', '.join(names[1:])} (or let the trustmark package download them "
        f"into site-packages/trustmark/models/), then copy them into the one directory that "
        f"GENSEAL_TRUSTMARK_MODELS names; the package itself: {_INSTALL_HINT}"
    )


def _import_trustmark() -> Any:
    try:
        from trustmark import trustmark as package
    except ImportError as exc:
        raise WatermarkError(
            "the trustmark watermark needs Adobe's trustmark package, which is not installed",
            hint=_INSTALL_HINT,
        ) from exc
    return package


@functools.cache
def _offline_class(base: type) -> type:
    """``base`` (trustmark.TrustMark) reading its files from one directory, never downloading."""

    class _OfflineTrustMark(base):  # type: ignore[misc, valid-type]
        def __init__(self, model_dir: Path, **kwargs: Any) -> None:
            self._genseal_model_dir = model_dir
            super().__init__(**kwargs)

        def check_and_download(self, filename: str) -> None:
            # TrustMark downloads here when a file is absent; the files were checked before
            # loading, so this only guards against that path ever being taken.
            path = Path(filename)
            if not path.is_file() or path.stat().st_size == 0:
                raise WatermarkError(f"TrustMark model file missing: {path}")

        def load_model(
            self,
            config_path: str,
            weight_path: str,
            device: str,
            secret_len: int,
            part: str = "all",
        ) -> Any:
            local = self._genseal_model_dir
            return super().load_model(
                str(local / Path(config_path).name),
                str(local / Path(weight_path).name),
                device,
                secret_len,
                part=part,
            )

    return _OfflineTrustMark


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ _CRC_POLY) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc ^ _CRC_XOROUT
