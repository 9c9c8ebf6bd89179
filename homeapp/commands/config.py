"""`homeapp config …`: check the device configuration, hash a PIN for it, list its pins."""
from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from ..config import (ConfigError, config_pin_map, default_config_path, load_config,
                      path_lines, pin_lines)
from ..errors import UserError
from ..pinhash import PinFormatError, check_pin, hash_pin


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("config", help="check the device configuration, hash a PIN")
    sub = p.add_subparsers(dest="config_command", metavar="COMMAND", required=True)

    check = sub.add_parser("check", help="validate a configuration file: one line per "
                                         "problem (exit 0 valid, 2 invalid)")
    check.add_argument("file", nargs="?", help="default: --config, $HOMEAPP_CONFIG or "
                                               "/etc/homeapp/config.toml")
    check.set_defaults(func=_check)

    hp = sub.add_parser("hash-pin", help="read a PIN (twice) and print its hash for the "
                                         "configuration file")
    hp.add_argument("--pin-stdin", action="store_true",
                    help="read the PIN once from standard input (for scripts)")
    hp.set_defaults(func=_hash_pin)

    pins = sub.add_parser("pins", help="the output lines of the configuration's pin map "
                                       "(validated; other settings not needed), enable "
                                       "first, one 'NAME GPIO' a line")
    pins.add_argument("file", nargs="?")
    pins.set_defaults(func=_pins)

    paths = sub.add_parser("paths", help="where the data lives: 'NAME PATH' a line "
                                         "(data_dir, db_path, trust_dir, device_key_path)")
    paths.add_argument("file", nargs="?")
    paths.set_defaults(func=_paths)


def _path(args: argparse.Namespace) -> Path | None:
    chosen = args.file or getattr(args, "config", None)
    return Path(chosen) if chosen else default_config_path()


def _check(args: argparse.Namespace) -> int:
    path = _path(args)
    try:
        cfg = load_config(path)
    except ConfigError as e:
        for line in e.problems:
            print(line)
        return 2
    print(f"{path or 'built-in configuration'}: valid (board {cfg.board}, "
          f"language {cfg.language}, data in {cfg.data_dir})")
    return 0


def _pins(args: argparse.Namespace) -> int:
    print("\n".join(pin_lines(config_pin_map(_path(args)))))
    return 0


def _paths(args: argparse.Namespace) -> int:
    print("\n".join(path_lines(load_config(_path(args)))))
    return 0


def _hash_pin(args: argparse.Namespace) -> int:
    if args.pin_stdin:
        pin = sys.stdin.readline().strip()
    else:
        if not sys.stdin.isatty():
            raise UserError("no terminal to ask for the PIN: use --pin-stdin")
        pin = getpass.getpass("PIN (4 to 8 digits): ")
        if getpass.getpass("the same PIN again: ") != pin:
            raise UserError("the two PINs differ; nothing was printed")
    try:
        check_pin(pin)
    except PinFormatError as e:
        raise UserError(str(e)) from e
    print(hash_pin(pin))
    return 0
