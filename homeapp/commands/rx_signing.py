"""`homeapp rx keygen | sign | verify | trust`: the clinician's side of prescription signing,
and the installer's way to add a clinician's key to a device's trust store.

Registered into the `rx` group by homeapp/commands/rx.py via `register_rx(rx_subparsers)`.
Every failure a person can cause (missing file, wrong kind of key, bad JSON, bad
signature) is a UserError: one line, exit 2.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

from schedules.signing import (KeyFileError, SignatureError, TrustStore, generate_keypair, key_id,
                               load_private_key, save_private_key, save_public_key, sign_prescription,
                               verify_prescription)

from schedules.validate import PrescriptionError, check_prescription, read_json_object

from ..errors import UserError

CLINICIAN_KEY_NAME = "clinician.key"
CLINICIAN_PUB_NAME = "clinician.pub"


def register_rx(rx_subparsers: Any) -> None:
    p = rx_subparsers.add_parser("keygen", help="make a clinician signing key pair",
                                 description="Write DIR/clinician.key (private, mode 0600: keep it "
                                             "on your computer) and DIR/clinician.pub (give it to the "
                                             "device's installer); print the key id to compare.")
    p.add_argument("--out", required=True, metavar="DIR", help="directory for the key pair")
    p.set_defaults(func=cmd_keygen)

    p = rx_subparsers.add_parser("sign", help="sign a prescription with a clinician key",
                                 description="Validate RX, then add its Ed25519 signature.")
    p.add_argument("rx", metavar="RX", help="prescription JSON")
    p.add_argument("--key", required=True, metavar="KEY", help="clinician private key (clinician.key)")
    p.add_argument("--out", metavar="FILE", help="where to write the signed prescription (default: RX in place)")
    p.set_defaults(func=cmd_sign)

    p = rx_subparsers.add_parser("verify", help="check a prescription's signature against a trust store")
    p.add_argument("rx", metavar="RX", help="signed prescription JSON")
    p.add_argument("--trust", required=True, metavar="DIR", help="trust store: directory of *.pub keys")
    p.set_defaults(func=cmd_verify)

    trust = rx_subparsers.add_parser(
        "trust", help="the device's trust store: add, list or remove clinician keys",
        description="The clinician public keys this device accepts. For the installer (as the "
                    "app's user); on the touchscreen, clinician mode does the same.")
    trust_sub = trust.add_subparsers(dest="trust_command", metavar="TRUST_COMMAND", required=True)
    p = trust_sub.add_parser("add", help="add a clinician's public key (prints its key id to "
                                         "compare with the one the clinic gave you)")
    p.add_argument("key", metavar="KEY", help="the clinician's public key file (clinician.pub)")
    p.add_argument("--label", metavar="NAME",
                   help="who the key belongs to, e.g. dr-lind (default: the file's name)")
    p.add_argument("--trust", metavar="DIR",
                   help="trust store directory (default: the configuration's paths.trust_dir)")
    p.set_defaults(func=cmd_trust_add)
    p = trust_sub.add_parser("list", help="the keys the device trusts: key id and label")
    p.add_argument("--trust", metavar="DIR",
                   help="trust store directory (default: the configuration's paths.trust_dir)")
    p.set_defaults(func=cmd_trust_list)
    p = trust_sub.add_parser("remove", help="stop trusting a clinician's key (key rotation); logged",
                             description="Take a key out of the trust store: prescriptions it signed are "
                                         "refused from the next session start on. Logged in the device's "
                                         "log as a device event `trust_removed`.")
    p.add_argument("key_id", metavar="KEY_ID", help="the key id (as `rx trust list` shows it) or its label")
    p.add_argument("--trust", metavar="DIR",
                   help="trust store directory (default: the configuration's paths.trust_dir)")
    p.add_argument("--db", metavar="DB", help="the device's log, where the removal is recorded "
                                              "(default: the configuration's paths.db)")
    p.set_defaults(func=cmd_trust_remove)


def cmd_keygen(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    priv, pub = out / CLINICIAN_KEY_NAME, out / CLINICIAN_PUB_NAME
    for path in (priv, pub):
        if path.exists():
            raise UserError(f"{path} already exists; refusing to overwrite a key (choose another --out)")
    private_key, public_key = generate_keypair()
    try:
        save_private_key(priv, private_key)
        save_public_key(pub, public_key)
    except OSError as e:
        raise UserError(f"cannot write the key pair to {out}: {e.strerror}") from None
    print(f"key id {key_id(public_key)}")
    print(f"private key {priv} (keep it secret)", file=sys.stderr)
    print(f"public key  {pub} (give it to the device installer)", file=sys.stderr)
    return 0


def read_rx_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The prescription file as a JSON object, or a UserError saying why not. The
    validator's reader also refuses duplicate keys, which matter here: two parsers could
    read a different value from the same signed bytes."""
    try:
        return read_json_object(path)
    except PrescriptionError as e:
        raise UserError("; ".join(e.problems)) from None


def _validation_problems(rx: dict[str, Any]) -> list[str]:
    """Problems the validator finds in an (unsigned) prescription, judged as of today, or
    as of its `issued` day when that is later: a clinician may sign a prescription that
    starts next week, but not one that has already expired."""
    today = dt.date.today()
    try:
        today = max(today, dt.date.fromisoformat(str(rx.get("issued"))))
    except ValueError:
        pass  # the validator names the bad date
    return check_prescription(rx, today=today)


def cmd_sign(args: argparse.Namespace) -> int:
    rx = read_rx_json(args.rx)
    old = rx.pop("signature", None)  # re-signing replaces the old signature
    problems = _validation_problems(rx)
    if problems:
        raise UserError(f"{args.rx}: refusing to sign an invalid prescription: " + "; ".join(problems))
    try:
        private_key = load_private_key(args.key)
    except KeyFileError as e:
        raise UserError(str(e)) from None
    signed = sign_prescription(rx, private_key)
    out = Path(args.out or args.rx)
    try:
        out.write_text(json.dumps(signed, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror}") from None
    print(f"signed {signed.get('id', '?')} with key {signed['signature']['key_id']} -> {out}")
    if old is not None:
        old_kid = old.get("key_id", "?") if isinstance(old, dict) else "?"
        same = old_kid == signed["signature"]["key_id"]
        print(f"this replaces its earlier signature by key {old_kid}"
              + (" (the same key)" if same else " (another clinician's key: that signature is gone)"),
              file=sys.stderr)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    rx = read_rx_json(args.rx)
    trust = _existing(TrustStore(args.trust))
    try:
        kid = verify_prescription(rx, trust)
    except SignatureError as e:
        raise UserError(f"{args.rx}: refused: {e.reason}") from None
    label = trust.labels().get(kid)
    print(f"signed by {kid}" + (f" ({label})" if label else ""))
    return 0


def _existing(trust: TrustStore) -> TrustStore:
    if not trust.directory.is_dir():
        raise UserError(f"{trust.directory}: no such trust store directory")
    return trust


def _trust_store(args: argparse.Namespace) -> TrustStore:
    if args.trust:
        return TrustStore(args.trust)
    from ..config import ConfigError, load_config
    try:
        return TrustStore(load_config(getattr(args, "config", None)).trust_dir)
    except ConfigError as e:
        raise UserError("the configuration is not valid, so its trust store is unknown: "
                        + "; ".join(e.problems) + " (or give --trust DIR)") from None


def cmd_trust_add(args: argparse.Namespace) -> int:
    trust = _trust_store(args)
    label = args.label or Path(args.key).stem
    try:
        kid = trust.add(Path(args.key), label=label)
    except (KeyFileError, ValueError) as e:  # not a public key; a bad or taken label
        raise UserError(str(e)) from None
    except OSError as e:
        raise UserError(f"cannot write to the trust store {trust.directory}: {e.strerror}") from None
    print(f"trusted {kid} ({trust.labels().get(kid, label)}) in {trust.directory}")
    return 0


def cmd_trust_list(args: argparse.Namespace) -> int:
    trust = _trust_store(args)
    if trust.directory.exists() and not trust.directory.is_dir():
        raise UserError(f"{trust.directory}: not a directory (the trust store is a directory of *.pub keys)")
    labels = trust.labels()
    for kid, label in labels.items():
        print(f"{kid}  {label}")
    for problem in trust.problems:
        print(f"skipped: {problem}", file=sys.stderr)
    if not labels:
        print(f"{trust.directory}: empty: no clinician keys yet (the device refuses every signed "
              f"prescription until one is added with `homeapp rx trust add`)", file=sys.stderr)
    return 0


def cmd_trust_remove(args: argparse.Namespace) -> int:
    from ..store import Store, StoreError

    trust = _existing(_trust_store(args))
    db = args.db
    if db is None:
        from ..config import ConfigError, load_config
        try:
            db = load_config(getattr(args, "config", None)).db_path
        except ConfigError as e:
            raise UserError("the configuration is not valid, so the log is unknown: "
                            + "; ".join(e.problems) + " (or give --db DB)") from None
    try:
        store = Store.open(db)
    except StoreError as e:
        raise UserError(f"the removal must be logged, but {e}") from None
    try:
        try:
            kid, label = trust.remove(args.key_id)
        except ValueError as e:
            raise UserError(str(e)) from None
        except OSError as e:
            raise UserError(f"cannot change the trust store {trust.directory}: {e.strerror}") from None
        try:
            store.add_device_event(kind="trust_removed",
                                   detail={"key_id": kid, "label": label, "by": "command line"})
        except StoreError as e:
            raise UserError(f"the key {kid} was removed but the log could not record it: {e}") from None
    finally:
        store.close()
    print(f"removed {kid} ({label}) from {trust.directory}: prescriptions it signed are refused "
          f"from the next session start")
    return 0
