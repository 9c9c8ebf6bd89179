"""`homeapp rx ...`: prescriptions on the command line (contract.md: Commands).

- `rx check FILE`: prints `FILE: valid` and a one-line summary, exit 0; or every problem,
  one line each, on stdout (the report is the command's output; a closing count goes to
  stderr), exit 2.
- `rx show FILE`: the human summary on stdout, exit 0; problems on stderr, exit 2.
- `rx presets`: the clinician templates with their rationale.
- `rx new --preset NAME [--out FILE]`: a prescription from a preset, issued today,
  expiring in 90 days, to stdout or FILE (never overwriting one unless --force).

Bad input (a missing file, not JSON, the wrong shape) is one clear line, never a traceback.
`rx keygen/sign/verify` plug in from `homeapp.commands.rx_signing` when it exists.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from homeapp.errors import UserError

#: How long a prescription made by `rx new` stays valid.
NEW_RX_VALID_DAYS = 90


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (expected YYYY-MM-DD)") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    rx = subparsers.add_parser("rx", help="prescriptions: check, show, presets, new, keygen, sign, verify, trust",
                               description="Check, show and create prescriptions "
                                           "(format homeapp.prescription/1).")
    rx_sub = rx.add_subparsers(dest="rx_command", metavar="RX_COMMAND")
    rx.set_defaults(func=lambda args: _usage(rx))

    p = rx_sub.add_parser("check", help="validate a prescription file (exit 0 valid, 2 invalid)")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--today", type=_date, metavar="YYYY-MM-DD",
                   help="judge validity dates as of this day (default: today)")
    p.set_defaults(func=cmd_check)

    p = rx_sub.add_parser("show", help="human summary of a prescription file")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--today", type=_date, metavar="YYYY-MM-DD",
                   help="judge validity dates as of this day (default: today)")
    p.set_defaults(func=cmd_show)

    p = rx_sub.add_parser("presets", help="list the clinician templates")
    p.set_defaults(func=cmd_presets)

    p = rx_sub.add_parser("new", help="write a prescription from a preset")
    p.add_argument("--preset", required=True, metavar="NAME", help="see `homeapp rx presets`")
    p.add_argument("--out", metavar="FILE", help="write here (default: stdout)")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.add_argument("--patient-id", default="UNASSIGNED")
    p.add_argument("--clinician-id", default="UNASSIGNED")
    p.add_argument("--id", dest="rx_id", metavar="ID", help="prescription id (default: from preset and date)")
    p.add_argument("--supervision", choices=("none", "caregiver"), default="none")
    p.set_defaults(func=cmd_new)

    # keygen/sign/verify live with the signing code
    from homeapp.commands import rx_signing
    rx_signing.register_rx(rx_sub)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def cmd_check(args: argparse.Namespace) -> int:
    from schedules.describe import one_line
    from schedules.validate import PrescriptionError, parse_prescription, read_json_object

    try:
        data = read_json_object(args.file)
    except PrescriptionError as e:
        for line in e.problems:
            print(line)
        return 2
    try:
        rx = parse_prescription(data, today=args.today)   # every problem, or the prescription
    except PrescriptionError as e:
        for line in e.problems:
            print(line)
        n = len(e.problems)
        print(f"{args.file}: invalid ({n} problem{'s' * (n != 1)})", file=sys.stderr)
        return 2
    print(f"{args.file}: valid")
    print(one_line(rx))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from schedules.describe import summary
    from schedules.validate import PrescriptionError, load_prescription

    try:
        rx = load_prescription(args.file, today=args.today)
    except PrescriptionError as e:
        for line in e.problems:
            print(line, file=sys.stderr)
        return 2
    print(summary(rx))
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from schedules.presets import ALIASES, PRESETS, alias_note

    width = max(len(n) for n in PRESETS)
    for name, preset in PRESETS.items():
        print(f"{name:<{width}}  {preset.title}")
        print(f"{'':<{width}}  {preset.rationale}")
    for old in ALIASES:
        print(alias_note(old))
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    from schedules.presets import PRESETS, alias_note, make_prescription, resolve_name
    from schedules.validate import check_prescription

    if resolve_name(args.preset) not in PRESETS:
        raise UserError(f"unknown preset {args.preset!r} (known: {', '.join(PRESETS)})")
    if alias_note(args.preset):
        print(alias_note(args.preset), file=sys.stderr)
    today = dt.date.today()
    data = make_prescription(args.preset, patient_id=args.patient_id, clinician_id=args.clinician_id,
                             issued=today, expires=today + dt.timedelta(days=NEW_RX_VALID_DAYS),
                             rx_id=args.rx_id, supervision=args.supervision)
    problems = check_prescription(data, today=today)
    if problems:  # an id given as blanks, say: never write an invalid prescription
        raise UserError("; ".join(problems))
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        # "x" refuses to replace an existing prescription, which may already be signed.
        with open(args.out, "w" if args.force else "x", encoding="utf-8") as f:
            f.write(text)
    except FileExistsError:
        raise UserError(f"{args.out}: already exists (use --force to overwrite)") from None
    except OSError as e:
        raise UserError(f"{args.out}: cannot write ({e.strerror or e})") from None
    print(f"{args.out}: written from preset {args.preset} (valid {data['issued']} to {data['expires']})",
          file=sys.stderr)
    return 0


__all__ = ["register", "cmd_check", "cmd_show", "cmd_presets", "cmd_new", "NEW_RX_VALID_DAYS"]
