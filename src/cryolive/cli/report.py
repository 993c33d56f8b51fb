"""``cryolive report``: a visit's session report as a PDF."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from cryolive.cli import settings_of
from cryolive.cli._db import transaction

console = Console()


def report(
    ctx: typer.Context,
    visit: str = typer.Argument(..., help="The visit, as ISPyB names it (bi23047-5)."),
    out: Path = typer.Option(..., "--out", help="The PDF to write."),
) -> None:
    """Write a visit's session report (PDF): optics and counts, measures over time and their
    distributions, the atlas, the best 2D classes, the processing jobs and failures."""
    from cryolive.report import write_report

    if out.suffix.lower() != ".pdf":
        raise typer.BadParameter(f"--out: {out} must end in .pdf")
    if not out.parent.is_dir():
        raise typer.BadParameter(f"--out: no such folder {out.parent}")
    settings = settings_of(ctx)
    with transaction(ctx) as session:
        pages = write_report(
            session,
            visit=visit,
            out=out,
            bounds=settings.alerts.bounds,
            atlas_roots=settings.atlas_roots,
            curation_defaults=settings.curation,
        )
    console.print(f"{out}: {pages} pages")
