"""``cryolive class2d``: 2D classification of particles.star files by hand, with cryolive's
engine or RELION's, writing what the 2D pipeline service writes."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from cryolive.engines.class2d import Class2DResult, Class2DSettings

JOINED_STAR = "particles_joined.star"


def _summary(result: Class2DResult) -> Table:
    table = Table(title=f"2D classes ({result.engine}, {len(result.assignment)} particles)")
    for name in ("class", "particles", "resolution Å", "score", "selected"):
        table.add_column(name, justify="right")
    for c in sorted(range(result.n_classes), key=lambda c: -int(result.particles_per_class[c])):
        res = float(result.resolution_a[c])
        table.add_row(
            str(c + 1),
            str(int(result.particles_per_class[c])),
            f"{res:.1f}" if res < float("inf") else "-",
            f"{float(result.score[c]):.2f}",
            "yes" if result.selected[c] else "no",
        )
    return table


def class2d_command(
    stars: list[Path] = typer.Argument(..., help="RELION 3.1 particles.star files."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    classes: int = typer.Option(50, "--classes", help="Number of classes K."),
    diameter: float = typer.Option(150.0, "--diameter", help="Mask diameter, Å."),
    iterations: int = typer.Option(20, "--iterations", help="Iterations."),
    angle_step: float = typer.Option(6.0, "--angle-step", help="Final in-plane step, degrees."),
    max_shift: float = typer.Option(10.0, "--max-shift", help="Largest shift searched, Å."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    engine: str = typer.Option("cryolive", "--engine", help="cryolive, or relion (relion_refine)."),
    threads: int = typer.Option(2, "--threads", help="relion_refine --j (relion engine only)."),
) -> None:
    """Classify particles in 2D: run_classes.mrcs, run_model.star, run_data.star (RELION 3.1,
    with class, psi and origin per particle), run_selected_data.star and PNGs of the classes."""
    from cryolive.adapters.relion_class2d import RelionClass2DError, run_relion_class2d
    from cryolive.engines.class2d import classify_2d
    from cryolive.io.outputs.class2d import write_class2d_outputs
    from cryolive.io.particle_files import (
        ParticleStarError,
        read_particle_stars,
        read_particle_tables,
        write_particle_tables,
    )

    if engine not in ("cryolive", "relion"):
        raise typer.BadParameter(f"cryolive or relion, got {engine!r}", param_hint="--engine")
    if threads < 1:
        raise typer.BadParameter(f"must be at least 1, got {threads}", param_hint="--threads")
    try:
        settings = Class2DSettings(
            n_classes=classes, particle_diameter_a=diameter, iterations=iterations,
            angle_step_deg=angle_step, max_shift_a=max_shift, seed=seed,
            full_iterations=min(2, iterations),
        )  # fmt: skip
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    console = Console(stderr=True)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise typer.BadParameter(f"cannot create {out}: {exc}", param_hint="--out") from exc
    try:
        tables = read_particle_tables(stars, relative_to=out)
        particles = read_particle_stars(stars) if engine == "cryolive" else None
    except ParticleStarError as exc:
        raise typer.BadParameter(str(exc), param_hint="STARS") from exc
    n = len(tables.particles)
    if n < 2 * classes:
        raise typer.BadParameter(
            f"{n} particles for {classes} classes: need at least 2 per class",
            param_hint="--classes",
        )
    console.print(f"{n} particles from {len(stars)} file(s); engine {engine}")
    start = time.perf_counter()
    with Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console,
    ) as bar:  # fmt: skip
        task = bar.add_task("iterations", total=iterations)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            if particles is not None:
                result = classify_2d(particles, settings, progress=progress)
            else:
                joined = write_particle_tables(out / JOINED_STAR, tables)
                result = run_relion_class2d(
                    joined, out / "relion", settings=settings, threads=threads, progress=progress
                )
        except (ValueError, RelionClass2DError) as exc:
            console.print(f"[red]2D classification failed[/red]: {exc}")
            raise typer.Exit(1) from exc
    try:
        files = write_class2d_outputs(
            result, out, particle_rows=tables.particles, optics=tables.optics
        )
    except OSError as exc:
        console.print(f"[red]cannot write the outputs[/red]: {exc}")
        raise typer.Exit(1) from exc
    Console().print(_summary(result))
    console.print(
        f"{int(result.selected.sum())} of {result.n_classes} classes selected; "
        f"{files.data} ({time.perf_counter() - start:.1f} s)"
    )
