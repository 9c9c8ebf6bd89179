"""Fixtures of the clinic's tests: one throwaway PostgreSQL server for the whole run, a
fresh database per test on SQLite and on PostgreSQL (`db_url` is parametrized over both),
a throwaway TLS certificate authority (trustme)."""
from __future__ import annotations

import pytest

from .pg import PostgresServer, PostgresUnavailable


@pytest.fixture(scope="session")
def postgres():
    try:
        server = PostgresServer()
    except PostgresUnavailable as e:
        pytest.skip(str(e))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A new empty clinic database: an SQLite file, or a database on the test server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'clinic.db'}"
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture(scope="session")
def tls_ca():
    import trustme
    return trustme.CA()


@pytest.fixture(scope="session")
def tls_files(tls_ca, tmp_path_factory):
    """(cert chain PEM, key PEM, CA PEM) for a server on localhost/127.0.0.1."""
    folder = tmp_path_factory.mktemp("tls")
    cert = tls_ca.issue_cert("localhost", "127.0.0.1")
    chain, key, ca = folder / "server.pem", folder / "server.key", folder / "ca.pem"
    cert.private_key_pem.write_to_path(str(key))
    with open(chain, "wb") as f:
        for blob in cert.cert_chain_pems:
            f.write(blob.bytes())
    tls_ca.cert_pem.write_to_path(str(ca))
    return chain, key, ca
