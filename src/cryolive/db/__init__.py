"""The database: ISPyB tables (from the ``ispyb`` package's models) and cryolive's own tables.

Public surface: :func:`make_engine`, :func:`session_factory`, :func:`upgrade`, :func:`current`.
Repository functions live in :mod:`cryolive.db.repo`.
"""

from cryolive.db._engine import make_engine, session_factory
from cryolive.db._schema import SchemaState, current, upgrade
from cryolive.db.grants import Account, grant_accounts

__all__ = [
    "Account",
    "SchemaState",
    "current",
    "grant_accounts",
    "make_engine",
    "session_factory",
    "upgrade",
]
