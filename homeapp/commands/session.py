"""`homeapp session run` (contract.md)."""
from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    session = subparsers.add_parser("session", help="run a session headless on the simulated board")
    sub = session.add_subparsers(dest="session_command", metavar="COMMAND", required=True)
    run = sub.add_parser("run", help="one whole session on the simulated board; prints a JSON summary")
    run.add_argument("--prescription", required=True, metavar="RX", help="prescription JSON file")
    run.add_argument("--db", required=True, help="the session log (SQLite), created if missing")
    run.add_argument("--trace", required=True, metavar="CSV", help="where to write the board's trace")
    run.add_argument("--actions", metavar="JSONL", help="what the patient and the board do, and when")
    run.add_argument("--virtual-time", action="store_true",
                     help="simulated time as fast as the machine allows, fully deterministic")
    run.add_argument("--allow-unsigned", action="store_true",
                     help="accept an unsigned prescription (simulation and tests only)")
    run.add_argument("--caregiver-unlocked", action="store_true",
                     help="the caregiver's unlock that a supervised prescription needs")
    run.add_argument("--trust", metavar="DIR",
                     help="trust store of clinician public keys (default: the configured one)")
    run.add_argument("--start-at", type=_start_at, metavar="ISO-8601",
                     help="the session's wall-clock start (with --virtual-time), e.g. 2026-11-03T09:30:00+01:00; "
                          "no zone = local time")
    run.set_defaults(func=_run)


def _start_at(text: str):
    import datetime as dt
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO-8601 time "
                                         f"(e.g. 2026-11-03T09:30:00+01:00)") from None
    return when if when.tzinfo is not None else when.astimezone()


def _run(args: argparse.Namespace) -> int:
    from homeapp.config import load_config
    from homeapp.runner import run_session

    config = load_config(args.config)   # its pin map and board constants, as the app's
    trust = args.trust
    if trust is None and not args.allow_unsigned:
        trust = str(config.trust_dir)
    try:
        result = run_session(prescription_path=args.prescription, db_path=args.db,
                             trace_path=args.trace, actions_path=args.actions,
                             virtual_time=args.virtual_time, allow_unsigned=args.allow_unsigned,
                             caregiver_unlocked=args.caregiver_unlocked, trust_dir=trust,
                             start_at=args.start_at, config=config)
    except Exception as e:  # noqa: BLE001 - exit 1 is the contract's "internal error"
        from homeapp.errors import UserError
        if isinstance(e, UserError):
            raise
        print(f"homeapp: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    for reason in result.reasons:
        print(f"refused: {reason}", file=sys.stderr)
    if result.summary is not None:
        print(json.dumps(result.summary, separators=(",", ":")))
    return result.exit_code
