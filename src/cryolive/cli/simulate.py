"""``cryolive simulate``: write a simulated visit with its ground truth."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def simulate(
    out_dir: Path = typer.Argument(..., help="Visit folder to write (raw, raw2 … inside)."),
    visit: str = typer.Option("bi23047-5", help="Visit name."),
    grids: int = typer.Option(1, help="Grids, one raw folder each."),
    movies: int = typer.Option(10, help="Movies per grid."),
    rate: float | None = typer.Option(None, help="Movies per hour; default: as fast as possible."),
    format: str | None = typer.Option(None, help="tiff, mrc or eer; default: the detector's."),
    detector: str = typer.Option(
        "tiny",
        help="tiny (256²), 1k, k3 (5760x4092), falcon4i (4096²), falcon-tiny (256², Falcon names).",
    ),
    layout: str = typer.Option("epu", help="epu or serialem."),
    frames: int = typer.Option(40, help="Fractions per movie."),
    dose: float = typer.Option(40.0, help="Total dose per movie, e/Å²."),
    seed: int = typer.Option(0, help="Random seed of the visit."),
    noiseless: bool = typer.Option(False, help="Expected counts as float32, no Poisson noise."),
    fault: list[str] = typer.Option(
        [],
        help="KIND=RATE, e.g. truncated=0.1, late_metadata=0.2, optics_change=1 (repeatable); "
        "kinds as in FaultRates (also metadata_delay_s=120, stall_s=30).",
    ),
) -> None:
    """Write a simulated data collection (EPU or SerialEM layout) and truth.json."""
    from cryolive.simulate import FaultRates, MovieConfig, VisitConfig, simulate_visit

    try:
        rates = {}
        for item in fault:
            kind, sep, value = item.partition("=")
            if not sep:
                raise typer.BadParameter(f"expected KIND=RATE, got {item!r}", param_hint="--fault")
            rates[kind.strip()] = float(value)
        config = VisitConfig(
            visit=visit,
            n_grids=grids,
            movies_per_grid=movies,
            rate_per_hour=rate,
            format=format,  # type: ignore[arg-type]
            detector=detector,
            layout=layout,  # type: ignore[arg-type]
            movie=MovieConfig(n_frames=frames, dose_e_per_a2=dose, noiseless=noiseless),
            faults=FaultRates(**rates),
            seed=seed,
        )
    except (ValidationError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    total = config.n_grids * config.movies_per_grid
    with Progress(
        TextColumn("[bold]simulate"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    ) as bar:
        task = bar.add_task("movies", total=total)
        truth = simulate_visit(
            config, out_dir, progress=lambda done, _total: bar.update(task, completed=done)
        )
    typer.echo(
        f"{total} movies in {out_dir}; {len(truth.faults)} faults; truth: {out_dir / 'truth.json'}"
    )


def simulate_particles(
    out: Path = typer.Option(..., "--out", help="Folder to write particles.star, .mrcs, truth."),
    n: int = typer.Option(2000, "--n", help="Boxes, junk included."),
    box: int = typer.Option(64, help="Box side, pixels (even)."),
    pixel_size: float = typer.Option(2.0, help="Pixel size, Å."),
    views: int = typer.Option(10, help="Distinct views of the specimen."),
    junk: float = typer.Option(0.1, help="Fraction of junk, split evenly: empty, ice, carbon."),
    dose: float = typer.Option(40.0, help="Dose, e/Å²."),
    specimen_seed: int = typer.Option(1, help="Seed of the procedural specimen."),
    seed: int = typer.Option(0, help="Seed of everything drawn for the particles."),
) -> None:
    """Write simulated particle boxes of known views (and junk) for 2D classification."""
    from cryolive.simulate import (
        procedural_specimen,
        write_simulated_particles,
    )
    from cryolive.simulate import (
        simulate_particles as simulate,
    )

    if not 0 <= junk <= 1:
        raise typer.BadParameter(f"must lie in [0, 1], got {junk}", param_hint="--junk")
    try:
        sim = simulate(
            procedural_specimen(seed=specimen_seed),
            n_particles=n,
            n_views=views,
            box_px=box,
            pixel_size_a=pixel_size,
            dose_e_per_a2=dose,
            junk_fraction={kind: junk / 3 for kind in ("empty", "ice", "carbon")},
            seed=seed,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    star = write_simulated_particles(sim, out)
    n_junk = int((sim.truth.view < 0).sum())
    typer.echo(f"{n} boxes ({n_junk} junk) of {views} views in {star}; truth: {out / 'truth.json'}")
