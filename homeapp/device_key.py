"""The device's own Ed25519 key: signs the log bundles it exports, so a clinician can tell
a bundle came from this device and was not altered on the way (homeapp/bundle.py).

Made on first start in the data directory: `device_key.pem` (PKCS8, mode 0600) and
`device_key.pub` (to hand to the clinician, e.g. printed with the device or exported).
"""
from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schedules.signing import generate_keypair, key_id, load_private_key, save_private_key, save_public_key

PRIVATE_NAME = "device_key.pem"
PUBLIC_NAME = "device_key.pub"


def ensure_device_key(data_dir: str | os.PathLike[str], *,
                      private_key_path: str | os.PathLike[str] | None = None) -> tuple[Ed25519PrivateKey, str]:
    """The device key and its key id, creating both files the first time.

    `private_key_path` overrides the location (homeapp/config.py's `paths.device_key`); the
    public key sits beside it with the suffix `.pub`. If the private key exists but the
    public file was lost, the public file is rewritten from it (it is derived data); an
    existing private key is never replaced."""
    priv_path = Path(private_key_path) if private_key_path else Path(data_dir) / PRIVATE_NAME
    pub_path = priv_path.with_suffix(".pub")
    priv_path.parent.mkdir(parents=True, exist_ok=True)
    if priv_path.exists():
        private_key = load_private_key(priv_path)
    else:
        private_key, _ = generate_keypair()
        save_private_key(priv_path, private_key)
    if not pub_path.exists():
        save_public_key(pub_path, private_key.public_key())
    return private_key, key_id(private_key.public_key())


def device_public_key_path(data_dir: str | os.PathLike[str], *,
                           private_key_path: str | os.PathLike[str] | None = None) -> Path:
    """Where ensure_device_key puts the public key (to export for the clinician)."""
    return (Path(private_key_path) if private_key_path else Path(data_dir) / PRIVATE_NAME).with_suffix(".pub")
