"""Alembic's environment for the clinic: the connection comes from clinic.db.migrate
(or, for `alembic` on the command line, from $HOMEAPP_CLINIC_DB)."""
from __future__ import annotations

from alembic import context

from clinic.models import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        from clinic.db import open_engine
        with open_engine().begin() as conn:
            context.configure(connection=conn, target_metadata=target_metadata,
                              render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
        return
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run()
