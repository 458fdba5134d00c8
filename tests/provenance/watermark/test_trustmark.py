"""The optional TrustMark backend: clear errors without the package or its model files, never a
download, the payload layout on TrustMark's own BCH code, and (with real weights) a round trip."""

from __future__ import annotations

import os
import socket
import sys
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from genseal.errors import ConfigError, WatermarkError
from genseal.settings import Settings
from provenance import (
    OPTIONAL_WATERMARK_BACKENDS,
    TrustMarkWatermarker,
    Watermarker,
    make_watermarker,
)
from provenance.watermark._trustmark import (
    MODEL_URL,
    _crc8,
    pack_payload,
    read_packet,
    required_model_files,
    unpack_payload,
)
from tests.provenance.conftest import decode, encode, photo_image

FILES_Q = ("trustmark_Q.yaml", "encoder_Q.ckpt", "decoder_Q.ckpt")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record (and refuse) every download or connection attempt."""
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args[:2]))
        raise OSError("network disabled in this test")

    monkeypatch.setattr(urllib.request, "urlretrieve", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


def test_registry_and_protocol(tmp_path: Path) -> None:
    assert OPTIONAL_WATERMARK_BACKENDS == ("trustmark",)
    marker = make_watermarker("trustmark", trustmark_models=tmp_path)
    assert isinstance(marker, TrustMarkWatermarker)
    seam: Watermarker = marker
    assert seam.name == "trustmark"
    assert seam.version == "1"  # → soft-binding alg org.genseal.trustmark.1
    assert TrustMarkWatermarker(tmp_path, variant="P").version == "1p"
    with pytest.raises(WatermarkError, match="unknown TrustMark variant"):
        TrustMarkWatermarker(tmp_path, variant="X")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="dwtdctsvd, rivagan, trustmark"):
        make_watermarker("trustmark-nope")


def test_settings_accept_trustmark(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GENSEAL_WATERMARK", "trustmark")
    monkeypatch.setenv("GENSEAL_TRUSTMARK_MODELS", str(tmp_path))
    settings = Settings()
    assert settings.watermark == "trustmark"
    assert settings.trustmark_models == tmp_path
    monkeypatch.delenv("GENSEAL_TRUSTMARK_MODELS")
    assert Settings().trustmark_models is None


def test_required_files_per_variant() -> None:
    assert required_model_files() == FILES_Q
    assert required_model_files("P") == ("trustmark_P.yaml", "encoder_P.ckpt", "decoder_P.ckpt")


def test_missing_package_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_network: list[str]
) -> None:
    # None in sys.modules makes `import trustmark` raise ImportError, installed or not.
    monkeypatch.setitem(sys.modules, "trustmark", None)
    monkeypatch.setitem(sys.modules, "trustmark.trustmark", None)
    marker = TrustMarkWatermarker(tmp_path)
    with pytest.raises(WatermarkError, match="trustmark package") as caught:
        marker.embed(Image.new("RGB", (64, 64)), "0badcafe")
    assert "pip install 'genseal[trustmark]'" in str(caught.value)
    assert not no_network


def test_unset_model_directory_is_a_clear_error(no_network: list[str]) -> None:
    with pytest.raises(WatermarkError, match="no model directory") as caught:
        TrustMarkWatermarker(None).detect(Image.new("RGB", (64, 64)))
    message = str(caught.value)
    assert "GENSEAL_TRUSTMARK_MODELS" in message
    assert all(name in message for name in FILES_Q)
    assert not no_network


def test_missing_weights_name_the_files_and_never_download(
    tmp_path: Path, no_network: list[str]
) -> None:
    pytest.importorskip("trustmark")
    (tmp_path / "trustmark_Q.yaml").write_text("model: {}\n")  # present, but not the real one
    marker = make_watermarker("trustmark", trustmark_models=tmp_path)
    with pytest.raises(WatermarkError) as caught:
        marker.embed(Image.new("RGB", (64, 64)), "0badcafe")
    message = str(caught.value)
    assert f"missing from {tmp_path.resolve()}: encoder_Q.ckpt, decoder_Q.ckpt" in message
    assert MODEL_URL + "trustmark_Q.yaml" in message
    assert "GENSEAL_TRUSTMARK_MODELS" in message
    assert "pip install 'genseal[trustmark]'" in message
    assert "never downloads" in message
    assert not no_network


def test_wrong_files_fail_their_checksum_instead_of_downloading(
    tmp_path: Path, no_network: list[str]
) -> None:
    # Left to itself, TrustMark re-downloads any file whose MD5 differs.
    pytest.importorskip("trustmark")
    for name in FILES_Q:
        (tmp_path / name).write_bytes(b"not a TrustMark model")
    with pytest.raises(WatermarkError, match="do not match the trustmark package's checksums"):
        TrustMarkWatermarker(tmp_path).detect(Image.new("RGB", (64, 64)))
    assert not no_network


def test_the_package_loader_cannot_download(tmp_path: Path, no_network: list[str]) -> None:
    package = pytest.importorskip("trustmark.trustmark")
    from provenance.watermark._trustmark import _offline_class

    offline: Any = _offline_class(package.TrustMark)
    instance = offline.__new__(offline)
    instance._genseal_model_dir = tmp_path
    with pytest.raises(WatermarkError, match="missing"):
        instance.check_and_download(str(tmp_path / "decoder_Q.ckpt"))
    # The package's loader is pointed at our directory and swallows the refusal: no file,
    # no model, no download.
    elsewhere = Path(package.__file__).parent / "models"
    model = instance.load_model(
        str(elsewhere / "trustmark_Q.yaml"), str(elsewhere / "decoder_Q.ckpt"), "cpu", 100
    )
    assert model is None
    assert not no_network


# The payload layout, on TrustMark's own BCH code (no weights needed).


@pytest.fixture(scope="module")
def ecc() -> Any:
    datalayer = pytest.importorskip("trustmark.datalayer")
    from trustmark import TrustMark

    return datalayer.DataLayer(100, verbose=False, encoding_mode=TrustMark.Encoding.BCH_SUPER)


def test_payload_bits_and_crc() -> None:
    bits = pack_payload("0BADCAFE")
    assert len(bits) == 40 and bits[:32] == f"{0x0BADCAFE:032b}"
    assert unpack_payload(bits) == "0badcafe"
    assert _crc8(b"123456789") == 0xA1  # the CRC-8/I-432-1 check value
    # All-zero data does not carry an all-zero CRC.
    assert pack_payload("00000000")[32:] == f"{0x55:08b}"
    flipped = ("1" if bits[5] == "0" else "0").join((bits[:5], bits[6:]))
    assert unpack_payload(flipped) is None
    assert unpack_payload(bits[:39]) is None
    assert unpack_payload("2" * 40) is None
    with pytest.raises(WatermarkError):
        pack_payload("0badcaf")


def test_packet_is_bch_super_with_the_payload_first(ecc: Any) -> None:
    packet = np.asarray(ecc.encode_binary([pack_payload("a1b2c3d4")])[0]).astype(int)
    assert packet.size == 100
    assert "".join(map(str, packet[:32])) == f"{0xA1B2C3D4:032b}"
    assert list(packet[96:]) == [0, 0, 0, 0]  # version bits: schema BCH_SUPER
    assert read_packet(packet, ecc) == ("a1b2c3d4", 0)


@pytest.mark.parametrize("flips", [1, 4, 8])
def test_bch_corrects_up_to_eight_flips(ecc: Any, flips: int) -> None:
    rng = np.random.default_rng(flips)
    for _ in range(20):
        payload = rng.bytes(4).hex()
        packet = np.asarray(ecc.encode_binary([pack_payload(payload)])[0]).astype(np.uint8)
        where = rng.choice(96, size=flips, replace=False)
        packet[where] ^= 1
        assert read_packet(packet, ecc) == (payload, flips)


def test_noise_and_blank_reads_are_not_detections(ecc: Any) -> None:
    # An all-zero read is a valid BCH_SUPER codeword (data 0); the CRC-8 refuses it.
    assert ecc.decode_bitstream(np.zeros((1, 100)), "binary")[0][1] is True
    assert read_packet(np.zeros(100), ecc) == (None, -1)
    assert read_packet(np.ones(100), ecc) == (None, -1)  # version bits say another schema
    rng = np.random.default_rng(7)
    detections = sum(read_packet(rng.integers(0, 2, 100), ecc)[0] is not None for _ in range(2000))
    assert detections == 0
    with pytest.raises(WatermarkError, match="100 bits"):
        read_packet(np.zeros(96), ecc)


def test_other_schemas_are_not_ours() -> None:
    datalayer = pytest.importorskip("trustmark.datalayer")
    bch5 = datalayer.DataLayer(100, verbose=False, encoding_mode=1)
    packet = bch5.encode_binary([pack_payload("a1b2c3d4")])[0]
    assert bch5.decode_bitstream(packet[None, :], "binary")[0][1] is True
    assert read_packet(packet, bch5) == (None, -1)


# With the real weights (GENSEAL_TRUSTMARK_MODELS): a real round trip.


@pytest.fixture(scope="module")
def trustmark() -> TrustMarkWatermarker:
    pytest.importorskip("trustmark")
    models = os.environ.get("GENSEAL_TRUSTMARK_MODELS")
    if not models:
        pytest.skip("GENSEAL_TRUSTMARK_MODELS is not set (TrustMark's model files)")
    return TrustMarkWatermarker(Path(models))


@pytest.mark.models
@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_round_trip_through_jpeg_75(trustmark: TrustMarkWatermarker, name: str) -> None:
    photo = photo_image(name)
    marked = trustmark.embed(photo, "0badcafe")
    assert marked.size == photo.size and marked.mode == "RGB"
    diff = np.asarray(marked, float) - np.asarray(photo, float)
    assert 10 * np.log10(255.0**2 / np.mean(diff**2)) > 38.0
    reading = trustmark.detect(decode(encode(marked, "JPEG", quality=75)))
    assert reading.detected and reading.payload == "0badcafe"
    assert reading.algorithm == "trustmark" and reading.confidence > 0.5
    unmarked = trustmark.detect(decode(encode(photo, "JPEG", quality=75)))
    assert not unmarked.detected and unmarked.payload is None


@pytest.mark.models
def test_alpha_channel_is_kept(trustmark: TrustMarkWatermarker) -> None:
    rgba = photo_image("chelsea").convert("RGBA")
    rgba.putalpha(200)
    marked = trustmark.embed(rgba, "00ff00ff")
    assert marked.mode == "RGBA" and marked.getchannel("A").getextrema() == (200, 200)
    reading = trustmark.detect(marked)
    assert reading.detected and reading.payload == "00ff00ff"
