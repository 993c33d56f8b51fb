"""``cryolive bfactor``: the B-factor plot (Rosenthal & Henderson 2003) of a particle set, by
refining nested random subsets of it (``cryolive.engines.refine3d``) from one reference."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table


def _counts(text: str | None, total: int) -> list[int]:
    from cryolive.engines.postprocess import doubling_counts

    if text is None:
        return doubling_counts(total)
    try:
        counts = sorted({int(c) for c in text.split(",") if c.strip()})
    except ValueError as exc:
        raise typer.BadParameter(
            f"whole numbers separated by commas, got {text!r}", param_hint="--counts"
        ) from exc
    if len(counts) < 2:
        raise typer.BadParameter("need at least two different counts", param_hint="--counts")
    if counts[0] < 10 or counts[-1] > total:
        raise typer.BadParameter(
            f"each count must lie between 10 and the {total} particles of the file, got {counts}",
            param_hint="--counts",
        )
    return counts


def bfactor_command(
    ctx: typer.Context,
    particles: Path = typer.Argument(..., help="RELION 3.1 particles.star (with CTF)."),
    ref: Path = typer.Option(..., "--ref", help="Reference map (MRC), same box and pixel."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    counts: str | None = typer.Option(
        None, "--counts", help="Subset sizes, e.g. 500,1000,2000 (default: 2k, 4k, 8k … all)."
    ),
    iterations: int = typer.Option(15, "--iterations", help="Most iterations per refinement."),
    lowpass: float = typer.Option(30.0, "--lowpass", help="Initial low-pass of the reference, Å."),
    max_shift: float = typer.Option(3.0, "--max-shift", help="Translations searched, ± pixels."),
    seed: int = typer.Option(0, "--seed", help="Seed of the subsets (each holds the smaller)."),
    as_jobs: bool = typer.Option(
        False,
        "--jobs",
        help="Run each subset's refinement as a `cryolive refine3d` job, all at once, on the "
        "runner the settings name (jobs.runner: local or slurm); outputs in --out/subset_N.",
    ),
) -> None:
    """Refine nested random subsets, fit 1/d² against ln N (B = 2 / slope): bfactor.png and
    bfactor.star in --out."""
    import numpy as np

    from cryolive.cli import settings_of
    from cryolive.cli._bfactor_jobs import SubsetJobFailed, refine_subsets_as_jobs
    from cryolive.engines.postprocess import BfactorSeries, bfactor_fit, bfactor_series
    from cryolive.engines.recon3d import ParticleStack3D
    from cryolive.engines.refine3d import refine3d
    from cryolive.io.maps import MapFileError, read_map
    from cryolive.io.outputs.postprocess import write_bfactor_plot
    from cryolive.io.particle_files import ParticleStarError, read_particles_3d
    from cryolive.jobs import JobError

    if iterations < 1:
        raise typer.BadParameter(f"must be at least 1, got {iterations}", param_hint="--iterations")
    try:
        stack, tables = read_particles_3d(particles)
    except ParticleStarError as exc:
        raise typer.BadParameter(str(exc), param_hint="PARTICLES") from exc
    try:
        reference, _voxel = read_map(ref)
    except MapFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="--ref") from exc
    if reference.shape[0] != stack.box:
        raise typer.BadParameter(
            f"{ref}: box {reference.shape[0]} but the particles' box is {stack.box}",
            param_hint="--ref",
        )
    sizes = _counts(counts, stack.count)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise typer.BadParameter(f"cannot create {out}: {exc}", param_hint="--out") from exc
    order = np.random.default_rng(seed).permutation(stack.count)
    console = Console(stderr=True)

    def take(n: int) -> ParticleStack3D:
        pick = np.sort(order[:n])

        def part(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[pick]

        return dataclasses.replace(
            stack, images=stack.images[pick], defocus=stack.defocus[pick],
            angles_deg=part(stack.angles_deg), origins_a=part(stack.origins_a),
            subset=part(stack.subset),
        )  # fmt: skip

    def refine(n: int) -> float:
        result = refine3d(
            take(n), reference, initial_lowpass_a=lowpass, max_shift_px=max_shift,
            max_iterations=iterations, seed=seed,
        )  # fmt: skip
        console.print(f"{n} particles: {result.resolution_a:.2f} Å")
        return result.resolution_a

    try:
        if as_jobs:
            refine_args = ["--iterations", str(iterations), "--lowpass", str(lowpass)]
            refine_args += ["--max-shift", str(max_shift), "--seed", str(seed)]
            resolutions = refine_subsets_as_jobs(
                settings_of(ctx).jobs, tables, order, sizes, ref=ref, out=out,
                refine_args=refine_args,
            )  # fmt: skip
            b, slope, intercept = bfactor_fit(sizes, resolutions)
            series = BfactorSeries(
                np.asarray(sizes), np.asarray(resolutions), b, slope, intercept
            )  # fmt: skip
        else:
            series = bfactor_series(refine, sizes)
    except (ValueError, JobError, SubsetJobFailed) as exc:
        console.print(f"[red]B-factor plot failed[/red]: {exc}")
        raise typer.Exit(1) from exc
    try:
        png, star = write_bfactor_plot(out, series)
    except OSError as exc:
        console.print(f"[red]cannot write the outputs[/red]: {exc}")
        raise typer.Exit(1) from exc
    table = Table(title="B-factor plot")
    for name in ("particles", "resolution Å", "1/d² (1/Å²)"):
        table.add_column(name, justify="right")
    for n, d in zip(series.counts, series.resolutions_a, strict=True):
        table.add_row(str(n), f"{d:.2f}", f"{1 / d**2:.4f}")
    Console().print(table)
    typer.echo(
        f"B-factor {series.bfactor_a2:.1f} Å² (2 / slope of 1/d² against ln N); {png}, {star}"
    )
