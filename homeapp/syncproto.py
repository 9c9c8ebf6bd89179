"""The wire protocol between a device and the clinic service, shared by both sides
(homeapp/sync.py on the device, clinic/ on the server). Pure: hashing and Ed25519 only.

Device requests are signed with the device's Ed25519 key (the key that already signs
its log bundles). The signature covers

    homeapp-request/1 \\n METHOD \\n PATH?QUERY \\n UNIX_TIME \\n NONCE \\n SHA256_HEX(BODY)

and travels in four headers (`REQUEST_HEADERS`). The clinic accepts a request only
within `MAX_CLOCK_SKEW_S` of its own clock and only once per nonce, so a captured
request cannot be replayed; the body hash ties the signature to the very bytes sent.

The log travels as the chained records of homeapp/bundle.py: JSON lines, each exactly
the record line a bundle holds, then one end line `{"kind": "end", "count", "head",
"device_key_id", "signature"}` signed over the same payload as a bundle's end record.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from schedules.signing import canonical_json

PROTOCOL = "homeapp-request/1"
HEADER_KEY = "X-Homeapp-Key"
HEADER_TIME = "X-Homeapp-Time"
HEADER_NONCE = "X-Homeapp-Nonce"
HEADER_SIGNATURE = "X-Homeapp-Signature"
REQUEST_HEADERS = (HEADER_KEY, HEADER_TIME, HEADER_NONCE, HEADER_SIGNATURE)
#: How far a device's clock may be from the clinic's; nonces are kept twice this long.
MAX_CLOCK_SKEW_S = 300
#: Records in one upload request; the device sends more in several.
MAX_RECORDS_PER_UPLOAD = 5000
#: Bytes of one upload request's body; the device stays under it.
MAX_UPLOAD_BYTES = 4 * 1024 * 1024
LOG_CONTENT_TYPE = "application/x-ndjson"
#: Log format of the records (homeapp/bundle.py's FORMAT, repeated to keep this module pure).
LOG_FORMAT = "homeapp.log-bundle/1"


def request_payload(method: str, path: str, timestamp: int, nonce: str, body: bytes) -> bytes:
    """The bytes a device signs for one request."""
    return "\n".join((PROTOCOL, method.upper(), path, str(timestamp), nonce,
                      hashlib.sha256(body).hexdigest())).encode("ascii")


def sign_request(key: Ed25519PrivateKey, key_id: str, method: str, path: str, body: bytes = b"",
                 *, now: float | None = None) -> dict[str, str]:
    """The headers that authenticate one request (a fresh nonce every call)."""
    timestamp = int(time.time() if now is None else now)
    nonce = secrets.token_hex(16)
    signature = key.sign(request_payload(method, path, timestamp, nonce, body))
    return {HEADER_KEY: key_id, HEADER_TIME: str(timestamp), HEADER_NONCE: nonce,
            HEADER_SIGNATURE: base64.b64encode(signature).decode("ascii")}


def verify_request_signature(public_key: Ed25519PublicKey, signature_b64: str, method: str, path: str,
                             timestamp: int, nonce: str, body: bytes) -> bool:
    """True when the signature is the device's over this very request."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        public_key.verify(signature, request_payload(method, path, timestamp, nonce, body))
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def end_payload(device_key_id: str, count: int, head: str) -> bytes:
    """What an end line's signature covers: the same bytes as a log bundle's end record."""
    return canonical_json({"format": LOG_FORMAT, "device_key_id": device_key_id, "count": count, "head": head})


def public_key_b64(public_key: Ed25519PublicKey) -> str:
    """The raw 32-byte public key, base64 (how a device sends it to be paired)."""
    return base64.b64encode(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode("ascii")


def public_key_from_b64(text: str) -> Ed25519PublicKey:
    """The public key back from `public_key_b64`; ValueError for anything else."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise ValueError("public_key is not base64") from None
    if len(raw) != 32:
        raise ValueError(f"public_key must be a raw Ed25519 key of 32 bytes, not {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def normalise_pairing_code(text: str) -> str:
    """A pairing code as typed ("1234 5678", "1234-5678") as its digits."""
    return "".join(ch for ch in str(text) if ch.isdigit())
