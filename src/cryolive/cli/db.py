"""``cryolive db``: build, inspect and secure the database."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Build, inspect and secure the database.")
