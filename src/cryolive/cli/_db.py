"""Database access for commands: one engine per invocation, one transaction per command."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
import typer
from sqlalchemy.orm import Session

from cryolive.cli import settings_of
from cryolive.db import make_engine, session_factory


def engine_of(ctx: typer.Context, *, writer: bool = True) -> sa.Engine:
    return make_engine(settings_of(ctx).database, writer=writer)


@contextmanager
def transaction(ctx: typer.Context) -> Iterator[Session]:
    """A session whose work is committed when the block ends, rolled back on error.

    A ValueError or LookupError (bad input) becomes a clear command-line error.
    """
    engine = engine_of(ctx)
    try:
        with session_factory(engine).begin() as session:
            yield session
    except (ValueError, LookupError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    finally:
        engine.dispose()
