"""The clinic service's foundations on both databases: the migration builds exactly the
models' schema, clinicians' passwords are argon2id, the command line's accounts and
patients, the database URL, and `serve`'s refusals and clean end."""
from __future__ import annotations

import io
import signal
import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from clinic import cli
from clinic.db import DatabaseURLError, migrate, normalise_url, open_engine
from clinic.models import Base, Clinician
from clinic.service import Clinic, Conflict, Unauthorized


def run_cli(monkeypatch, capsys, *argv, stdin=""):
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_migration_builds_exactly_the_models_schema(db_url):
    engine = open_engine(db_url)
    migrate(engine)
    migrate(engine)  # a second run changes nothing
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_clinicians_passwords_are_argon2id_and_checked(db_url):
    engine = open_engine(db_url)
    migrate(engine)
    clinic = Clinic(engine)
    clinic.add_clinician("alice", "correct horse battery")
    with clinic.Session() as db:
        stored = db.scalar(select(Clinician.password_hash).where(Clinician.username == "alice"))
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert clinic.authenticate("alice", "correct horse battery").name == "alice"
    with pytest.raises(Unauthorized, match="wrong username or password"):
        clinic.authenticate("alice", "wrong horse battery")
    with pytest.raises(Unauthorized, match="wrong username or password"):
        clinic.authenticate("nobody", "correct horse battery")
    with pytest.raises(Conflict, match="already exists"):
        clinic.add_clinician("alice", "another password")


def test_command_line_accounts_and_patients(db_url, monkeypatch, capsys):
    code, out, err = run_cli(monkeypatch, capsys, "clinician", "add", "alice", "--db", db_url,
                             stdin="long enough password\n")
    assert (code, out) == (0, "clinician alice added\n"), err
    code, out, err = run_cli(monkeypatch, capsys, "clinician", "add", "bob", "--db", db_url, stdin="short\n")
    assert code == 2 and "at least 10 characters" in err
    code, out, err = run_cli(monkeypatch, capsys, "patient", "add", "P-0042", "--clinician", "alice", "--db", db_url)
    assert code == 0, err
    code, out, err = run_cli(monkeypatch, capsys, "patient", "add", "P-0042", "--clinician", "alice", "--db", db_url)
    assert code == 2 and "already exists" in err
    code, out, err = run_cli(monkeypatch, capsys, "patient", "add", "P-7", "--clinician", "nobody", "--db", db_url)
    assert code == 2 and "no clinician named 'nobody'" in err
    code, out, err = run_cli(monkeypatch, capsys, "pair", "P-0042", "--db", db_url)
    assert code == 0 and out.strip()[4] == "-" and out.strip().replace("-", "").isdigit()
    code, out, err = run_cli(monkeypatch, capsys, "pair", "P-9999", "--db", db_url)
    assert code == 2 and "no patient 'P-9999'" in err


def test_database_urls():
    assert normalise_url("postgresql://u@h/db").startswith("postgresql+psycopg://")
    for bad, why in (("mysql://u@h/db", "SQLite"), ("sqlite://", "give the SQLite file"),
                     ("not a url", "not a database URL")):
        with pytest.raises(DatabaseURLError, match=why):
            normalise_url(bad)


def test_a_database_that_cannot_be_reached_is_one_clear_line(monkeypatch, capsys):
    code, out, err = run_cli(monkeypatch, capsys, "export", "P-1", "--db", "postgresql://nobody@127.0.0.1:1/none")
    assert code == 2 and err.startswith("homeapp-clinic: cannot open the database") and "Traceback" not in err


def test_serve_refuses_a_network_address_without_tls(tmp_path, monkeypatch, capsys):
    code, out, err = run_cli(monkeypatch, capsys, "serve", "--host", "0.0.0.0", "--db", f"sqlite:///{tmp_path}/c.db")
    assert code == 2 and "without TLS" in err and out == ""
    code, out, err = run_cli(monkeypatch, capsys, "serve", "--host", "0.0.0.0", "--tls-cert", "x.pem",
                             "--db", f"sqlite:///{tmp_path}/c.db")
    assert code == 2 and "go together" in err


def test_serve_prints_where_it_listens_and_ends_cleanly_on_sigterm(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "clinic.cli", "serve", "--port", "0",
                             "--db", f"sqlite:///{tmp_path}/c.db"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith("listening on http://127.0.0.1:")
        port = int(first.rsplit(":", 1)[1])
        import httpx
        r = httpx.get(f"http://127.0.0.1:{port}/api/patients", timeout=10)
        assert r.status_code == 401 and "sign in first" in r.json()["error"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert "first login" in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
