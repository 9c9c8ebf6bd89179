"""`homeapp log`: the session log, exported (contract.md) or backed up.

`log export --db DB [--format json|csv] [--since ISO]` writes to stdout; `log backup
--db DB --out FILE` copies the log with SQLite's online backup, safe while the app runs.
`log bundle` / `log verify-bundle` come from `homeapp.commands.log_bundle` when present.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from ..errors import UserError
from ..store import Store, StoreError


def register(subparsers: argparse._SubParsersAction) -> None:
    log = subparsers.add_parser("log", help="export or back up the session log")
    log_subparsers = log.add_subparsers(dest="log_command", metavar="LOG_COMMAND", required=True)

    p = log_subparsers.add_parser(
        "export", help="the session log to stdout (JSON as in contract.md, or CSV: one row per event)")
    p.add_argument("--db", required=True, help="the log database")
    p.add_argument("--format", choices=("json", "csv"), default="json")
    p.add_argument("--since", type=_since, metavar="ISO",
                   help="only sessions started at or after this time "
                        "(e.g. 2026-11-01 or 2026-11-01T08:00:00+01:00; no zone = UTC)")
    p.set_defaults(func=cmd_export)

    p = log_subparsers.add_parser(
        "backup", help="a consistent copy of the log (SQLite online backup), safe while the app runs")
    p.add_argument("--db", required=True, help="the log database")
    p.add_argument("--out", required=True, help="the copy to write (must not exist)")
    p.set_defaults(func=cmd_backup)

    # bundle/verify-bundle live with the bundle code
    from homeapp.commands import log_bundle
    log_bundle.register_log(log_subparsers)


def _since(text: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 date or time (e.g. 2026-11-01)") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def _open(db: str) -> Store:
    try:
        return Store.open(db, create=False)
    except StoreError as e:
        raise UserError(str(e)) from None


def cmd_export(args: argparse.Namespace) -> int:
    with _open(args.db) as store:
        if args.format == "csv":
            store.export_csv(sys.stdout, since=args.since)
        else:
            json.dump(store.export(since=args.since), sys.stdout, indent=2, ensure_ascii=False)
            sys.stdout.write("\n")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    with _open(args.db) as store:
        try:
            dest = store.backup(args.out)
        except StoreError as e:
            raise UserError(str(e)) from None
        count = len(store.sessions())
    print(f"backed up {args.db} to {dest} ({count} sessions)")
    return 0
