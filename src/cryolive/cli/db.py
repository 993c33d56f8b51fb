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
    """Migrate cryolive's own tables; create ISPyB's only on a database without ISPyB."""
    engine = engine_of(ctx)
    try:
        created = upgrade(engine)
        state = current(engine)
    finally:
        engine.dispose()
    where = engine.url.render_as_string(hide_password=True)
    if state.ispyb_origin == "facility":
        console.print(f"the facility's ISPyB {state.ispyb_schema_version}: left as it is")
    else:
        console.print(f"created {len(created)} ISPyB table(s)")
    console.print(f"cryolive schema at revision {state.own_revision} ({where})")
    if not state.up_to_date:
        console.print("cryolive needs what this database lacks: see `cryolive db current`")
        raise typer.Exit(1)


def _listed(names: tuple[str, ...], limit: int = 8) -> str:
    more = len(names) - limit
    return (", ".join(names[:limit]) + (f" … (+{more})" if more > 0 else "")) or "none"


@app.command("current")
def current_command(ctx: typer.Context) -> None:
    """Say what the database holds and what cryolive needs that is missing (exit status 1 when
    something is missing)."""
    engine = engine_of(ctx)
    try:
        state = current(engine)
    finally:
        engine.dispose()
    table = Table(title=engine.url.render_as_string(hide_password=True), show_header=False)
    table.add_row("dialect", state.dialect)
    table.add_row(
        "ISPyB",
        {"none": "none yet", "cryolive": "built by cryolive", "facility": "the facility's own"}[
            state.ispyb_origin
        ],
    )
    table.add_row("ISPyB schema version", state.ispyb_schema_version)
    table.add_row("ISPyB last script", state.ispyb_last_script or "none")
    table.add_row("ISPyB models (ispyb package)", state.models_version)
    table.add_row("ISPyB tables present", str(state.ispyb_tables_present))
    table.add_row("needed tables missing", _listed(state.ispyb_tables_missing))
    table.add_row("needed columns missing", _listed(state.ispyb_columns_missing))
    table.add_row("unused columns missing", _listed(state.ispyb_columns_unused))
    table.add_row("cryolive revision", f"{state.own_revision or 'none'} (head {state.own_head})")
    table.add_row("up to date", "yes" if state.up_to_date else "no: see below")
    console.print(table)
    if not state.up_to_date:
        if state.ispyb_origin == "facility" and (
            state.ispyb_tables_missing or state.ispyb_columns_missing
        ):
            console.print("missing: ask the ISPyB administrator to run ISPyB's schema updates")
        else:
            console.print("missing: run `cryolive db upgrade`")
        raise typer.Exit(1)


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
