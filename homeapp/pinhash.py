"""Caregiver and clinician PINs, stored only as salted scrypt hashes.

Format of a stored hash (one string, safe in TOML):
    scrypt$n=16384,r=8,p=1$<salt, base64>$<hash, base64>
A PIN is 4 to 8 digits. A PIN's space is small, so the hash slows guessing but does not
make a leaked configuration harmless: the file stays readable only by root and the app.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from dataclasses import dataclass

PIN_RE = re.compile(r"[0-9]{4,8}")
_HASH_RE = re.compile(r"scrypt\$n=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)")

#: scrypt cost: n=2**14, r=8 uses 16 MiB and about 0.1 s on a Pi 4; fine on a Zero 2 W's 512 MiB.
DEFAULT_N, DEFAULT_R, DEFAULT_P = 16384, 8, 1
SALT_BYTES, HASH_BYTES = 16, 32
_MAXMEM = 64 * 1024 * 1024


class PinFormatError(ValueError):
    """A PIN that is not 4 to 8 digits, or a stored hash that is not in our format."""


@dataclass(frozen=True, kw_only=True)
class ParsedHash:
    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes


def check_pin(pin: str) -> None:
    if not PIN_RE.fullmatch(pin):
        raise PinFormatError("a PIN is 4 to 8 digits (0-9), nothing else")


def parse_hash(hashed: str) -> ParsedHash:
    """Parse and bound-check a stored hash; raises PinFormatError saying what is wrong."""
    if not isinstance(hashed, str):
        raise PinFormatError(f"{hashed!r} is not a PIN hash string")
    m = _HASH_RE.fullmatch(hashed)
    if not m:
        raise PinFormatError("not a PIN hash (expected scrypt$n=…,r=…,p=…$salt$hash, "
                             "as printed by `homeapp config hash-pin`)")
    n, r, p = (int(m.group(i)) for i in (1, 2, 3))
    if n < 2 ** 10 or n > 2 ** 20 or n & (n - 1):
        raise PinFormatError(f"scrypt n={n} must be a power of two from 1024 to 1048576")
    if not 1 <= r <= 32 or not 1 <= p <= 16:
        raise PinFormatError(f"scrypt r={r}, p={p} out of range (r 1-32, p 1-16)")
    try:
        salt = base64.b64decode(m.group(4), validate=True)
        digest = base64.b64decode(m.group(5), validate=True)
    except binascii.Error as e:
        raise PinFormatError(f"bad base64 in the PIN hash ({e})") from e
    if len(salt) < SALT_BYTES or len(digest) < HASH_BYTES:
        raise PinFormatError(f"salt or hash too short (at least {SALT_BYTES} and "
                             f"{HASH_BYTES} bytes)")
    if 128 * r * n > _MAXMEM // 2:
        raise PinFormatError(f"scrypt n={n}, r={r} needs more memory than the device allows")
    return ParsedHash(n=n, r=r, p=p, salt=salt, digest=digest)


def _derive(pin: str, *, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=p, dklen=length,
                          maxmem=_MAXMEM)


def hash_pin(pin: str) -> str:
    """A new salted hash of `pin` (raises PinFormatError unless 4 to 8 digits)."""
    check_pin(pin)
    salt = os.urandom(SALT_BYTES)
    digest = _derive(pin, salt=salt, n=DEFAULT_N, r=DEFAULT_R, p=DEFAULT_P, length=HASH_BYTES)
    b64 = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
    return f"scrypt$n={DEFAULT_N},r={DEFAULT_R},p={DEFAULT_P}${b64(salt)}${b64(digest)}"


def verify_pin(pin: str, hashed: str) -> bool:
    """True when `pin` matches `hashed`. A malformed PIN gives False; a malformed hash raises
    PinFormatError (a configuration fault, not a wrong guess)."""
    parsed = parse_hash(hashed)
    if not PIN_RE.fullmatch(pin or ""):
        return False
    got = _derive(pin, salt=parsed.salt, n=parsed.n, r=parsed.r, p=parsed.p,
                  length=len(parsed.digest))
    return hmac.compare_digest(got, parsed.digest)


def is_valid_hash(value: object) -> bool:
    try:
        parse_hash(value)  # type: ignore[arg-type]
    except PinFormatError:
        return False
    return True
