"""Alembic environment: migrations always run on a connection handed over by `grokgate.db.migrate`."""

from alembic import context

from grokgate.db.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `grokgate migrate`, which provides the connection")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
