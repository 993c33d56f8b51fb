"""``cryolive admin``: proposals, visits, people and their rights."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Proposals, visits, people and their rights.")
