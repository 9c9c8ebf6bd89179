"""The `homeapp` console script (contract.md: Commands).

`homeapp` alone starts the touchscreen app; every other command is a subcommand group
registered by its own module in `homeapp.commands`.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from .errors import UserError

#: Command groups, in the order `homeapp --help` lists them.
COMMAND_MODULES = (
    "homeapp.commands.rx",       # rx check/show/presets/new/keygen/sign/verify
    "homeapp.commands.session",  # session run
    "homeapp.commands.log",      # log export/bundle/verify-bundle/backup
    "homeapp.commands.report",   # report BUNDLE
    "homeapp.commands.sim",      # sim (simulated pigpiod + virtual board)
    "homeapp.commands.config",   # config check
    "homeapp.commands.clinic",   # clinic pair, sync (the clinic service)
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="homeapp",
        description="Home NMES trainer. With no command: the touchscreen app "
                    "(on the simulated board unless configured for real hardware).")
    parser.add_argument("--config", help="configuration file (default: /etc/homeapp/config.toml if present)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            from .app_entry import run_app
            return run_app(args)
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"homeapp: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
