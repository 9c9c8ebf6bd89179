"""The device's commands for the clinic (contract.md):

- `homeapp clinic pair --url URL --code CODE [--ca-cert F]`: pair this device with its
  patient at the clinic; prints the device's key id to compare with the clinic's.
- `homeapp sync`: upload what the clinic has not acknowledged, then fetch a newer
  prescription. One JSON line; exit 0 in sync, 3 clinic unreachable (all stays queued),
  2 refused (the reason on stderr).
- `homeapp rx active`: the active prescription as `rx show` prints it (registered into
  the `rx` group by homeapp/commands/rx.py through `register_rx`).
"""
from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from typing import Any, Iterator

from ..errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    clinic = subparsers.add_parser("clinic", help="the clinic service: pair this device with its patient")
    clinic_sub = clinic.add_subparsers(dest="clinic_command", metavar="CLINIC_COMMAND", required=True)
    p = clinic_sub.add_parser("pair", help="pair with the clinic using the one-time code it gave",
                              description="Sends this device's public key with the code; prints the device's key "
                                          "id, which the clinic shows too, for a person to compare.")
    p.add_argument("--url", required=True, help="the clinic's address, e.g. https://clinic.example.org:8443")
    p.add_argument("--code", required=True, help="the pairing code (8 digits, e.g. 1234-5678)")
    p.add_argument("--ca-cert", metavar="F", help="the CA certificate of the clinic's TLS certificate "
                                                  "(when it is not signed by a public CA)")
    p.set_defaults(func=cmd_pair)

    p = subparsers.add_parser("sync", help="upload the log to the clinic and fetch a new prescription",
                              description="Exit 0 in sync, 3 when the clinic cannot be reached (everything stays "
                                          "queued), 2 when the clinic or the device refused something.")
    p.set_defaults(func=cmd_sync)


def register_rx(rx_subparsers: Any) -> None:
    p = rx_subparsers.add_parser("active", help="the device's active prescription (as rx show prints it)")
    p.set_defaults(func=cmd_rx_active)


@contextmanager
def open_syncer(args: argparse.Namespace) -> Iterator[Any]:
    """A Syncer on the configured data directory, log, device key and trust store."""
    from schedules.signing import KeyFileError, TrustStore

    from ..config import load_config
    from ..device_key import ensure_device_key
    from ..store import Store, StoreError
    from ..sync import Syncer

    config = load_config(getattr(args, "config", None))
    try:
        store = Store.open(config.db_path)
    except StoreError as e:
        raise UserError(str(e)) from None
    try:
        try:
            key, kid = ensure_device_key(config.data_dir, private_key_path=config.device_key_path)
        except KeyFileError as e:
            raise UserError(f"device key: {e}") from None
        syncer = Syncer(data_dir=config.data_dir, store=store, device_key=key, device_key_id=kid,
                        trust=TrustStore(config.trust_dir), db_path=config.db_path,
                        config_url=config.clinic_url, config_ca_cert=config.clinic_ca_cert)
        try:
            yield syncer
        finally:
            syncer.close()
    finally:
        store.close()


def cmd_pair(args: argparse.Namespace) -> int:
    from ..sync import SyncError
    with open_syncer(args) as syncer:
        try:
            answer = syncer.pair(args.url, args.code, ca_cert=args.ca_cert)
        except SyncError as e:
            print(f"homeapp: pairing failed: {e.reason}", file=sys.stderr)
            return e.exit_code
    print(f"paired with the clinic at {args.url} for patient {answer['patient_id']}")
    print(f"device key id {answer['device_key_id']}: the clinic shows the same; compare them")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from ..sync import SyncError
    with open_syncer(args) as syncer:
        try:
            result = syncer.sync()
        except SyncError as e:
            partial = getattr(e, "result", None)
            line = {"uploaded": partial.uploaded if partial else 0,
                    "prescription": partial.prescription if partial else None, "status": e.status}
            print(json.dumps(line))
            print(f"homeapp: sync: {e.reason}", file=sys.stderr)
            return e.exit_code
    print(json.dumps(result.line()))
    return 0


def cmd_rx_active(args: argparse.Namespace) -> int:
    from schedules.describe import summary
    from schedules.signing import TrustStore

    from .. import prescriptions
    from ..config import load_config

    config = load_config(getattr(args, "config", None))
    checked = prescriptions.load_active(config.data_dir, trust=TrustStore(config.trust_dir))
    if checked is None:
        raise UserError("no active prescription on this device (import one, or sync with the clinic)")
    if checked.rx is None:
        for line in checked.problems:
            print(line, file=sys.stderr)
        raise UserError("the active prescription is no longer valid (reasons above)")
    print(summary(checked.rx))
    if checked.signature_problem:
        print(f"signature: NOT accepted by this device: {checked.signature_problem}")
    else:
        print(f"signature: verified, key {checked.source['signature']['key_id']}")
    return 0
