"""A clinic with one patient ready to progress, for the program editor's browser tests and
its screenshots: the real clinic service over TLS, a clinician key made by the real
`homeapp rx keygen` and registered with `homeapp-clinic clinician key`, a device paired with
`homeapp clinic pair` that trusts that key (`homeapp rx trust add`), a first program
published and installed by `homeapp sync`, and a week of sessions run on the simulated
board (`homeapp session run --start-at`) in which the patient reached the cap with little
pain, uploaded by `homeapp sync`."""
from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import subprocess
import sys
from pathlib import Path

from clinic import cli as clinic_cli
from clinic.service import CLI
from homeapp.cli import main as homeapp_main
from schedules.signing import key_id, load_public_key
from tests.clinic.kit import PASSWORD, ROOT, ClinicServer, DeviceDir, clinic_for, env
from tests.review_demo import _session

PATIENT = "P-0042"
CLINICIAN = "alice"
CAP_MA = 40
#: Days before today with a session (five in the program's first eight days: adherence >= 80%).
SESSION_DAYS = (7, 6, 4, 2, 1)
#: An init script for a page whose WebCrypto has no Ed25519 (as older browsers).
NO_ED25519 = """
  const subtle = crypto.subtle;
  for (const name of ['generateKey', 'importKey', 'sign']) {
    const real = subtle[name].bind(subtle);
    subtle[name] = (alg, ...rest) => {
      const n = (alg && alg.name) || (rest[1] && rest[1].name) || alg;
      if (String(n).toLowerCase() === 'ed25519') return Promise.reject(new DOMException('no', 'NotSupportedError'));
      return real(alg, ...rest);
    };
  }"""


def first_program(today: dt.date) -> dict:
    """A one-minute program issued a week ago (so a week of sessions runs in seconds)."""
    issued = today - dt.timedelta(days=7)
    return {"format": "homeapp.prescription/1", "id": f"rx-knee-{issued:%Y%m%d}", "patient_id": PATIENT,
            "clinician_id": CLINICIAN, "issued": issued.isoformat(),
            "expires": (issued + dt.timedelta(days=90)).isoformat(),
            "sessions_per_week": 5, "max_sessions_per_day": 1, "min_hours_between": 0, "supervision": "none",
            "channels": [{"label": "left quadriceps", "max_ma": CAP_MA}],
            "blocks": [{"label": "strength", "minutes": 1, "hz": 35, "pulse_us": 300, "on_s": 5, "off_s": 5,
                        "ramp_up_s": 1, "ramp_down_s": 1, "pattern": "synchronous"}]}


def quiet(fn, argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = fn(argv)
    return code, out.getvalue(), err.getvalue()


def homeapp(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """The real `homeapp` command line, as its own process."""
    return subprocess.run([sys.executable, "-m", "homeapp.cli", *argv], capture_output=True, text=True, env=env(),
                          cwd=ROOT, timeout=timeout)


class ProgramWorld:
    """The clinic, the clinician's key, the device (see the module's docstring)."""

    def __init__(self, root: Path, tls_files: tuple[Path, Path, Path]) -> None:
        self.root = root
        self.tls = tls_files
        self.db_url = f"sqlite:///{root / 'clinic.db'}"
        self.keys = root / "keys"
        self.server: ClinicServer | None = None
        self.device: DeviceDir | None = None
        self.today = dt.date.today()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def key_file(self) -> Path:
        return self.keys / "clinician.key"

    @property
    def pub_file(self) -> Path:
        return self.keys / "clinician.pub"

    @property
    def key_id(self) -> str:
        return key_id(load_public_key(self.pub_file))

    def start(self, *, sessions: bool = True) -> "ProgramWorld":
        clinic = clinic_for(self.db_url)
        clinic.add_clinician(CLINICIAN, PASSWORD)
        clinic.add_patient(PATIENT, CLINICIAN)
        self.clinic = clinic
        code, out, err = quiet(homeapp_main, ["rx", "keygen", "--out", str(self.keys)])
        assert code == 0, err
        code, out, err = quiet(clinic_cli.main, ["clinician", "key", CLINICIAN, str(self.pub_file), "--db", self.db_url])
        assert code == 0, err
        self.server = ClinicServer(self.db_url, self.tls).start()
        self.device = DeviceDir(self.root / "device", clinic_url=None)
        r = self.device.run("rx", "trust", "add", str(self.pub_file), "--label", CLINICIAN)
        assert r.returncode == 0, r.stderr
        pairing = clinic.new_pairing_code(CLI, PATIENT)[0]
        r = self.device.run("clinic", "pair", "--url", self.url, "--code", pairing, "--ca-cert", str(self.tls[2]))
        assert r.returncode == 0, r.stderr
        # the first program: signed with `homeapp rx sign`, published with `homeapp-clinic rx publish`
        rx_path = self.root / "first.json"
        rx_path.write_text(json.dumps(first_program(self.today)))
        assert quiet(homeapp_main, ["rx", "sign", str(rx_path), "--key", str(self.key_file)])[0] == 0
        code, out, err = quiet(clinic_cli.main, ["rx", "publish", PATIENT, str(rx_path), "--db", self.db_url])
        assert code == 0, err
        assert self.sync()["prescription"] == first_program(self.today)["id"]
        self.first_rx = rx_path
        if sessions:
            self.run_sessions()
        return self

    def run_sessions(self, *, days=SESSION_DAYS, ma: float = CAP_MA, pain: int = 2) -> None:
        """Sessions of the first program on the device (its own log), then one sync."""
        work = self.root / "sessions"
        work.mkdir(exist_ok=True)
        for back in days:
            start = dt.datetime.combine(self.today - dt.timedelta(days=back), dt.time(9), tzinfo=dt.timezone.utc)
            _session(work, self.first_rx, self.device.db, start,
                     [{"t": 1, "do": "intensity", "channel": 0, "ma": ma},
                      {"t": 0, "do": "report", "pain": pain, "effort": 4}])
        self.sync()

    def sync(self) -> dict:
        r = self.device.run("sync")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout.strip().splitlines()[-1])

    def published_source(self, rx_id: str) -> dict:
        """The signed file the clinic stored for `rx_id` (what the device fetches)."""
        from sqlalchemy import select

        from clinic.models import PublishedPrescription
        with self.clinic.Session() as db:
            row = db.scalar(select(PublishedPrescription).where(PublishedPrescription.rx_id == rx_id)
                            .order_by(PublishedPrescription.id.desc()).limit(1))
        assert row is not None, f"{rx_id} was not published"
        return json.loads(row.source_json)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
