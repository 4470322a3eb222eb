"""Provenance: every clip says it is synthetic, in its metadata and optionally in a C2PA manifest.

``SYNTHETIC_METADATA`` is the one constant the export code writes into every clip's container
metadata (for ffmpeg: one ``-metadata KEY=VALUE`` per item; MP4 keeps the non-standard keys
``synthetic`` and ``digital_source_type`` only with ``-movflags +use_metadata_tags``). Invisible watermarks do not survive
H.264 re-encoding, so labelling is done with metadata and C2PA.

``sign_clip`` adds a C2PA manifest to an MP4 in place, declaring it AI-generated (action
``c2pa.created`` with digital source type ``trainedAlgorithmicMedia``). It needs the optional
``c2pa`` extra (``c2pa-python``) and an operator-provided certificate chain (PEM, leaf first) and
the leaf's private key (PEM): ``LIVINGPHOTO_C2PA_CERT`` and ``LIVINGPHOTO_C2PA_KEY``. The leaf must
be issued by a CA (c2pa rejects a bare self-signed certificate) and carry the digitalSignature
key usage and an extended key usage c2pa accepts (e.g. emailProtection or documentSigning).
Signing works offline: no timestamp authority is contacted.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from livingphoto import __version__
from livingphoto.errors import UsageError
from moderation.config import ModerationSettings

SYNTHETIC_LABEL = (
    "AI-generated: animated from a single still photo by livingphoto. Not real footage."
)
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
# Container metadata written into every exported clip (MP4/GIF/WebP via ffmpeg ``-metadata``).
SYNTHETIC_METADATA: Mapping[str, str] = MappingProxyType(
    {
        "comment": SYNTHETIC_LABEL,
        "description": SYNTHETIC_LABEL,
        "synthetic": "true",
        "digital_source_type": TRAINED_ALGORITHMIC_MEDIA,
    }
)

_MIME = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime"}


def manifest_definition(title: str) -> dict[str, Any]:
    """The C2PA manifest livingphoto signs: one ``c2pa.created`` action, AI-generated."""
    return {
        "claim_generator_info": [{"name": "livingphoto", "version": __version__}],
        "title": title,
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                            "softwareAgent": {"name": "livingphoto", "version": __version__},
                            "description": SYNTHETIC_LABEL,
                        }
                    ]
                },
            }
        ],
    }


def sign_clip(path: Path, cert_pem: bytes | str, key_pem: bytes | str) -> None:
    """Embed a signed C2PA manifest declaring ``path`` (an MP4) AI-generated; in place.

    Raises ``UsageError`` (one line) for a missing extra, an unsupported file, an unusable
    certificate or key; the clip is left untouched when signing fails.
    """
    c2pa = _c2pa()
    mime = _MIME.get(path.suffix.lower())
    if mime is None:
        raise UsageError(f"C2PA signing supports MP4 clips, not {path.name}")
    if not path.is_file():
        raise UsageError(f"cannot sign {path}: no such file")
    cert = cert_pem.encode() if isinstance(cert_pem, str) else cert_pem
    key = key_pem.encode() if isinstance(key_pem, str) else key_pem
    algorithm = _algorithm(key)
    fd, temp_name = tempfile.mkstemp(prefix=".c2pa-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    temp = Path(temp_name)
    try:
        info = c2pa.C2paSignerInfo(getattr(c2pa.C2paSigningAlg, algorithm), cert, key, None)
        with (
            c2pa.Signer.from_info(info) as signer,
            c2pa.Builder(manifest_definition(path.name)) as builder,
            path.open("rb") as source,
            temp.open("w+b") as dest,
        ):
            builder.sign(signer, mime, source, dest)
        temp.replace(path)
    except c2pa.C2paError as error:
        raise UsageError(f"C2PA signing of {path.name} failed: {_one_line(error)}") from None
    finally:
        temp.unlink(missing_ok=True)


def sign_if_configured(path: Path, settings: ModerationSettings) -> bool:
    """Sign ``path`` when ``LIVINGPHOTO_C2PA_CERT``/``_KEY`` are set; returns whether it did."""
    if settings.c2pa_cert is None or settings.c2pa_key is None:
        return False
    try:
        cert = settings.c2pa_cert.read_bytes()
        key = settings.c2pa_key.read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read the C2PA certificate or key: {error}") from None
    sign_clip(path, cert, key)
    return True


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The active C2PA manifest of ``path`` as a dict, or ``None`` when it has none."""
    c2pa = _c2pa()
    try:
        reader = c2pa.Reader.try_create(str(path))
        if reader is None:
            return None
        with reader:
            store = json.loads(reader.json())
    except c2pa.C2paError as error:
        raise UsageError(
            f"cannot read the C2PA manifest of {path.name}: {_one_line(error)}"
        ) from None
    manifest = store.get("manifests", {}).get(store.get("active_manifest", ""))
    return manifest if isinstance(manifest, dict) else None


def _c2pa() -> Any:
    try:
        import c2pa
    except ImportError:
        raise UsageError(
            "C2PA signing needs the c2pa extra: pip install 'livingphoto[c2pa]'"
        ) from None
    return c2pa


def _algorithm(key_pem: bytes) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as error:
        raise UsageError(f"the C2PA private key is not an unencrypted PEM key: {error}") from None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        names = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
        if key.curve.name not in names:
            raise UsageError(f"C2PA does not support the {key.curve.name} curve")
        return names[key.curve.name]
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ED25519"
    if isinstance(key, rsa.RSAPrivateKey):
        return "PS256"
    raise UsageError("the C2PA private key must be EC (P-256/384/521), Ed25519 or RSA")


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text[:300] if text else type(error).__name__
