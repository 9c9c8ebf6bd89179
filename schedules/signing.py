"""Prescription signing and verification with Ed25519 (docs/dev/interfaces.md: Signing).

A clinician signs the canonical JSON of every field except `signature`; the device accepts
a prescription only when that signature verifies under a public key in its trust store (a
directory of `*.pub` PEM files). Key ids are fingerprints a person can read aloud and compare
with the one the clinician's `homeapp rx keygen` printed: the SHA-256 of the raw 32-byte
public key, first 16 bytes, as 8 groups of 4 hex digits (`a1b2-c3d4-...`).

Pure: no Kivy, no pigpio; the only I/O is reading and writing key files.
"""
from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_FIELD = "signature"
ALG = "ed25519"

_KEY_ID_RE = re.compile(r"^[0-9a-f]{4}(-[0-9a-f]{4}){7}$")


class SignatureError(Exception):
    """A prescription's signature is not acceptable. `reason` is what a person reads, on
    screen and in the log: "unsigned", "signed by an unknown key ...", "altered after
    signing ...", "malformed signature field ..."."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeyFileError(Exception):
    """A key file is missing, unreadable or not the kind of key expected."""


# --- canonical form and fingerprints -------------------------------------------------

def canonical_json(rx_dict: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: every field except `signature`, keys sorted, no
    whitespace, UTF-8 (interfaces.md fixes this form; both sides must agree byte for byte)."""
    body = {k: v for k, v in rx_dict.items() if k != SIGNATURE_FIELD}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_plain).encode("utf-8")


def _plain(obj: Any) -> Any:
    """Read-only views (a Prescription's `source` is a MappingProxyType) sign as objects."""
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON")


def _raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    """A fingerprint a person can compare aloud: SHA-256 of the raw public key, first 16
    bytes as 8 groups of 4 hex digits."""
    digest = hashlib.sha256(_raw_public(public_key)).hexdigest()[:32]
    return "-".join(digest[i:i + 4] for i in range(0, 32, 4))


# --- keys and key files ----------------------------------------------------------------

def generate_keypair() -> tuple[Ed25519PrivateKey, Ed25519PublicKey]:
    private_key = Ed25519PrivateKey.generate()
    return private_key, private_key.public_key()


def save_private_key(path: str | os.PathLike[str], key: Ed25519PrivateKey) -> None:
    """PEM PKCS8, unencrypted, created with mode 0600 (never briefly world-readable).
    Refuses to overwrite an existing file: losing a private key is not undoable."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(os.fspath(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(path, 0o600)  # in case a umask or filesystem widened it


def save_public_key(path: str | os.PathLike[str], key: Ed25519PublicKey) -> None:
    """PEM SubjectPublicKeyInfo. Refuses to overwrite an existing file."""
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with open(path, "xb") as f:
        f.write(pem)


def _read_key_file(path: str | os.PathLike[str]) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such key file") from None
    except OSError as e:
        raise KeyFileError(f"{path}: cannot read ({e.strerror})") from None


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    data = _read_key_file(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        if b"PUBLIC KEY" in data:
            raise KeyFileError(f"{path}: this is a public key; signing needs the private key "
                               f"(the .key file from rx keygen)") from None
        raise KeyFileError(f"{path}: not a readable unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: not an Ed25519 key")
    return key


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    data = _read_key_file(path)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        if b"PRIVATE KEY" in data:
            raise KeyFileError(f"{path}: this is a private key; give the public key "
                               f"(the .pub file)") from None
        raise KeyFileError(f"{path}: not a readable PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path}: not an Ed25519 key")
    return key


# --- sign and verify -------------------------------------------------------------------

def sign_prescription(rx_dict: Mapping[str, Any], private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """A copy of the prescription with `signature` set (any old signature is replaced)."""
    signed = copy.deepcopy(dict(rx_dict))
    signed.pop(SIGNATURE_FIELD, None)
    value = private_key.sign(canonical_json(signed))
    signed[SIGNATURE_FIELD] = {"alg": ALG, "key_id": key_id(private_key.public_key()),
                               "value": base64.b64encode(value).decode("ascii")}
    return signed


def verify_prescription(rx_dict: Mapping[str, Any], trust: "TrustStore") -> str:
    """The key id of the trusted clinician key that signed this prescription.

    Raises SignatureError with the reason a person reads. Expiry is not checked here (the
    validator owns dates); the session engine refuses on either."""
    sig = _parse_signature(rx_dict)
    keys = trust.keys()
    public_key = keys.get(sig["key_id"])
    if public_key is None:
        removed = trust.removed().get(sig["key_id"]) if hasattr(trust, "removed") else None
        if removed is not None:
            raise SignatureError(f"signed by a removed key {sig['key_id']} ({removed}: taken out of "
                                 f"the trust store, so no longer accepted)")
        raise SignatureError(f"signed by an unknown key {sig['key_id']} (not in the trust store)")
    _check(rx_dict, sig, public_key)
    return sig["key_id"]


def _parse_signature(rx_dict: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(rx_dict, Mapping):
        raise SignatureError("malformed prescription (not a JSON object)")
    sig = rx_dict.get(SIGNATURE_FIELD)
    if sig is None:
        raise SignatureError("unsigned")
    if not isinstance(sig, Mapping):
        raise SignatureError("malformed signature field (not an object)")
    if sig.get("alg") != ALG:
        raise SignatureError(f"malformed signature field (alg {sig.get('alg')!r}, expected 'ed25519')")
    kid = sig.get("key_id")
    if not isinstance(kid, str) or not _KEY_ID_RE.match(kid):
        raise SignatureError("malformed signature field (key_id is not a fingerprint like a1b2-c3d4-...)")
    value = sig.get("value")
    try:
        raw = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 64:
        raise SignatureError("malformed signature field (value is not a base64 Ed25519 signature)")
    return {"key_id": kid, "raw": raw}


def _check(rx_dict: Mapping[str, Any], sig: Mapping[str, Any], public_key: Ed25519PublicKey) -> None:
    if key_id(public_key) != sig["key_id"]:
        raise SignatureError(f"signed by key {sig['key_id']}, not by the expected key {key_id(public_key)}")
    try:
        public_key.verify(sig["raw"], canonical_json(rx_dict))
    except InvalidSignature:
        raise SignatureError("altered after signing (the signature does not match its content)") from None


# --- trust store -----------------------------------------------------------------------

class TrustStore:
    """The clinician public keys a device accepts: a directory of `*.pub` PEM files.

    Keys are added only in clinician mode or by the installer (the caller enforces who may
    call `add` and `remove`). Files are indexed by fingerprint, never by name, so renaming a
    file cannot make a key pass for another; an unreadable file is skipped and listed in
    `problems`. A removed key's file moves to `removed/` (never scanned as trusted), so a
    prescription it signed is refused as signed by a removed key, not an unknown one."""

    REMOVED_DIR = "removed"

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.problems: list[str] = []

    def _scan(self) -> dict[str, tuple[str, Ed25519PublicKey]]:
        """key id -> (label, key) for every readable key file; the rest in `problems`."""
        self.problems = []
        found: dict[str, tuple[str, Ed25519PublicKey]] = {}
        if not self.directory.is_dir():
            return found
        for path in sorted(self.directory.glob("*.pub")):
            try:
                key = load_public_key(path)
            except KeyFileError as e:
                self.problems.append(str(e))
                continue
            found[key_id(key)] = (path.stem, key)
        return found

    def keys(self) -> dict[str, Ed25519PublicKey]:
        return {kid: key for kid, (_label, key) in self._scan().items()}

    def labels(self) -> dict[str, str]:
        """key id -> label (the file's stem), for showing who a key belongs to."""
        return {kid: label for kid, (label, _key) in self._scan().items()}

    def removed(self) -> dict[str, str]:
        """key id -> label of the keys taken out of this trust store (and not added back)."""
        folder = self.directory / self.REMOVED_DIR
        out: dict[str, str] = {}
        if not folder.is_dir():
            return out
        trusted = self.keys()
        for path in sorted(folder.glob("*.pub")):
            try:
                kid = key_id(load_public_key(path))
            except KeyFileError:
                continue
            if kid not in trusted:
                out[kid] = path.stem.split("--", 1)[-1]
        return out

    def remove(self, key: str) -> tuple[str, str]:
        """Stop trusting a key, named by its key id (or its label); returns (key id, label).
        The file moves to `removed/`. ValueError with a sentence naming the trusted keys when
        no trusted key has that id or label (ValueError)."""
        found = self._scan()
        matches = [kid for kid, (label, _k) in found.items() if key in (kid, label)]
        if not matches:
            known = ", ".join(f"{kid} ({label})" for kid, (label, _k) in found.items()) or "none"
            raise ValueError(f"{key}: no trusted key has this id or label (trusted: {known})")
        kid = matches[0]
        label = found[kid][0]
        folder = self.directory / self.REMOVED_DIR
        folder.mkdir(exist_ok=True)
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        for path in self.directory.glob("*.pub"):
            try:
                if key_id(load_public_key(path)) == kid:
                    os.replace(path, folder / f"{stamp}--{path.stem}.pub")
            except KeyFileError:
                continue
        return kid, label

    def add(self, public_key: "str | os.PathLike[str] | Ed25519PublicKey", *, label: str) -> str:
        """Add a key under `label` (becomes `<label>.pub`); returns its key id.

        Adding a key already present is a no-op returning its id. A different key under an
        existing label is refused (ValueError): never silently overwrite a trusted key."""
        if not isinstance(public_key, Ed25519PublicKey):
            public_key = load_public_key(public_key)
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", label):
            raise ValueError(f"label {label!r}: use letters, digits, '.', '_' or '-' (at most 64)")
        kid = key_id(public_key)
        if kid in self.keys():
            return kid
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{label}.pub"
        if path.exists():
            raise ValueError(f"{path}: a different key is already trusted under the label {label!r}")
        save_public_key(path, public_key)
        return kid
