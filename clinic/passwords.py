"""Clinicians' passwords, hashed with argon2id (argon2-cffi's defaults, RFC 9106's
second recommended setting); only the hash is ever stored."""
from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher(type=Type.ID)

#: What a password must be: long enough to resist guessing, short enough to hash quickly.
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 256

#: Verifying against this keeps a wrong username as slow as a wrong password.
_DUMMY_HASH = _HASHER.hash("not a password of anyone")


class PasswordError(ValueError):
    """A password that cannot be used (the message says why)."""


def check_new_password(password: str) -> None:
    """PasswordError unless `password` is acceptable for a new account."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise PasswordError(f"the password must have at least {MIN_PASSWORD_CHARS} characters "
                            f"(it has {len(password)})")
    if len(password) > MAX_PASSWORD_CHARS:
        raise PasswordError(f"the password must have at most {MAX_PASSWORD_CHARS} characters")


def hash_password(password: str) -> str:
    """The argon2id hash of an acceptable password (PasswordError otherwise)."""
    check_new_password(password)
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; a missing account (None) costs the same time."""
    if len(password) > MAX_PASSWORD_CHARS:
        return False
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
