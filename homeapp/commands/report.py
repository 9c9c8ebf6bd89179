"""`homeapp report BUNDLE --out report.html [--pdf FILE] [--device-key KEY] [--lang en|sv]`:
the clinician's one-page review of a log bundle (homeapp/report.py), in English or Swedish.

The bundle is verified first when the device's public key is given, and the result leads
the page. Without the key its hash chain is still checked: a bundle with a record changed,
removed or inserted is refused (no report, exit 2, each record named on stderr). Exit 0:
report written and the bundle verified (or no key given: the page and stderr say it is
unverified); 2: a bad argument or file, a broken chain, or the bundle failed verification
(with the key the report is still written, with the problems at the top).
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import UserError
from ..report_texts import DEFAULT, LANGUAGES


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("report", help="one-page review of a log bundle (HTML, optional PDF)",
                              description="Verify a log bundle and write the clinician's review page.")
    p.add_argument("bundle", metavar="BUNDLE", help="a log bundle (from `homeapp log bundle`)")
    p.add_argument("--out", required=True, metavar="FILE", help="the HTML page to write")
    p.add_argument("--pdf", metavar="FILE", help="also write a one-page PDF")
    p.add_argument("--device-key", metavar="KEY",
                   help="the device's public key (device_key.pub, from when the device was set up); "
                        "without it the bundle cannot be verified")
    p.add_argument("--lang", choices=LANGUAGES, default=DEFAULT,
                   help=f"the language of the page, its charts and the PDF (default: {DEFAULT})")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from schedules.signing import KeyFileError, load_public_key

    from ..bundle import BundleError
    from ..report import ChainBroken, build_report

    public_key = None
    if args.device_key:
        try:
            public_key = load_public_key(args.device_key)
        except KeyFileError as e:
            raise UserError(f"device key: {e}") from None
    try:
        result = build_report(args.bundle, out_html=args.out, device_public_key=public_key, out_pdf=args.pdf,
                              lang=args.lang)
    except ChainBroken as e:
        for p in e.problems:
            print(f"{args.bundle}: {p}", file=sys.stderr)
        n = len(e.problems)
        print(f"{args.bundle}: refused: the bundle was altered ({n} problem{'s' * (n != 1)}); no report written",
              file=sys.stderr)
        return 2
    except BundleError as e:
        raise UserError(str(e)) from None
    except OSError as e:
        raise UserError(f"cannot write the report: {e.strerror} ({e.filename})") from None
    written = args.out + (f" and {args.pdf}" if args.pdf else "")
    if result.verified is None:
        print(f"{written}: {result.sessions} sessions; bundle NOT verified (no --device-key given)", file=sys.stderr)
        return 0
    if not result.verified:
        for p in result.problems:
            print(f"{args.bundle}: {p}", file=sys.stderr)
        n = len(result.problems)
        print(f"{written}: {result.sessions} sessions; bundle FAILED verification "
              f"({n} problem{'s' * (n != 1)}, listed at the top of the report)")
        return 2
    print(f"{written}: {result.sessions} sessions; bundle verified")
    return 0
