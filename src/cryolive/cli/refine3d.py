"""``cryolive refine3d``: gold-standard 3D refinement of a particles.star from a reference map."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from cryolive.cli._relion3d import ENGINE_HELP, THREADS_HELP, check_engine, relion_errors


def refine3d_command(
    particles: Path = typer.Argument(..., help="RELION 3.1 particles.star (with CTF)."),
    ref: Path = typer.Option(..., "--ref", help="Reference map (MRC), same box and pixel."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    symmetry: str = typer.Option(
        "C1", "--symmetry", help="Point group (cryolive: C1, Cn or Dn; relion: any RELION takes)."
    ),
    iterations: int = typer.Option(15, "--iterations", help="Most iterations."),
    lowpass: float = typer.Option(30.0, "--lowpass", help="Initial low-pass of the reference, Å."),
    max_shift: float = typer.Option(3.0, "--max-shift", help="Translations searched, ± pixels."),
    diameter: float | None = typer.Option(
        None, "--diameter", help="Mask diameter, Å (default 90 % of the box)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the half split when the file has none."),
    poses: int = typer.Option(
        1, "--poses", help="Insert each image at its N best local poses, posterior-weighted."
    ),
    device: str | None = typer.Option(
        None,
        "--device",
        help="Run the orientation searches' products in PyTorch on this device (cuda, cpu); "
        "default: NumPy. Needs PyTorch.",
    ),
    engine: str = typer.Option("cryolive", "--engine", help=ENGINE_HELP),
    threads: int = typer.Option(1, "--threads", help=THREADS_HELP),
) -> None:
    """Refine angles and origins (point group C1, Cn or Dn), writing refined.mrc, half1.mrc,
    half2.mrc, run_data.star and fsc.star (RELION 3.1). With --engine relion: RELION's
    auto-refine (relion_refine_mpi, 3 MPI ranks; --iterations is its --auto_iter_max)."""
    from cryolive.engines.refine3d import refine3d, symmetry_rotations, torch_device
    from cryolive.io.maps import MapFileError, read_map
    from cryolive.io.outputs.refine3d import write_refine3d_outputs
    from cryolive.io.particle_files import ParticleStarError, read_particles_3d

    check_engine(engine, threads)
    if device is not None and engine == "relion":
        raise typer.BadParameter("is for --engine cryolive only", param_hint="--device")
    if engine == "relion":
        _relion(
            particles, ref, out, symmetry, iterations, lowpass, max_shift, diameter, seed, threads
        )
        return
    try:
        symmetry_rotations(symmetry)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--symmetry") from exc
    if iterations < 1:
        raise typer.BadParameter(f"must be at least 1, got {iterations}", param_hint="--iterations")
    if poses < 1:
        raise typer.BadParameter(f"must be at least 1, got {poses}", param_hint="--poses")
    if device is not None:
        try:
            torch_device(device)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--device") from exc
    try:
        stack, tables = read_particles_3d(particles)
    except ParticleStarError as exc:
        raise typer.BadParameter(str(exc), param_hint="PARTICLES") from exc
    try:
        reference, voxel = read_map(ref)
    except MapFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="--ref") from exc
    if reference.shape[0] != stack.box:
        raise typer.BadParameter(
            f"{ref}: box {reference.shape[0]} but the particles' box is {stack.box}",
            param_hint="--ref",
        )
    if voxel > 0 and abs(voxel - stack.pixel_size_a) > 0.01 * stack.pixel_size_a:
        raise typer.BadParameter(
            f"{ref}: voxel {voxel:.3f} Å but the particles' pixel is {stack.pixel_size_a:.3f} Å",
            param_hint="--ref",
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise typer.BadParameter(f"cannot create {out}: {exc}", param_hint="--out") from exc
    console = Console(stderr=True)
    backend = f"PyTorch on {device}" if device is not None else "NumPy"
    console.print(
        f"{stack.count} particles, box {stack.box}, {stack.pixel_size_a:.3f} Å/px; "
        f"searches in {backend}"
    )
    start = time.perf_counter()
    with Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console,
    ) as bar:  # fmt: skip
        task = bar.add_task("iterations", total=iterations)
        try:
            result = refine3d(
                stack, reference, symmetry=symmetry, initial_lowpass_a=lowpass,
                max_shift_px=max_shift, mask_diameter_a=diameter, max_iterations=iterations,
                seed=seed, poses=poses, device=device,
                progress=lambda done, total: bar.update(task, completed=done),
            )  # fmt: skip
        except ValueError as exc:
            console.print(f"[red]refinement failed[/red]: {exc}")
            raise typer.Exit(1) from exc
        bar.update(task, completed=iterations)
    try:
        write_refine3d_outputs(result, out, tables=tables)
    except OSError as exc:
        console.print(f"[red]cannot write the outputs[/red]: {exc}")
        raise typer.Exit(1) from exc
    table = Table(title="refine3d iterations")
    for name in ("it", "search", "step °", "resolution Å", "Δangle °", "s"):
        table.add_column(name, justify="right")
    for h in result.history:
        table.add_row(
            str(h.number), h.mode, f"{h.step_deg:.2f}", f"{h.resolution_a:.2f}",
            "-" if h.angle_change_deg != h.angle_change_deg else f"{h.angle_change_deg:.2f}",
            f"{h.seconds:.1f}",
        )  # fmt: skip
    Console().print(table)
    state = "converged" if result.converged else "stopped at --iterations"
    typer.echo(
        f"resolution {result.resolution_a:.2f} Å (FSC 0.143, gold standard) after "
        f"{result.iterations} iterations ({state}) in {time.perf_counter() - start:.1f} s; "
        f"outputs in {out}"
    )


def _relion(
    particles: Path, ref: Path, out: Path, symmetry: str, iterations: int, lowpass: float,
    max_shift: float, diameter: float | None, seed: int, threads: int,
) -> None:  # fmt: skip
    from cryolive.adapters.relion_refine3d import run_relion_refine3d

    if iterations < 1:
        raise typer.BadParameter(f"must be at least 1, got {iterations}", param_hint="--iterations")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise typer.BadParameter(f"cannot create {out}: {exc}", param_hint="--out") from exc
    console = Console(stderr=True)
    start = time.perf_counter()
    with relion_errors(console, "relion_refine_mpi --auto_refine"):
        result = run_relion_refine3d(
            particles, ref, out, initial_lowpass_a=lowpass, max_shift_px=max_shift,
            mask_diameter_a=diameter, max_iterations=iterations, symmetry=symmetry, seed=seed,
            threads=threads,
        )  # fmt: skip
    state = "converged" if result.converged else "stopped at --iterations"
    typer.echo(
        f"resolution {result.resolution_a:.2f} Å (FSC 0.143, gold standard, RELION) after "
        f"{result.iterations} iterations ({state}) in {time.perf_counter() - start:.1f} s; "
        f"outputs in {out}"
    )
