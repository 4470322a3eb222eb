"""Provenance: the synthetic label constant and C2PA signing with a CA-issued test certificate."""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path

import imageio_ffmpeg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from livingphoto.errors import UsageError
from moderation.config import ModerationSettings
from moderation.provenance import (
    SYNTHETIC_LABEL,
    SYNTHETIC_METADATA,
    TRAINED_ALGORITHMIC_MEDIA,
    read_manifest,
    sign_clip,
    sign_if_configured,
)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "livingphoto tests"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )


def _usage(*, signer: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not signer,
        crl_sign=not signer,
        encipher_only=False,
        decipher_only=False,
    )


def make_chain() -> tuple[bytes, bytes, bytes]:
    """(leaf + CA chain PEM, leaf key PEM, self-signed leaf PEM) made for this test only."""
    now = datetime.datetime.now(datetime.UTC)
    valid = (now - datetime.timedelta(days=1), now + datetime.timedelta(days=7))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("livingphoto test CA"))
        .issuer_name(_name("livingphoto test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(signer=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())

    def leaf_builder(issuer: x509.Name) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(_name("livingphoto test signer"))
            .issuer_name(issuer)
            .public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(valid[0])
            .not_valid_after(valid[1])
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(signer=True), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
            )
        )

    leaf = (
        leaf_builder(ca.subject)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    self_signed = leaf_builder(_name("livingphoto test signer")).sign(leaf_key, hashes.SHA256())
    pem = serialization.Encoding.PEM
    chain = leaf.public_bytes(pem) + ca.public_bytes(pem)
    key = leaf_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return chain, key, self_signed.public_bytes(pem)


@pytest.fixture(scope="module")
def chain() -> tuple[bytes, bytes, bytes]:
    return make_chain()


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "lavfi",
            "-i", "color=c=blue:s=64x64:r=8", "-t", "1", "-c:v", "libx264",
            "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(path),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
    return path


def test_synthetic_label_constant() -> None:
    assert "AI-generated" in SYNTHETIC_LABEL
    assert SYNTHETIC_METADATA["comment"] == SYNTHETIC_LABEL
    assert SYNTHETIC_METADATA["digital_source_type"] == TRAINED_ALGORITHMIC_MEDIA
    with pytest.raises(TypeError):
        SYNTHETIC_METADATA["comment"] = "x"  # type: ignore[index]


def test_sign_clip_declares_it_ai_generated(clip: Path, chain: tuple[bytes, bytes, bytes]) -> None:
    assert read_manifest(clip) is None
    cert, key, _ = chain
    sign_clip(clip, cert, key)
    manifest = read_manifest(clip)
    assert manifest is not None
    actions = [
        action
        for assertion in manifest["assertions"]
        if assertion["label"].startswith("c2pa.actions")
        for action in assertion["data"]["actions"]
    ]
    assert actions[0]["action"] == "c2pa.created"
    assert actions[0]["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    assert manifest["signature_info"]["common_name"] == "livingphoto test signer"
    assert manifest["claim_generator_info"][0]["name"] == "livingphoto"
    assert list(clip.parent.iterdir()) == [clip]  # no temporary file left behind


def test_sign_if_configured_reads_the_operator_files(
    clip: Path, chain: tuple[bytes, bytes, bytes], tmp_path: Path
) -> None:
    assert sign_if_configured(clip, ModerationSettings()) is False
    cert_path, key_path = tmp_path / "chain.pem", tmp_path / "key.pem"
    cert_path.write_bytes(chain[0])
    key_path.write_bytes(chain[1])
    settings = ModerationSettings.from_env(
        {"LIVINGPHOTO_C2PA_CERT": str(cert_path), "LIVINGPHOTO_C2PA_KEY": str(key_path)}
    )
    assert sign_if_configured(clip, settings) is True
    assert read_manifest(clip) is not None


def test_self_signed_certificate_is_refused_and_clip_untouched(
    clip: Path, chain: tuple[bytes, bytes, bytes]
) -> None:
    before = clip.read_bytes()
    _, key, self_signed = chain
    with pytest.raises(UsageError, match=r"C2PA signing of clip\.mp4 failed") as caught:
        sign_clip(clip, self_signed, key)
    assert "\n" not in str(caught.value)
    assert clip.read_bytes() == before
    assert list(clip.parent.iterdir()) == [clip]


def test_bad_inputs_are_one_line_usage_errors(
    clip: Path, chain: tuple[bytes, bytes, bytes], tmp_path: Path
) -> None:
    cert, key, _ = chain
    with pytest.raises(UsageError, match="not an unencrypted PEM key"):
        sign_clip(clip, cert, b"not a key")
    with pytest.raises(UsageError, match="supports MP4"):
        sign_clip(tmp_path / "clip.gif", cert, key)
    with pytest.raises(UsageError, match="no such file"):
        sign_clip(tmp_path / "missing.mp4", cert, key)
    with pytest.raises(UsageError, match="must be set together"):
        ModerationSettings.from_env({"LIVINGPHOTO_C2PA_CERT": "chain.pem"})
    missing = ModerationSettings(c2pa_cert=tmp_path / "nope.pem", c2pa_key=tmp_path / "nope.key")
    with pytest.raises(UsageError, match="cannot read the C2PA"):
        sign_if_configured(clip, missing)
