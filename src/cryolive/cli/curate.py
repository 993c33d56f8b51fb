"""``cryolive curate``: a data collection's curation thresholds, manual decisions and the
accepted set, from the command line (as the web's Curation panel)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from cryolive.cli import settings_of
from cryolive.cli._db import transaction
from cryolive.config import CurationThresholds
from cryolive.db.repo import curation
from cryolive.export.curation import write_accepted_list, write_accepted_star

console = Console()


def _movie_id(measures: curation.Measures, movie: str) -> int:
    """A movie of the collection by its full path or its id (Movie.movieId)."""
    for i, path in enumerate(measures.movie_path):
        if movie in (path, str(measures.movie_id[i])):
            return measures.movie_id[i]
    raise LookupError(f"--accept/--reject: no movie {movie!r} in this data collection")


def _thresholds(current: CurationThresholds, pairs: list[str]) -> CurationThresholds:
    values: dict[str, Any] = current.model_dump()
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name not in CurationThresholds.model_fields:
            known = ", ".join(CurationThresholds.model_fields)
            raise typer.BadParameter(
                f"{pair!r}: expected name=value, name one of {known}", param_hint="--set"
            )
        values[name] = None if value.strip().lower() in ("", "none") else value
    try:
        return CurationThresholds.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'thresholds'}: {e['msg']}" for e in exc.errors()
        )
        raise typer.BadParameter(problems, param_hint="--set") from exc


def curate(
    ctx: typer.Context,
    collection: int = typer.Argument(..., min=1, help="DataCollection id."),
    set_: list[str] = typer.Option(
        [], "--set", help="A threshold, name=value (e.g. total_motion_max_a=20; 'none' clears)."
    ),
    accept: list[str] = typer.Option(
        [], "--accept", help="Accept a movie by hand (its id or full path)."
    ),
    reject: list[str] = typer.Option(
        [], "--reject", help="Reject a movie by hand (its id or full path)."
    ),
    clear: list[str] = typer.Option([], "--clear", help="Let the thresholds decide a movie again."),
    export_star: Path | None = typer.Option(
        None, "--export-star", help="Write the accepted micrographs as a RELION STAR file."
    ),
    export_list: Path | None = typer.Option(
        None, "--export-list", help="Write the accepted movies' paths, one per line."
    ),
) -> None:
    """Show or change a data collection's curation; export its accepted exposures."""
    defaults = settings_of(ctx).curation
    user = "cli"
    with transaction(ctx) as session:
        cur = curation.evaluate(session, data_collection_id=collection, defaults=defaults)
        if not cur.measures.movie_id:
            raise LookupError(f"COLLECTION: data collection {collection} has no movies")
        if set_:
            limits = _thresholds(cur.thresholds, set_)
            cur = curation.set_thresholds(
                session,
                data_collection_id=collection,
                limits=limits,
                changed_by=user,
                defaults=defaults,
            )
        for movies, manual in ((accept, "accept"), (reject, "reject"), (clear, None)):
            for movie in movies:
                cur = curation.set_manual(
                    session,
                    movie_id=_movie_id(cur.measures, movie),
                    manual=manual,  # type: ignore[arg-type]
                    by=user,
                    defaults=defaults,
                )
        if export_star is not None:
            n = write_accepted_star(
                session, data_collection_id=collection, curation=cur, path=export_star
            )
            console.print(f"{n} accepted micrographs: {export_star}")
        if export_list is not None:
            n = write_accepted_list(curation=cur, path=export_list)
            console.print(f"{n} accepted movies: {export_list}")
    counts = cur.counts()
    table = Table("threshold", "value")
    for name, value in cur.thresholds.model_dump().items():
        if value is not None:
            table.add_row(name, str(value))
    console.print(table if table.row_count else "No thresholds set: every movie counts.")
    origin = "this collection's" if cur.own else "the facility's defaults"
    console.print(
        f"{counts['accepted']} of {counts['movies']} movies accepted, {counts['rejected']} "
        f"rejected ({origin} thresholds)"
    )
    for reason, n in counts["by_reason"].items():
        if n:
            console.print(f"  {reason}: {n}")
