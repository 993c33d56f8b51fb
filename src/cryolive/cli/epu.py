"""``cryolive epu inspect DIR``: what cryolive reads from an EPU or SerialEM folder.

Staff use it to see why a folder is not picked up: the session, its atlas, the grid squares
and foil holes, the movies found (with the metadata read for each) and the files skipped, with
why. Nothing is written anywhere.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cryolive.cli import settings_of
from cryolive.io import AcquisitionMetadata, MetadataReadError
from cryolive.io.epu import read_epu_xml
from cryolive.io.epu_session import (
    foil_hole_label,
    grid_square_label,
    read_atlas,
    read_epu_session,
    read_square_targets,
    resolve_atlas,
)
from cryolive.io.movie_names import movie_name
from cryolive.io.movies import MOVIE_SUFFIXES
from cryolive.pipeline.watcher import RAW_FOLDER, metadata_file, movie_files, read_metadata

app = typer.Typer(no_args_is_help=True, help="Look into EPU and SerialEM folders.")
console = Console(width=160)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _session(folder: Path, atlas_roots: tuple[Path, ...], atlas: Path | None) -> None:
    session_file = folder / "EpuSession.dm"
    if not session_file.is_file():
        console.print(f"no EpuSession.dm in {folder}: not an EPU session folder (SerialEM?)")
        return
    try:
        session = read_epu_session(session_file)
    except MetadataReadError as exc:
        console.print(f"[red]EpuSession.dm unreadable[/red]: {exc}")
        return
    table = Table(title="EPU session", show_header=False)
    table.add_row("name", session.name or "-")
    table.add_row("started", str(session.started_at or "-"))
    table.add_row("grid squares listed", str(len(session.grid_squares)))
    table.add_row("AtlasId", session.atlas_id or "-")
    if atlas is None and session.atlas_id:
        atlas = resolve_atlas(session.atlas_id, visit_dir=folder.parent, atlas_roots=atlas_roots)
    table.add_row("atlas found", str(atlas) if atlas else "[yellow]no (set atlas_roots)[/yellow]")
    console.print(table)
    if atlas is None:
        return
    try:
        found = read_atlas(atlas)
    except MetadataReadError as exc:
        console.print(f"[red]atlas unreadable[/red]: {exc}")
        return
    console.print(
        f"atlas: image {found.image_base_name or '-'}, {len(found.squares)} grid squares on it, "
        f"{_fmt(found.pixel_size_a, 1)} Å/px, acquired {found.acquired_at or '-'}"
    )


def _squares(folder: Path, movies: list[Path]) -> None:
    table = Table(title="Grid squares")
    for name in ("square", "images", "hole images", "holes found (Metadata)", "movies"):
        table.add_column(name)
    per_square = Counter(grid_square_label(m.relative_to(folder)) for m in movies)
    labels: set[int] = {label for label in per_square if label is not None}
    targets: dict[int, str] = {}
    for path in sorted((folder / "Metadata").glob("GridSquare_*.dm")):
        try:
            read = read_square_targets(path)
        except MetadataReadError as exc:
            console.print(f"[red]unreadable[/red]: {exc}")
            continue
        targets[read.label] = str(len(read.holes))
        labels.add(read.label)
    square_dirs = {grid_square_label(p): p for p in folder.glob("Images-Disc*/GridSquare_*")}
    labels |= {label for label in square_dirs if label is not None}
    for label in sorted(labels):
        where = square_dirs.get(label)
        images = len(list(where.glob("GridSquare_*.xml"))) if where else 0
        holes = len({foil_hole_label(p) for p in where.glob("FoilHoles/*.xml")}) if where else 0
        table.add_row(
            str(label), str(images), str(holes), targets.get(label, "-"), str(per_square[label])
        )
    console.print(table if labels else "no grid squares")


def _not_a_movie(name: str) -> str:
    if name.startswith("FoilHole_") and "_Data_" in name:
        return "EPU's integrated image beside the movie (no _Fractions/_EER): not a movie"
    if "gain" in name.lower() or name.startswith(("SuperRef_", "CountRef_")):
        return "a gain reference"
    return "a grid square, foil hole, atlas or tile image: not a movie"


def _skipped(folder: Path, movies: set[Path]) -> list[tuple[Path, str]]:
    skipped = []
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in MOVIE_SUFFIXES or path in movies:
            continue
        if movie_name(path) is None:
            why = _not_a_movie(path.name)
        elif path.parent.name not in ("Data", "Frames"):
            why = "not in a Data/ (EPU) or Frames/ (SerialEM) folder"
        else:
            why = "not taken for a movie"
        skipped.append((path, why))
    return skipped


def _orphans(folder: Path, movies: set[Path]) -> list[Path]:
    """EPU acquisition ``.xml`` files whose movie is not there (yet)."""
    return [
        xml
        for xml in sorted(folder.glob("Images-Disc*/GridSquare_*/Data/FoilHole_*_Data_*.xml"))
        if not any(m.parent == xml.parent and m.name.startswith(xml.stem) for m in movies)
    ]


def _row(relative: Path, meta: AcquisitionMetadata, source: str) -> list[str]:
    return [
        str(relative),
        str(foil_hole_label(relative) or "-"),
        source,
        _fmt(meta.pixel_size_a, 3),
        _fmt(meta.voltage_kv, 0),
        _fmt(meta.dose_e_per_a2),
        _fmt(meta.nominal_defocus_a, 0),
        str(meta.n_fractions or "-"),
        meta.acquired_at.isoformat() if meta.acquired_at else "-",
    ]


def _movies(folder: Path, movies: list[Path], orphans: list[Path], limit: int) -> None:
    shown = min(limit, len(movies) + len(orphans))
    table = Table(
        title=f"Acquisitions ({len(movies)} movies, {len(orphans)} without; {shown} shown)"
    )
    table.add_column("file", overflow="fold")
    for name in ("hole", "metadata", "Å/px", "kV", "e⁻/Å²", "defocus Å", "frames", "at"):
        table.add_column(name)
    for path in [*movies, *orphans][:limit]:
        relative = path.relative_to(folder)
        source = metadata_file(path) if path in movies else path
        try:
            meta = read_metadata(path) if path in movies else read_epu_xml(path)
        except MetadataReadError as exc:
            why = "missing" if not source.exists() else exc.reason
            table.add_row(str(relative), str(foil_hole_label(relative) or "-"), f"[yellow]{why}")
            continue
        name = source.name if path in movies else "(its movie has not appeared)"
        table.add_row(*_row(relative, meta, name))
    console.print(table)


@app.command("inspect")
def inspect(
    ctx: typer.Context,
    folder: Path = typer.Argument(..., help="A raw folder (EPU session or SerialEM), or a visit."),
    atlas: Path | None = typer.Option(None, help="The atlas's Atlas.dm, if not found by itself."),
    limit: int = typer.Option(50, min=1, help="Movies listed at most."),
) -> None:
    """Print what cryolive reads from an EPU or SerialEM folder, and what it skips and why."""
    if not folder.is_dir():
        console.print(f"[red]{folder}: not a folder[/red]")
        raise typer.Exit(2)
    raws = sorted(p for p in folder.iterdir() if p.is_dir() and RAW_FOLDER.match(p.name))
    if raws and not (folder / "EpuSession.dm").exists():
        console.print(f"a visit folder: inspecting {', '.join(p.name for p in raws)}")
    roots = tuple(settings_of(ctx).atlas_roots)
    readable = False
    for raw in raws if raws and not (folder / "EpuSession.dm").exists() else [folder]:
        console.rule(str(raw))
        movies = movie_files(raw)
        skipped = _skipped(raw, set(movies))
        orphans = _orphans(raw, set(movies))
        _session(raw, roots, atlas)
        _squares(raw, movies)
        _movies(raw, movies, orphans, limit)
        if skipped:
            table = Table(title=f"Skipped ({len(skipped)})")
            table.add_column("file", overflow="fold")
            table.add_column("why")
            for path, why in skipped[:limit]:
                table.add_row(str(path.relative_to(raw)), why)
            console.print(table)
        readable |= bool(movies or orphans or skipped) or (raw / "EpuSession.dm").is_file()
    if not readable:
        console.print(
            f"[red]{folder}: nothing cryolive reads here[/red] (no EpuSession.dm, no movies in "
            "Images-Disc*/GridSquare_*/Data/ or Frames/)"
        )
        raise typer.Exit(1)
