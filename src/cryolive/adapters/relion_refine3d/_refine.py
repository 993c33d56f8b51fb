"""RELION 3.1's gold-standard auto-refine (``relion_refine_mpi --auto_refine
--split_random_halves``, which needs MPI: a master and one rank per half) and what it writes
turned into what ``cryolive refine3d`` writes."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import starfile

from cryolive.adapters.relion_refine3d._process import Relion3DError, mpi_command, run
from cryolive.adapters.relion_refine3d._star import (
    ANGLES,
    ORIGINS,
    InputStar,
    in_input_order,
    last_iteration,
    read_block,
    read_input,
    write_data,
)
from cryolive.io.maps import read_map, write_map

EXECUTABLE = "relion_refine_mpi"
LOG_NAME = "relion_refine.log"
MPI_PROCESSES = 3  # RELION's minimum for auto-refine: a master and a rank per half set
NO_RESOLUTION_A = 999.0


@dataclass(frozen=True)
class RelionRefine3D:
    """What :func:`run_relion_refine3d` wrote (cryolive's names) and found."""

    refined: Path  # refined.mrc: RELION's run_class001.mrc
    half1: Path  # half1.mrc: run_half1_class001_unfil.mrc
    half2: Path
    data: Path  # run_data.star
    fsc: Path  # fsc.star
    resolution_a: float  # gold-standard FSC 0.143 (RELION's rlnCurrentResolution)
    iterations: int
    converged: bool  # False: stopped by max_iterations (maps: the last iteration's)


def refine_command(
    star: Path,
    reference: Path,
    root: Path,
    *,
    pixel_size_a: float,
    box_px: int,
    initial_lowpass_a: float,
    max_shift_px: float,
    mask_diameter_a: float | None,
    max_iterations: int | None,
    healpix_order: int,
    symmetry: str,
    seed: int,
    threads: int,
) -> list[str]:
    """The auto-refine command line (RELION 3.1 option names, as RELION's GUI writes them).

    The reference's scale is not RELION's (``--firstiter_cc``); the mask diameter defaults to
    90 % of the box, as cryolive's engine's. ``--offset_range`` and ``--offset_step`` are in
    pixels.
    """
    diameter = mask_diameter_a if mask_diameter_a is not None else 0.9 * box_px * pixel_size_a
    command = [
        *mpi_command(EXECUTABLE, MPI_PROCESSES),
        "--i", str(star), "--ref", str(reference), "--o", str(root),
        "--auto_refine", "--split_random_halves", "--firstiter_cc",
        "--ini_high", f"{initial_lowpass_a:g}", "--particle_diameter", f"{diameter:g}",
        "--ctf", "--flatten_solvent", "--zero_mask", "--oversampling", "1",
        "--healpix_order", str(healpix_order), "--auto_local_healpix_order", str(healpix_order + 2),
        "--offset_range", f"{max_shift_px:g}", "--offset_step", f"{max(1.0, max_shift_px / 2):g}",
        "--sym", symmetry, "--low_resol_join_halves", "40", "--norm", "--scale",
        "--j", str(threads), "--pool", "10", "--pad", "2", "--dont_combine_weights_via_disc",
        "--random_seed", str(seed + 1),  # RELION does not shuffle with 0
    ]  # fmt: skip
    if max_iterations is not None:
        command += ["--auto_iter_max", str(max_iterations)]
    return command


def _fsc(model_star: Path) -> tuple[pd.DataFrame, float]:
    """The half maps' FSC table (cryolive's fsc.star columns) and the final resolution."""
    general = read_block(model_star, "model_general")
    curve = read_block(model_star, "model_class_1")
    need = ("rlnSpectralIndex", "rlnResolution", "rlnAngstromResolution", "rlnGoldStandardFsc")
    missing = [c for c in need if c not in curve.columns]
    if missing or "rlnCurrentResolution" not in general.columns:
        raise ValueError(f"{model_star}: no gold-standard FSC ({', '.join(missing) or 'general'})")
    table = pd.DataFrame(
        {
            "rlnSpectralIndex": curve["rlnSpectralIndex"].to_numpy(int),
            "rlnResolution": curve["rlnResolution"].to_numpy(float),
            "rlnAngstromResolution": curve["rlnAngstromResolution"].to_numpy(float),
            "rlnFourierShellCorrelation": curve["rlnGoldStandardFsc"].to_numpy(float),
        }
    )
    resolution = float(general["rlnCurrentResolution"].iloc[0])
    return table, resolution if 0 < resolution < NO_RESOLUTION_A else float("inf")


def _convert(
    root: Path, iteration: int, converged: bool, given: InputStar, out_dir: Path
) -> tuple[Path, pd.DataFrame, float]:
    """Copy the maps to cryolive's names and write run_data.star; (it, the FSC, resolution).

    Converged: RELION's final files (run_class001.mrc, the unfiltered half maps, run_data.star,
    run_model.star). Stopped by ``--auto_iter_max``: the last iteration's half maps (RELION's
    references, FSC-weighted), their average as the full map, its data and half1 model.
    """
    if converged:
        maps = {
            "refined": Path(f"{root}_class001.mrc"),
            "half1": Path(f"{root}_half1_class001_unfil.mrc"),
            "half2": Path(f"{root}_half2_class001_unfil.mrc"),
        }
        data_star, model_star = Path(f"{root}_data.star"), Path(f"{root}_model.star")
    else:
        stem = f"{root}_it{iteration:03d}"
        maps = {
            "half1": Path(f"{stem}_half1_class001.mrc"),
            "half2": Path(f"{stem}_half2_class001.mrc"),
        }
        data_star, model_star = Path(f"{stem}_data.star"), Path(f"{stem}_half1_model.star")
    missing = [p.name for p in (*maps.values(), data_star, model_star) if not p.is_file()]
    if iteration < 1 or missing:
        raise ValueError(f"{EXECUTABLE} wrote no {', '.join(missing) or 'iteration'}")
    rows = in_input_order(data_star, given, (*ANGLES, *ORIGINS, "rlnRandomSubset"))
    fsc, resolution = _fsc(model_star)
    for name, source in maps.items():
        shutil.copyfile(source, out_dir / f"{name}.mrc")
    if not converged:
        half1, pixel = read_map(out_dir / "half1.mrc")
        half2, _ = read_map(out_dir / "half2.mrc")
        write_map(out_dir / "refined.mrc", (half1 + half2) / 2, pixel_size_a=pixel)
    data = write_data(out_dir / "run_data.star", given, rows, columns=("rlnRandomSubset",))
    return data, fsc, resolution


def run_relion_refine3d(
    star_path: Path,
    reference: Path,
    out_dir: Path,
    *,
    initial_lowpass_a: float = 30.0,
    max_shift_px: float = 3.0,
    mask_diameter_a: float | None = None,
    max_iterations: int | None = None,
    healpix_order: int = 2,
    symmetry: str = "C1",
    seed: int = 0,
    threads: int = 1,
    timeout_s: float | None = None,
) -> RelionRefine3D:
    """Refine the particles of ``star_path`` from ``reference`` with RELION's auto-refine.

    Parameters
    ----------
    star_path : Path
        RELION 3.1 particles file (optics and CTF columns; white particles); image names are
        relative to its folder, where RELION runs.
    reference : Path
        Starting map (MRC), the particles' box and pixel; low-passed to ``initial_lowpass_a`` Å.
    out_dir : Path
        Gets RELION's files (``relion/run_*``, its log ``relion_refine.log``) and cryolive's:
        refined.mrc, half1.mrc, half2.mrc, run_data.star (angles, origins in Å,
        rlnRandomSubset) and fsc.star (rlnFinalResolution; data_fsc rlnFourierShellCorrelation).
    max_shift_px : float
        ``--offset_range`` (pixels).
    max_iterations : int or None
        ``--auto_iter_max``: stop there even before RELION's convergence.
    healpix_order : int
        Initial angular sampling (2: 15°, before oversampling).
    threads : int
        ``--j`` of each MPI rank.
    timeout_s : float or None
        Kill RELION and raise past this.

    Raises
    ------
    ValueError
        ``star_path`` or ``reference`` unusable, or a setting out of range.
    RelionMissingError
        ``relion_refine_mpi`` or ``mpirun`` is not installed.
    Relion3DError
        RELION failed, timed out, or wrote no final maps (message ends with the log's tail).
    """
    if threads < 1 or max_shift_px <= 0 or initial_lowpass_a <= 0 or healpix_order < 0:
        raise ValueError(
            "threads >= 1, max_shift_px > 0, initial_lowpass_a > 0 and healpix_order >= 0 needed"
        )
    if max_iterations is not None and max_iterations < 1:
        raise ValueError(f"max_iterations: must be at least 1, got {max_iterations}")
    given = read_input(star_path)
    if not reference.is_file():
        raise ValueError(f"reference: {reference} does not exist")
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / "relion"
    if work.exists():  # an earlier run's files would pass for this one's
        shutil.rmtree(work)
    work.mkdir()
    root = work.resolve() / "run"
    command = refine_command(
        star_path.resolve(), reference.resolve(), root,
        pixel_size_a=given.pixel_size_a, box_px=given.box_px,
        initial_lowpass_a=initial_lowpass_a, max_shift_px=max_shift_px,
        mask_diameter_a=mask_diameter_a, max_iterations=max_iterations,
        healpix_order=healpix_order, symmetry=symmetry, seed=seed, threads=threads,
    )  # fmt: skip
    log = out_dir / LOG_NAME
    log.write_text("")
    run(command, cwd=star_path.resolve().parent, log_path=log, timeout_s=timeout_s)
    iterations = last_iteration(root)
    converged = Path(f"{root}_half1_class001_unfil.mrc").is_file()
    try:
        data, fsc, resolution = _convert(root, iterations, converged, given, out_dir)
    except ValueError as exc:
        raise Relion3DError(f"{exc} (see {log})") from exc
    general = {"rlnFinalResolution": round(resolution, 4), "rlnCurrentIteration": iterations}
    fsc_path = out_dir / "fsc.star"
    starfile.write({"general": general, "fsc": fsc}, fsc_path, overwrite=True)
    return RelionRefine3D(
        refined=out_dir / "refined.mrc",
        half1=out_dir / "half1.mrc",
        half2=out_dir / "half2.mrc",
        data=data,
        fsc=fsc_path,
        resolution_a=resolution if np.isfinite(resolution) else float("inf"),
        iterations=iterations,
        converged=converged,
    )
