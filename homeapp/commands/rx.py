"""`homeapp rx ...`: prescriptions on the command line (contract.md: Commands).

- `rx check FILE [--trust DIR]`: prints `FILE: valid` and a one-line summary, exit 0; or
  every problem, one line each, on stdout (the report is the command's output; a closing
  count goes to stderr), exit 2. A signature is checked only against a trust store
  (`--trust`); without one the output says it was not checked. With one, a signature that
  does not verify is a problem (exit 2).
- `rx show FILE [--trust DIR]`: the human summary on stdout, exit 0; problems on stderr, exit 2.
- `rx presets`: the clinician templates with their rationale.
- `rx new (--preset NAME | --from RX) --patient-id ID --clinician-id ID [--set PATH=VALUE]...
  [--out FILE]`: a prescription from a preset or an existing prescription, with a new id,
  issued today, expiring in 90 days, to stdout or FILE (never overwriting one unless
  --force); validated before anything is written.

Bad input (a missing file, not JSON, the wrong shape) is one clear line, never a traceback.
`rx keygen/sign/verify` plug in from `homeapp.commands.rx_signing` when it exists.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import re
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

    trust_help = ("trust store (directory of clinician *.pub keys) to check the signature against; "
                  "without it the signature is not checked")
    p = rx_sub.add_parser("check", help="validate a prescription file (exit 0 valid, 2 invalid)")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--today", type=_date, metavar="YYYY-MM-DD",
                   help="judge validity dates as of this day (default: today)")
    p.add_argument("--trust", metavar="DIR", help=trust_help)
    p.set_defaults(func=cmd_check)

    p = rx_sub.add_parser("show", help="human summary of a prescription file")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--today", type=_date, metavar="YYYY-MM-DD",
                   help="judge validity dates as of this day (default: today)")
    p.add_argument("--trust", metavar="DIR", help=trust_help)
    p.set_defaults(func=cmd_show)

    p = rx_sub.add_parser("presets", help="list the clinician templates")
    p.set_defaults(func=cmd_presets)

    p = rx_sub.add_parser("new", help="write a prescription from a preset or an existing prescription")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", metavar="NAME", help="see `homeapp rx presets`")
    src.add_argument("--from", dest="from_rx", metavar="RX",
                     help="start from this prescription (new id and dates; its signature is dropped)")
    p.add_argument("--out", metavar="FILE", help="write here (default: stdout)")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.add_argument("--patient-id", metavar="ID", help="the patient (required with --preset; "
                                                      "with --from, default: the same patient)")
    p.add_argument("--clinician-id", metavar="ID", help="the prescribing clinician (required with --preset; "
                                                        "with --from, default: the same clinician)")
    p.add_argument("--id", dest="rx_id", metavar="ID", help="prescription id (default: from preset and date)")
    p.add_argument("--supervision", choices=("none", "caregiver"),
                   help='default: "none" (with --from: as in RX)')
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="PATH=VALUE",
                   help="change one field, by the path the validator names (blocks[1].hz=60, "
                        "sessions_per_week=4, valid_from=2026-12-20); the value is JSON or plain text; repeatable")
    p.set_defaults(func=cmd_new)

    # keygen/sign/verify live with the signing code
    from homeapp.commands import rx_signing
    rx_signing.register_rx(rx_sub)
    from homeapp.commands import clinic  # rx active: the device's prescription
    clinic.register_rx(rx_sub)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def signature_line(rx_data: dict, trust_dir: str | None) -> tuple[str, bool]:
    """What can be said about a prescription's signature, and whether it is acceptable:
    unsigned; signed but not checked (no trust store given); verified by a trusted key;
    or refused with the reason (altered after signing, unknown or removed key)."""
    from schedules.signing import SignatureError, TrustStore, verify_prescription

    sig = rx_data.get("signature")
    if sig is None:
        return "unsigned", True
    kid = sig.get("key_id", "?") if isinstance(sig, dict) else "?"
    if trust_dir is None:
        return (f"signed by key {kid}, signature NOT checked (no trust store given: "
                f"add --trust DIR to check it)"), True
    trust = TrustStore(trust_dir)
    if not trust.directory.is_dir():
        raise UserError(f"{trust_dir}: no such trust store directory")
    try:
        verify_prescription(rx_data, trust)
    except SignatureError as e:
        return f"signature: refused: {e.reason}", False
    label = trust.labels().get(kid)
    return f"signed by key {kid}" + (f" ({label})" if label else "") + ", signature verified", True


def _summary_line(rx, sig_text: str) -> str:
    """schedules.describe.one_line, with the signature as checked here and the start day."""
    from schedules.describe import one_line, signer

    line = one_line(rx)
    tail = ", " + signer(rx)
    if line.endswith(tail):
        line = line[: -len(tail)]
    if rx.valid_from is not None:
        line += f", sessions from {rx.valid_from}"
    return f"{line}, {sig_text}"


def cmd_check(args: argparse.Namespace) -> int:
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
    sig_text, sig_ok = signature_line(data, args.trust)
    if not sig_ok:
        print(sig_text)
        print(f"{args.file}: refused (the signature does not verify)", file=sys.stderr)
        return 2
    print(f"{args.file}: valid")
    print(_summary_line(rx, sig_text))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from schedules.describe import summary
    from schedules.validate import PrescriptionError, parse_prescription, read_json_object

    try:
        data = read_json_object(args.file)
        rx = parse_prescription(data, today=args.today)
    except PrescriptionError as e:
        for line in e.problems:
            print(line, file=sys.stderr)
        return 2
    sig_text, sig_ok = signature_line(data, args.trust)
    if not sig_ok:
        print(f"{args.file}: {sig_text}", file=sys.stderr)
        return 2
    lines = []
    for line in summary(rx).splitlines():
        if line.startswith("  signature: "):
            line = f"  signature: {sig_text}"
        elif line.startswith("  valid ") and rx.valid_from is not None:
            line = (f"  issued {rx.issued}; sessions from {rx.valid_from} (not before) "
                    f"to {rx.expires}")
        lines.append(line)
    print("\n".join(lines))
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


_PATH_PART = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)((?:\[[0-9]+\])*)$")


def apply_set(data: dict, assignment: str) -> None:
    """`--set PATH=VALUE`: PATH as the validator names fields (`blocks[1].hz`,
    `channels[0].max_ma`, `valid_from`); VALUE as JSON (60, 2.5, {"value": 50, "min": 40,
    "max": 60}, "text") or else as plain text. UserError naming what is wrong."""
    if "=" not in assignment:
        raise UserError(f"--set {assignment!r}: expected PATH=VALUE, e.g. blocks[1].hz=60")
    path, raw = assignment.split("=", 1)
    path = path.strip()
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    steps: list[str | int] = []
    for part in path.split("."):
        m = _PATH_PART.match(part)
        if not m:
            raise UserError(f"--set {assignment!r}: {part!r} is not a field path part "
                            f"(like hz, blocks[1] or channels[0])")
        steps.append(m.group(1))
        steps += [int(i) for i in re.findall(r"\[([0-9]+)\]", m.group(2))]
    node: object = data
    where = ""
    for step, nxt in zip(steps, steps[1:] + [None]):
        last = nxt is None
        if isinstance(step, int):
            if not isinstance(node, list) or not 0 <= step < len(node):
                size = len(node) if isinstance(node, list) else 0
                raise UserError(f"--set {path}: {where}[{step}] does not exist "
                                f"({where} has {size} item{'s' * (size != 1)}, 0 to {size - 1})")
            where += f"[{step}]"
            if last:
                node[step] = value
            else:
                node = node[step]
        else:
            if not isinstance(node, dict):
                raise UserError(f"--set {path}: {where} is not an object with fields")
            where = f"{where}.{step}" if where else step
            if last:
                node[step] = value
            else:
                if step not in node:
                    raise UserError(f"--set {path}: {where} does not exist in this prescription")
                node = node[step]


def _new_id(old_id: str, today: dt.date) -> str:
    """The next prescription's id, as the clinic's program editor makes it
    (schedules.progression.new_id)."""
    from schedules.progression import new_id
    return new_id(old_id, today)


def cmd_new(args: argparse.Namespace) -> int:
    from schedules.presets import PRESETS, alias_note, make_prescription, resolve_name
    from schedules.validate import check_prescription

    today = dt.date.today()
    expires = today + dt.timedelta(days=NEW_RX_VALID_DAYS)
    if args.preset is not None:
        if resolve_name(args.preset) not in PRESETS:
            raise UserError(f"unknown preset {args.preset!r} (known: {', '.join(PRESETS)})")
        if alias_note(args.preset):
            print(alias_note(args.preset), file=sys.stderr)
        missing = [opt for opt, v in (("--patient-id", args.patient_id), ("--clinician-id", args.clinician_id))
                   if not v]
        if missing:
            raise UserError(f"rx new --preset needs {' and '.join(missing)}: a prescription names the "
                            f"patient it is for and the clinician who prescribes it")
        data = make_prescription(args.preset, patient_id=args.patient_id, clinician_id=args.clinician_id,
                                 issued=today, expires=expires,
                                 rx_id=args.rx_id, supervision=args.supervision or "none")
        origin = f"preset {args.preset}"
    else:
        from .rx_signing import read_rx_json
        data = read_rx_json(args.from_rx)
        data.pop("signature", None)   # a changed prescription must be signed anew
        data.pop("valid_from", None)  # the old start day belongs to the old dates
        data["id"] = args.rx_id or _new_id(str(data.get("id") or "rx"), today)
        data["issued"], data["expires"] = today.isoformat(), expires.isoformat()
        for key, value in (("patient_id", args.patient_id), ("clinician_id", args.clinician_id),
                           ("supervision", args.supervision)):
            if value:
                data[key] = value
        origin = f"{args.from_rx}"
    for assignment in args.sets:
        apply_set(data, assignment)
    problems = check_prescription(data, today=today)
    if problems:  # never write an invalid prescription
        raise UserError("not written: " + "; ".join(problems))
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
    start = f", sessions from {data['valid_from']}" if data.get("valid_from") else ""
    print(f"{args.out}: written from {origin} (id {data['id']}, valid {data['issued']} to "
          f"{data['expires']}{start})", file=sys.stderr)
    return 0


__all__ = ["register", "cmd_check", "cmd_show", "cmd_presets", "cmd_new", "NEW_RX_VALID_DAYS"]
