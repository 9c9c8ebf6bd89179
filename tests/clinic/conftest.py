"""Fixtures of the clinic's tests: a fresh database per test on SQLite and on PostgreSQL
(`db_url` is parametrized over both; the one throwaway PostgreSQL server of the run is
tests/conftest.py's `postgres`), a throwaway TLS certificate authority (trustme)."""
from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A new empty clinic database: an SQLite file, or a database on the test server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'clinic.db'}"
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory):
    """(cert chain PEM, key PEM, CA PEM) for a server on localhost/127.0.0.1."""
    from .kit import write_tls_files
    return write_tls_files(tmp_path_factory.mktemp("tls"))
