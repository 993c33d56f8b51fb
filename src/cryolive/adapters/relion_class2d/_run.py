"""Run ``relion_refine`` 2D classification on a particles STAR file."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cryolive.adapters.relion_class2d._star import iteration_files, read_input, read_iteration
from cryolive.engines.class2d import Class2DResult, Class2DSettings, score_classes
from cryolive.errors import InternalError

EXECUTABLE = "relion_refine"
LOG_NAME = "relion_refine.log"
POLL_S = 0.5


class RelionClass2DError(InternalError, RuntimeError):
    """``relion_refine`` is missing, failed, or wrote no usable output."""


def find_relion_refine(executable: str = EXECUTABLE) -> str | None:
    """Path of ``executable`` (``relion_refine`` by default) on PATH, or None."""
    return shutil.which(executable)


def refine_command(
    executable: str,
    star_path: Path,
    root: Path,
    *,
    settings: Class2DSettings,
    pixel_size_a: float,
    threads: int,
) -> list[str]:
    """The ``relion_refine`` command line for ``settings`` (RELION 3.1 option names).

    Angular and translational steps are passed as RELION's GUI does: twice the final step,
    since ``--oversampling 1`` halves them in the last pass.
    """
    offset_range_px = settings.max_shift_a / pixel_size_a
    command = [
        executable, "--i", str(star_path), "--o", str(root), "--K", str(settings.n_classes),
        "--iter", str(settings.iterations), "--tau2_fudge", "2",
        "--particle_diameter", f"{settings.particle_diameter_a:g}", "--ctf", "--zero_mask",
        "--flatten_solvent", "--oversampling", "1",
        "--psi_step", f"{2 * settings.angle_step_deg:g}",
        "--offset_range", f"{offset_range_px:.3f}", "--offset_step", "2",
        "--norm", "--scale", "--j", str(threads), "--pool", "30",
        "--dont_combine_weights_via_disc", "--random_seed", str(settings.seed),
    ]  # fmt: skip
    if settings.working_resolution_a is not None:
        command += ["--strict_highres_exp", f"{settings.working_resolution_a:g}"]
    return command


def _tail(log_path: Path, n_chars: int = 2000) -> str:
    try:
        return log_path.read_text(errors="replace")[-n_chars:]
    except OSError:
        return "(no log)"


def _done_iterations(root: Path, total: int) -> int:
    """Highest iteration whose data file exists (RELION writes it after the model)."""
    done = 0
    for iteration in range(1, total + 1):
        if iteration_files(root, iteration)["data.star"].exists():
            done = iteration
    return done


def run_relion_class2d(
    star_path: Path,
    out_dir: Path,
    *,
    settings: Class2DSettings,
    threads: int = 2,
    executable: str = EXECUTABLE,
    progress: Callable[[int, int], None] | None = None,
    timeout_s: float | None = None,
) -> Class2DResult:
    """Classify the particles of ``star_path`` in 2D with RELION's ``relion_refine``.

    Parameters
    ----------
    star_path : Path
        RELION 3.1 particles file: a data_optics loop (pixel size, box, voltage, Cs, amplitude
        contrast) and a data_particles loop with rlnImageName and the CTF (rlnDefocusU/V/Angle).
        Images protein bright, background normalised (as extraction writes them).
    out_dir : Path
        Folder for RELION's outputs (``run_itNNN_*``) and its log ``relion_refine.log``; created.
    settings : Class2DSettings
        K, iterations, mask diameter, final in-plane step, largest shift, seed.
        ``working_resolution_a`` becomes ``--strict_highres_exp``; ``batch_per_class`` and
        ``full_iterations`` (cryolive's mini-batches) have no RELION counterpart and are ignored.
    threads : int
        RELION's ``--j``.
    executable : str
        Name or path of ``relion_refine``.
    progress : callable (done, total) or None
        Called with the number of finished iterations as RELION writes them.
    timeout_s : float or None
        Stop RELION and raise after this long.

    Returns
    -------
    Class2DResult
        Last iteration's classes, engine "relion_refine"; particles in the order of
        ``star_path``; conventions converted as :mod:`cryolive.adapters.relion_class2d._star`
        describes. Averages are at the particles' pixel size.

    Raises
    ------
    FileNotFoundError
        ``star_path`` does not exist.
    ValueError
        ``star_path`` lacks what RELION needs, fewer particles than classes, ``threads`` < 1.
    RelionClass2DError
        ``executable`` not found, RELION failed or timed out (message ends with its log's tail).
    """
    if threads < 1:
        raise ValueError(f"threads: must be at least 1, got {threads}")
    particles = read_input(star_path)
    if len(particles.image_names) < settings.n_classes:
        raise ValueError(
            f"settings.n_classes: {settings.n_classes} classes for "
            f"{len(particles.image_names)} particles"
        )
    found = find_relion_refine(executable)
    if found is None:
        raise RelionClass2DError(f"{executable} is not on PATH (Debian: apt-get install relion)")
    out_dir.mkdir(parents=True, exist_ok=True)
    root = out_dir.resolve() / "run"
    command = refine_command(
        found,
        star_path.resolve(),
        root,
        settings=settings,
        pixel_size_a=particles.pixel_size_a,
        threads=threads,
    )
    log_path = out_dir / LOG_NAME
    total = settings.iterations
    reported = 0
    start = time.monotonic()
    # Files of an earlier run in the same folder would pass for this one's progress and output.
    for stale in out_dir.glob("run_it[0-9][0-9][0-9]_*"):
        stale.unlink()
    with log_path.open("w") as log:
        log.write(" ".join(command) + "\n")
        log.flush()
        # RELION resolves image paths relative to its working folder: run beside the STAR file.
        process = subprocess.Popen(
            command, cwd=star_path.resolve().parent, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            while process.poll() is None:
                if timeout_s is not None and time.monotonic() - start > timeout_s:
                    raise RelionClass2DError(
                        f"{executable} ran past {timeout_s} s; log tail:\n{_tail(log_path)}"
                    )
                done = _done_iterations(root, total)
                if progress is not None and done > reported:
                    reported = done
                    progress(done, total)
                time.sleep(POLL_S)
        finally:  # a timeout, or an exception from ``progress``: RELION must not run on
            if process.poll() is None:
                process.kill()
                process.wait()
    final = iteration_files(root, total)
    if process.returncode != 0 or not all(path.exists() for path in final.values()):
        raise RelionClass2DError(
            f"{executable} failed (exit {process.returncode}); log tail:\n{_tail(log_path)}"
        )
    if progress is not None and reported < total:
        progress(total, total)
    parsed = read_iteration(root, total, image_names=particles.image_names)
    counts = np.bincount(parsed.assignment, minlength=settings.n_classes).astype(np.int64)
    # RELION's estimate is where a class's spectral SNR falls to 1, not a half-set FRC: kept as
    # it is, but a class of fewer than two particles has none, as in cryolive's engine.
    resolution_a = np.where(counts >= 2, parsed.resolution_a, np.inf)
    score, selected = score_classes(
        parsed.averages,
        pixel_size_a=particles.pixel_size_a,
        particle_diameter_a=settings.particle_diameter_a,
        resolution_a=resolution_a,
    )
    return Class2DResult(
        averages=parsed.averages,
        pixel_size_a=particles.pixel_size_a,
        assignment=parsed.assignment,
        psi_deg=parsed.psi_deg,
        shift_a=parsed.shift_a,
        probability=parsed.probability,
        particles_per_class=counts,
        resolution_a=resolution_a,
        score=score,
        selected=selected,
        engine="relion_refine",
        iterations=total,
        log=[f"relion_refine: {time.monotonic() - start:.1f} s, log {log_path}"],
    )
