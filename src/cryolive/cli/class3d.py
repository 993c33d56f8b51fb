"""``cryolive initial-model`` and ``cryolive class3d``: de novo initial models and 3D
classification of a particles.star by hand, writing what the 3D service writes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from cryolive.cli._relion3d import ENGINE_HELP, THREADS_HELP, check_engine, relion_errors

if TYPE_CHECKING:
    from cryolive.adapters.relion_refine3d import RelionClasses
    from cryolive.engines.recon3d import ParticleStack3D
    from cryolive.io.particle_files import ParticleStarTables

_STAR_HELP = "RELION 3.1 particles.star (white particles, with CTF)."


@contextmanager
def _progress(console: Console, what: str) -> Iterator[Callable[[int, int], None]]:
    with Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console,
    ) as bar:  # fmt: skip
        task = bar.add_task(what, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _make(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise typer.BadParameter(f"cannot create {out}: {exc}", param_hint="--out") from exc


def _relion_summary(result: RelionClasses, title: str, start: float) -> None:
    table = Table(title=title)
    for name in ("class", "particles", "distribution", "resolution Å", "map"):
        table.add_column(name, justify="right")
    for c, path in enumerate(result.maps):
        table.add_row(
            str(c + 1), str(result.particles[c]), f"{result.distribution[c]:.3f}",
            f"{result.resolution_a[c]:.1f}", path.name,
        )  # fmt: skip
    Console().print(table)
    Console(stderr=True).print(f"{result.main} ({time.perf_counter() - start:.1f} s)")


def _read(star: Path, out: Path) -> tuple[ParticleStack3D, ParticleStarTables]:
    from cryolive.io.particle_files import ParticleStarError, read_particles_3d

    _make(out)
    try:
        return read_particles_3d(star)
    except ParticleStarError as exc:
        raise typer.BadParameter(str(exc), param_hint="PARTICLES") from exc


def initial_model_command(
    star: Path = typer.Argument(..., help=_STAR_HELP, metavar="PARTICLES"),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    classes: int = typer.Option(1, "--classes", help="Number of initial models K."),
    symmetry: str = typer.Option("C1", "--symmetry", help="Point group: C1, Cn or Dn."),
    iterations: int = typer.Option(30, "--iterations", help="Stochastic gradient steps."),
    batch: int = typer.Option(200, "--batch", help="Particles per step."),
    final_resolution: float = typer.Option(15.0, "--resolution", help="Final limit, Å."),
    angle_step: float = typer.Option(
        15.0, "--angle-step", help="Orientation grid of the steps, degrees (final: 2/3 of it)."
    ),
    diameter: float | None = typer.Option(None, "--diameter", help="Mask diameter, Å."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    engine: str = typer.Option("cryolive", "--engine", help=ENGINE_HELP),
    threads: int = typer.Option(1, "--threads", help=THREADS_HELP),
) -> None:
    """De novo initial model(s) without a reference: initial_model.mrc (the largest class),
    initial_model_class001.mrc … for K > 1, run_data.star (angles, class) and run_model.star.
    With --engine relion: RELION's SGD (relion_refine --denovo_3dref --sgd)."""
    from cryolive.engines.initial_model import initial_model
    from cryolive.io.outputs.class3d import write_initial_model_outputs

    check_engine(engine, threads)
    console = Console(stderr=True)
    if engine == "relion":
        from cryolive.adapters.relion_refine3d import run_relion_initial_model

        _make(out)
        start = time.perf_counter()
        with relion_errors(console, "relion_refine --denovo_3dref"):
            relion = run_relion_initial_model(
                star, out, classes=classes, symmetry=symmetry, iterations=iterations,
                batch_size=batch, final_resolution_a=final_resolution,
                mask_diameter_a=diameter, seed=seed, threads=threads,
            )  # fmt: skip
        _relion_summary(relion, "initial model (relion_refine)", start)
        return
    stack, tables = _read(star, out)
    console.print(f"{stack.count} particles, box {stack.box} at {stack.pixel_size_a:.3g} Å")
    start = time.perf_counter()
    try:
        with _progress(console, "initial model") as progress:
            result = initial_model(
                stack, classes=classes, symmetry=symmetry, iterations=iterations,
                batch_size=batch, final_resolution_a=final_resolution,
                angle_step_deg=angle_step, final_angle_step_deg=angle_step * 2 / 3,
                mask_diameter_a=diameter, rng=np.random.default_rng(seed), progress=progress,
            )  # fmt: skip
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    try:
        files = write_initial_model_outputs(result, out, tables)
    except OSError as exc:
        console.print(f"[red]cannot write the outputs[/red]: {exc}")
        raise typer.Exit(1) from exc
    best = float(result.resolution_a[result.best_class])
    table = Table(title=f"initial model ({result.symmetry}, {best:.1f} Å)")
    for name in ("class", "particles", "resolution Å", "map"):
        table.add_column(name, justify="right")
    for c, path in enumerate(files.maps):
        table.add_row(
            str(c + 1), str(int(result.class_sizes[c])), f"{result.resolution_a[c]:.1f}", path.name
        )
    Console().print(table)
    console.print(f"{files.main} ({time.perf_counter() - start:.1f} s)")


def class3d_command(
    star: Path = typer.Argument(..., help=_STAR_HELP, metavar="PARTICLES"),
    ref: Path = typer.Option(..., "--ref", help="Reference map (MRC), the particles' box."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    classes: int = typer.Option(4, "--classes", help="Number of classes K."),
    iterations: int = typer.Option(4, "--iterations", help="Full iterations after the SGD."),
    lowpass_a: float = typer.Option(30.0, "--ini-high", help="Reference low-pass, Å."),
    max_resolution: float = typer.Option(12.0, "--max-resolution", help="Search limit, Å."),
    angle_step: float = typer.Option(10.0, "--angle-step", help="Orientation grid, degrees."),
    symmetry: str = typer.Option("C1", "--symmetry", help="Point group: C1, Cn or Dn."),
    diameter: float | None = typer.Option(None, "--diameter", help="Mask diameter, Å."),
    sgd_steps: int = typer.Option(
        40, "--sgd-steps", help="Stochastic steps (minibatches of 100) before the iterations."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    engine: str = typer.Option("cryolive", "--engine", help=ENGINE_HELP),
    threads: int = typer.Option(1, "--threads", help=THREADS_HELP),
    relion_iterations: int = typer.Option(
        25, "--relion-iterations", help="RELION's EM iterations (relion engine only)."
    ),
) -> None:
    """3D classification from one reference: class001.mrc …, run_data.star (class, angles)
    and model.star (distribution, resolution, angular efficiency, score per class).
    With --engine relion: relion_refine --K (model.star is RELION's, without the score)."""
    from cryolive.engines.class3d import classify3d
    from cryolive.io.maps import MapFileError, read_map
    from cryolive.io.outputs.class3d import write_class3d_outputs

    check_engine(engine, threads)
    console = Console(stderr=True)
    if engine == "relion":
        from cryolive.adapters.relion_refine3d import run_relion_class3d

        _make(out)
        start = time.perf_counter()
        with relion_errors(console, "relion_refine --K"):
            relion = run_relion_class3d(
                star, ref, out, classes=classes, iterations=relion_iterations,
                initial_lowpass_a=lowpass_a, symmetry=symmetry, mask_diameter_a=diameter,
                seed=seed, threads=threads,
            )  # fmt: skip
        _relion_summary(
            relion, f"3D classes (relion_refine, {relion.iterations} iterations)", start
        )
        return
    try:
        reference, voxel = read_map(ref)
    except MapFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="--ref") from exc
    stack, tables = _read(star, out)
    if reference.shape[0] != stack.box:
        raise typer.BadParameter(
            f"{ref}: box {reference.shape[0]} but the particles' box is {stack.box}",
            param_hint="--ref",
        )
    if voxel > 0 and abs(voxel - stack.pixel_size_a) > 0.01 * stack.pixel_size_a:
        console.print(
            f"[yellow]warning[/yellow]: map voxel {voxel:.3f} Å, "
            f"particles {stack.pixel_size_a:.3f} Å"
        )
    console.print(f"{stack.count} particles, box {stack.box}, {classes} classes")
    start = time.perf_counter()
    try:
        with _progress(console, "3D classification") as progress:
            result = classify3d(
                stack, reference, classes=classes, iterations=iterations,
                initial_lowpass_a=lowpass_a, max_resolution_a=max_resolution,
                angle_step_deg=angle_step, symmetry=symmetry, mask_diameter_a=diameter,
                sgd_steps=sgd_steps,
                rng=np.random.default_rng(seed), progress=progress,
            )  # fmt: skip
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    try:
        files = write_class3d_outputs(result, out, tables)
    except OSError as exc:
        console.print(f"[red]cannot write the outputs[/red]: {exc}")
        raise typer.Exit(1) from exc
    table = Table(title=f"3D classes ({stack.count} particles)")
    for name in ("class", "particles", "resolution Å", "angular eff.", "score"):
        table.add_column(name, justify="right")
    for c in range(len(files.maps)):
        table.add_row(
            str(c + 1), str(int(result.class_sizes[c])), f"{result.resolution_a[c]:.1f}",
            f"{result.angular_efficiency[c]:.2f}", f"{result.score[c]:.4f}",
        )  # fmt: skip
    Console().print(table)
    console.print(f"best class {result.best_class + 1}: {files.main}")
    console.print(f"{files.model} ({time.perf_counter() - start:.1f} s)")
