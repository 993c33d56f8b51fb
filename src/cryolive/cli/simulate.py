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
    preset: str = typer.Option(
        "realistic",
        help="Movie physics: realistic (as hard as real data) or easy (strong particles, "
        "slow drift without creep, no ice texture: for demonstrations and plumbing tests).",
    ),
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
            movie=MovieConfig.preset(
                preset, n_frames=frames, dose_e_per_a2=dose, noiseless=noiseless
            ),
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


def simulate_particles3d(
    out: Path = typer.Option(..., "--out", help="Folder for particles.star/.mrcs and the truth."),
    count: int = typer.Option(1500, "--count", help="Particles."),
    box: int = typer.Option(32, "--box", help="Box side, pixels (even)."),
    pixel: float = typer.Option(3.0, "--pixel", help="Pixel size, Å."),
    snr: float = typer.Option(0.1, "--snr", help="Signal variance / noise variance."),
    map_path: Path | None = typer.Option(
        None, "--map", help="Map to project (MRC, box x box x box); default: a random phantom."
    ),
    max_origin: float = typer.Option(3.0, "--max-origin", help="Origins drawn in ± pixels."),
    projection: str = typer.Option(
        "auto", "--projection", help="real, fourier (pad 4, fast) or auto (real when small)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the phantom and of everything drawn."),
) -> None:
    """Write particles of a known map for 3D refinement: particles.star + particles.mrcs (no
    angles), truth.star (true angles and origins) and truth.mrc."""
    import numpy as np

    from cryolive.engines.recon3d import phantom
    from cryolive.io.maps import MapFileError, read_map
    from cryolive.simulate.particles3d import simulate_particles_3d, write_particles_3d_sim

    if projection not in ("auto", "real", "fourier"):
        raise typer.BadParameter(
            f"real, fourier or auto, got {projection!r}", param_hint="--projection"
        )
    if box < 8 or box % 2:
        raise typer.BadParameter(f"must be even and at least 8, got {box}", param_hint="--box")
    rng = np.random.default_rng(seed)
    if map_path is None:
        volume = phantom(box, rng)
    else:
        try:
            volume, _voxel = read_map(map_path)
        except MapFileError as exc:
            raise typer.BadParameter(str(exc), param_hint="--map") from exc
        if volume.shape[0] != box:
            raise typer.BadParameter(
                f"{map_path}: box {volume.shape[0]}, not --box {box}", param_hint="--map"
            )
    try:
        stack = simulate_particles_3d(
            volume, count=count, pixel_size_a=pixel, rng=rng, snr=snr,
            max_origin_px=max_origin, projection=projection,  # type: ignore[arg-type]
        )  # fmt: skip
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    star = write_particles_3d_sim(stack, volume, out)
    typer.echo(f"{count} particles (box {box}, {pixel} Å/px, SNR {snr}) in {star}; truth in {out}")
