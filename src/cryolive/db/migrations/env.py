"""Alembic environment for cryolive's own tables (never ISPyB's).

Run through :func:`cryolive.db.upgrade`, which hands over an open connection.
"""

from __future__ import annotations

from alembic import context

from cryolive.db.models import OwnBase

VERSION_TABLE = "cryolive_alembic_version"


def _include_object(obj: object, name: str | None, type_: str, *_: object) -> bool:
    # Autogenerate looks only at cryolive's tables: a facility's ISPyB is not ours to diff.
    return type_ != "table" or bool(name and name.startswith("cryolive_"))


connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=OwnBase.metadata,
    version_table=VERSION_TABLE,
    include_object=_include_object,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
