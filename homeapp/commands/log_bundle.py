"""`homeapp log bundle` and `homeapp log verify-bundle`: the device's log, exported for the
clinician as a hash-chained bundle signed by the device key, and checked on their side.

Registered into the `log` group by homeapp/commands/log.py via `register_log(log_subparsers)`.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from schedules.signing import KeyFileError, load_public_key

from ..bundle import BundleError, parse_when, verify_bundle, write_bundle
from ..config import load_config
from ..device_key import ensure_device_key
from ..errors import UserError
from .log import _open


def register_log(log_subparsers: Any) -> None:
    p = log_subparsers.add_parser("bundle", help="export the log as a signed bundle for the clinician",
                                  description="Write every session, contraction, event and patient report "
                                              "as a hash-chained bundle signed by this device's key.")
    p.add_argument("--db", required=True, metavar="DB", help="the log database")
    p.add_argument("--out", required=True, metavar="FILE", help="bundle file to write (e.g. on the USB stick)")
    p.add_argument("--since", metavar="DATE", help="only sessions started on or after DATE (YYYY-MM-DD)")
    p.add_argument("--data-dir", metavar="DIR",
                   help="where the device key lives (default: from the configuration)")
    p.set_defaults(func=cmd_bundle)

    p = log_subparsers.add_parser("verify-bundle", help="check a log bundle is complete, unaltered and signed",
                                  description="Exit 0 if intact; 2 with one line per problem otherwise.")
    p.add_argument("bundle", metavar="FILE", help="the bundle")
    p.add_argument("--device-key", required=True, metavar="KEY", help="the device's public key (device_key.pub)")
    p.set_defaults(func=cmd_verify_bundle)


def _device_key(args: argparse.Namespace):
    """--data-dir, else the configured paths (homeapp/config.py)."""
    try:
        if args.data_dir:
            return ensure_device_key(args.data_dir)
        config = load_config(getattr(args, "config", None))
        return ensure_device_key(config.data_dir, private_key_path=config.device_key_path)
    except KeyFileError as e:
        raise UserError(f"device key: {e}") from None
    except OSError as e:
        raise UserError(f"device key: cannot create it ({e.strerror}: {e.filename})") from None


def cmd_bundle(args: argparse.Namespace) -> int:
    since = args.since
    if since:
        try:
            parse_when(since)
        except ValueError:
            raise UserError(f"--since {since!r}: give a date as YYYY-MM-DD") from None
    with _open(args.db) as store:      # first: a mistyped --db must not make a device key
        device_key, device_key_id = _device_key(args)
        try:
            count = write_bundle(store, args.out, device_key=device_key, since=since)
        except OSError as e:
            raise UserError(f"cannot write {args.out}: {e.strerror}") from None
    print(f"{count} records -> {args.out} (signed by device key {device_key_id})")
    return 0


def cmd_verify_bundle(args: argparse.Namespace) -> int:
    try:
        public_key = load_public_key(args.device_key)
    except KeyFileError as e:
        raise UserError(f"device key: {e}") from None
    try:
        problems = verify_bundle(args.bundle, public_key)
    except BundleError as e:
        raise UserError(str(e)) from None
    if problems:
        for p in problems:
            print(f"{args.bundle}: {p}", file=sys.stderr)
        print(f"{args.bundle}: NOT intact ({len(problems)} problem{'s' * (len(problems) != 1)})")
        return 2
    print(f"{args.bundle}: intact, complete and signed by this device")
    return 0
