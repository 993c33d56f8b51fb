"""``cryolive db``: build, inspect and secure the database."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from cryolive.cli._db import engine_of
from cryolive.db import Account, current, grant_accounts, upgrade

app = typer.Typer(no_args_is_help=True, help="Build, inspect and secure the database.")
console = Console()


@app.command("upgrade")
def upgrade_command(ctx: typer.Context) -> None:
    """Create missing ISPyB tables and migrate cryolive's own (existing tables are kept)."""
    engine = engine_of(ctx)
    try:
        created = upgrade(engine)
        state = current(engine)
    finally:
        engine.dispose()
    console.print(
        f"created {len(created)} ISPyB table(s); cryolive schema at revision "
        f"{state.own_revision} ({engine.url.render_as_string(hide_password=True)})"
    )


@app.command("current")
def current_command(ctx: typer.Context) -> None:
    """Say what the database holds: ISPyB tables present or missing, cryolive's revision."""
    engine = engine_of(ctx)
    try:
        state = current(engine)
    finally:
        engine.dispose()
    table = Table(title=engine.url.render_as_string(hide_password=True), show_header=False)
    table.add_row("dialect", state.dialect)
    table.add_row("ISPyB schema (models)", state.ispyb_schema_version)
    table.add_row("ISPyB tables present", str(state.ispyb_tables_present))
    missing = ", ".join(state.ispyb_tables_missing[:8])
    more = len(state.ispyb_tables_missing) - 8
    table.add_row(
        "ISPyB tables missing", (missing + (f" … (+{more})" if more > 0 else "")) or "none"
    )
    table.add_row("cryolive revision", f"{state.own_revision or 'none'} (head {state.own_head})")
    table.add_row("up to date", "yes" if state.up_to_date else "no: run `cryolive db upgrade`")
    console.print(table)


@app.command("grant")
def grant_command(
    ctx: typer.Context,
    writer: str = typer.Option("cryolive_writer", help="Name of the writer account."),
    writer_password: str = typer.Option(
        ..., envvar="CRYOLIVE_WRITER_PASSWORD", prompt=True, hide_input=True
    ),
    reader: str = typer.Option("cryolive_reader", help="Name of the read-only account."),
    reader_password: str = typer.Option(
        ..., envvar="CRYOLIVE_READER_PASSWORD", prompt=True, hide_input=True
    ),
    host: str = typer.Option("%", help="Hosts the accounts may connect from."),
) -> None:
    """Create the writer and read-only accounts on MariaDB (run as the database's admin)."""
    engine = engine_of(ctx)
    try:
        grant_accounts(
            engine,
            writer=Account(writer, writer_password, host),
            reader=Account(reader, reader_password, host),
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    finally:
        engine.dispose()
    console.print(f"granted: {writer} (pipeline writes), {reader} (read-only)")
