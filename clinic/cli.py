"""`homeapp-clinic`: the clinic service's command line (docs/contract.md).

Every command takes `--db URL` (`sqlite:///PATH` or `postgresql://...`; default an SQLite
file in the clinic's data directory, $HOMEAPP_CLINIC_DATA or ~/.local/share/homeapp-clinic).
Exit 0 done, 2 refused or bad input (the reason on stderr), 1 internal error.
"""
from __future__ import annotations

import argparse
import getpass
import importlib.util
import ipaddress
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Sequence

from .db import DatabaseURLError, default_url, describe, migrate, open_engine
from .passwords import PasswordError
from .service import CLI, Clinic, ClinicError

PROG = "homeapp-clinic"
#: Most service processes `serve --workers` starts.
MAX_WORKERS = 64


class CommandError(Exception):
    """A refusal to print as one line (or several) and exit 2."""


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", metavar="URL", default=None,
                        help="database URL: sqlite:///PATH or postgresql://USER@HOST/DB "
                             f"(default: {default_url()})")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(prog=PROG, description="The clinic service of homeapp: devices upload "
                                                            "their session logs, clinicians publish prescriptions.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("serve", parents=[common], help="run the service (HTTPS with --tls-cert/--tls-key)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; any address "
                                                       "but loopback needs TLS)")
    p.add_argument("--port", type=int, default=8443, help="port (default 8443; 0 picks a free one)")
    p.add_argument("--tls-cert", metavar="F", help="certificate chain (PEM) for HTTPS")
    p.add_argument("--tls-key", metavar="F", help="private key (PEM) of the certificate")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="service processes sharing the port (default 1; on PostgreSQL about one per CPU core, "
                        "on SQLite keep 1)")
    p.set_defaults(func=cmd_serve)

    clinician = sub.add_parser("clinician", help="clinician accounts and their signing keys")
    csub = clinician.add_subparsers(dest="clinician_command", metavar="CLINICIAN_COMMAND", required=True)
    p = csub.add_parser("add", parents=[common], help="add a clinician (password from standard input when it is "
                                                      "not a terminal)")
    p.add_argument("username")
    p.set_defaults(func=cmd_clinician_add)
    p = csub.add_parser("key", parents=[common], help="register the public key that `homeapp rx keygen` made; "
                                                      "prints its key id")
    p.add_argument("username")
    p.add_argument("pubfile", metavar="PUBFILE")
    p.set_defaults(func=cmd_clinician_key)

    patient = sub.add_parser("patient", help="patients")
    psub = patient.add_subparsers(dest="patient_command", metavar="PATIENT_COMMAND", required=True)
    p = psub.add_parser("add", parents=[common], help="add a patient of a clinician")
    p.add_argument("patient_id", metavar="PATIENT_ID")
    p.add_argument("--clinician", required=True, metavar="USERNAME")
    p.set_defaults(func=cmd_patient_add)
    p = psub.add_parser("list", parents=[common], help="every patient, with their devices' last upload (JSON)")
    p.set_defaults(func=cmd_patient_list)

    p = sub.add_parser("pair", parents=[common], help="a one-time pairing code for the patient's device "
                                                     "(15 minutes, usable once)")
    p.add_argument("patient_id", metavar="PATIENT_ID")
    p.set_defaults(func=cmd_pair)

    rx = sub.add_parser("rx", help="prescriptions for patients' devices")
    rsub = rx.add_subparsers(dest="rx_command", metavar="RX_COMMAND", required=True)
    p = rsub.add_parser("publish", parents=[common], help="queue a signed prescription for the patient's device")
    p.add_argument("patient_id", metavar="PATIENT_ID")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_rx_publish)

    p = sub.add_parser("export", parents=[common], help="a patient's log, exactly as `homeapp log export` prints it")
    p.add_argument("patient_id", metavar="PATIENT_ID")
    p.add_argument("--format", choices=("json", "csv"), default="json")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("demo", parents=[common], help="fill a database with generated demo patients (for trying "
                                                     "the web pages; never on a real clinic's database)")
    p.add_argument("--patients", type=int, default=30, help="patients of the demo clinician (default 30)")
    p.add_argument("--days", type=int, default=60, help="days of history per patient (default 60)")
    p.add_argument("--seed", type=int, default=7, help="random seed: the same seed and day give the same clinic")
    p.add_argument("--today", metavar="YYYY-MM-DD", help="the last day of the history (default: today)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("audit", parents=[common], help="the audit trail, newest first (JSON lines)")
    p.add_argument("--patient", metavar="PATIENT_ID")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(func=cmd_audit)
    return parser


def _clinic(args: argparse.Namespace) -> Clinic:
    try:
        engine = open_engine(args.db)
    except DatabaseURLError as e:
        raise CommandError(f"--db: {e}") from None
    try:
        migrate(engine)
    except Exception as e:  # a server that cannot be reached, a file that is not a database
        raise CommandError(f"cannot open the database {describe(engine)}: {_first_line(e)}") from None
    return Clinic(engine)


def _first_line(e: BaseException) -> str:
    text = str(getattr(e, "orig", None) or e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _read_password(username: str) -> str:
    if sys.stdin.isatty():
        first = getpass.getpass(f"password for {username}: ")
        if getpass.getpass("again: ") != first:
            raise CommandError("the two passwords differ")
        return first
    line = sys.stdin.readline()
    if not line:
        raise CommandError("no password on standard input")
    return line.rstrip("\r\n")


def cmd_clinician_add(args: argparse.Namespace) -> int:
    svc = _clinic(args)
    password = _read_password(args.username)
    try:
        svc.add_clinician(args.username, password)
    except PasswordError as e:
        raise CommandError(str(e)) from None
    print(f"clinician {args.username} added")
    return 0


def cmd_clinician_key(args: argparse.Namespace) -> int:
    svc = _clinic(args)
    try:
        pem = Path(args.pubfile).read_bytes()[:100_000]
    except OSError as e:
        raise CommandError(f"{args.pubfile}: cannot read ({e.strerror})") from None
    kid = svc.add_clinician_key(args.username, pem)
    print(kid)
    return 0


def cmd_patient_add(args: argparse.Namespace) -> int:
    _clinic(args).add_patient(args.patient_id, args.clinician)
    print(f"patient {args.patient_id} added (clinician {args.clinician})")
    return 0


def cmd_patient_list(args: argparse.Namespace) -> int:
    print(json.dumps(_clinic(args).patients(CLI), indent=2))
    return 0


def cmd_pair(args: argparse.Namespace) -> int:
    code, expires = _clinic(args).new_pairing_code(CLI, args.patient_id)
    local = expires.astimezone().strftime("%H:%M")
    print(code)
    print(f"type it on the device in clinic mode, or run `homeapp clinic pair --url URL --code {code}`; "
          f"valid once, until {local}", file=sys.stderr)
    return 0


def cmd_rx_publish(args: argparse.Namespace) -> int:
    try:
        raw = Path(args.file).read_bytes()
    except OSError as e:
        raise CommandError(f"{args.file}: cannot read ({e.strerror})") from None
    result = _clinic(args).publish_prescription(CLI, args.patient_id, raw)
    print(f"prescription {result['id']} published for {args.patient_id} (signed by {result['signed_by']}); "
          f"the device takes it at its next sync")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    sys.stdout.write(_clinic(args).export(CLI, args.patient_id, args.format))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import datetime as dt

    from sqlalchemy import func, select

    from .models import Patient
    from .web import demo
    if not 1 <= args.patients <= 5000:
        raise CommandError(f"--patients {args.patients}: give 1 to 5000")
    if not 7 <= args.days <= 730:
        raise CommandError(f"--days {args.days}: give 7 to 730")
    today = None
    if args.today:
        try:
            today = dt.date.fromisoformat(args.today)
        except ValueError:
            raise CommandError(f"--today {args.today!r}: give a date as YYYY-MM-DD") from None
    svc = _clinic(args)
    with svc.Session() as db:
        if db.scalar(select(func.count()).select_from(Patient)):
            raise CommandError("the database already has patients: the demo fills only an empty one "
                               "(give a new --db sqlite:///PATH)")
    made = demo.fill(svc, patients=args.patients, days=args.days, seed=args.seed, today=today,
                     progress=lambda pid: print(f"  {pid}", file=sys.stderr, flush=True) if sys.stderr.isatty()
                     else None)
    print(f"demo clinic: {args.patients} patients of {demo.DEMO_CLINICIAN!r}, "
          f"{len(made['patients']) - args.patients} of {demo.OTHER_CLINICIAN!r}; sign in as either with the "
          f"password {demo.DEMO_PASSWORD!r}")
    for pid, profile in list(made["patients"].items())[:len(demo.PROFILES)]:
        print(f"  {pid}: {profile}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    for entry in _clinic(args).audit_entries(patient_ref=args.patient, limit=args.limit):
        print(json.dumps(entry, ensure_ascii=False))
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app

    from .timeutil import ZoneError, clinic_zone
    try:
        clinic_zone()   # a misspelt zone is said now, not on the first page
    except ZoneError as e:
        raise CommandError(str(e)) from None
    tls = bool(args.tls_cert or args.tls_key)
    if bool(args.tls_cert) != bool(args.tls_key):
        raise CommandError("--tls-cert and --tls-key go together")
    if not tls and not _is_loopback(args.host):
        raise CommandError(f"refusing to listen on {args.host} without TLS: patients' data would cross the "
                           f"network in clear; give --tls-cert and --tls-key, or listen on 127.0.0.1 behind a "
                           f"TLS proxy")
    for f in (args.tls_cert, args.tls_key):
        if f and not os.access(f, os.R_OK):
            raise CommandError(f"{f}: cannot read it")
    if not 0 <= args.port <= 65535:
        raise CommandError(f"--port {args.port}: give 0 to 65535")
    if not 1 <= args.workers <= MAX_WORKERS:
        raise CommandError(f"--workers {args.workers}: give 1 to {MAX_WORKERS}")
    try:
        engine = open_engine(args.db)
    except DatabaseURLError as e:
        raise CommandError(f"--db: {e}") from None
    try:
        if args.workers == 1:
            app = create_app(engine)
        else:
            migrate(engine)     # once, here; the workers find the schema up to date
    except Exception as e:
        raise CommandError(f"cannot open the database {describe(engine)}: {_first_line(e)}") from None
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as e:
        raise CommandError(f"cannot listen on {args.host}:{args.port} ({e.strerror})") from None
    sock.listen(1024)
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if family == socket.AF_INET6 else args.host
    print(f"listening on {'https' if tls else 'http'}://{host}:{port}", flush=True)
    print(f"the clinician's pages: {'https' if tls else 'http'}://{host}:{port}/ (sign in with a clinician's "
          f"name and password)", file=sys.stderr, flush=True)
    from .models import Clinician
    from sqlalchemy import func, select
    with Clinic(engine).Session() as db:
        if not db.scalar(select(func.count()).select_from(Clinician)):
            print(f"first login: no clinician yet; add one with\n"
                  f"  {PROG} clinician add YOUR_NAME --db {describe(engine)}\n"
                  f"then a patient with `{PROG} patient add PATIENT_ID --clinician YOUR_NAME` and a pairing code "
                  f"with `{PROG} pair PATIENT_ID`", file=sys.stderr, flush=True)
    if importlib.util.find_spec("clinic.web") is not None:
        # the patient lists are kept computed from now on, not from the first sign-in; with
        # several workers, by this supervising process alone
        from .web.overview import ensure_warmer
        ensure_warmer(app.state.clinic if args.workers == 1 else Clinic(engine))
    options = dict(ssl_certfile=args.tls_cert, ssl_keyfile=args.tls_key, log_level="warning", access_log=False,
                   lifespan="off", timeout_graceful_shutdown=5)
    if args.workers > 1:
        return _serve_workers(engine, sock, args.workers, options)
    server = uvicorn.Server(uvicorn.Config(app, **options))
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again under
    # the handlers it found: make those a no-op, so a clean end exits 0.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    server.run(sockets=[sock])
    return 0


def _serve_workers(engine, sock: socket.socket, workers: int, options: dict) -> int:
    """`workers` processes of the service on the one listening socket, under uvicorn's
    supervisor: it restarts a worker that dies, and on SIGINT/SIGTERM stops them all
    (each finishing its requests) before it returns. Each worker builds its own
    application on the database of $HOMEAPP_CLINIC_DB, set here."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    os.environ["HOMEAPP_CLINIC_DB"] = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    config = uvicorn.Config("clinic.app:create_app", factory=True, workers=workers, **options)
    Multiprocess(config, sockets=[sock]).run()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CommandError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    except ClinicError as e:
        print(f"{PROG}: {e.message}", file=sys.stderr)
        for p in e.problems:
            print(f"  {p}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
