"""Run ``relion_run_motioncorr --use_own`` on one movie."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
from numpy.typing import NDArray

from cryolive.adapters.relion_motioncorr._parse import movies_star, read_motion_a, read_shifts_px
from cryolive.engines.motion import MotionResult
from cryolive.errors import BadInputError, InternalError

EXECUTABLE = "relion_run_motioncorr"
# Movie formats RELION's own motion correction reads, and whether it reads the rows of the
# frames bottom first (TIFF) or in file order (MRC, MRCS).
ROWS_FLIPPED = {".tif": True, ".tiff": True, ".mrc": False, ".mrcs": False}


class RelionMotionError(InternalError, RuntimeError):
    """RELION's motion correction is missing, failed, or wrote no usable output."""


@dataclass(frozen=True)
class RelionMotionResult:
    """What RELION found and made (same conventions as :class:`MotionResult`).

    Attributes
    ----------
    shifts_px : (n, 2) float64
        (dy, dx) px of each frame's content relative to frame 0.
    total_motion_a, early_motion_a, late_motion_a : float
        RELION's accumulated motion (Å).
    dose_weighted_sum, plain_sum : (y, x) float32
    seconds : float
        Wall time of the RELION process.
    command : tuple[str, ...]
    """

    shifts_px: NDArray[np.float64]
    total_motion_a: float
    early_motion_a: float
    late_motion_a: float
    dose_weighted_sum: NDArray[np.float32]
    plain_sum: NDArray[np.float32]
    seconds: float
    command: tuple[str, ...]

    def as_motion_result(
        self, *, pixel_size_a: float, dose_per_frame_e_per_a2: float, pre_exposure_e_per_a2: float
    ) -> MotionResult:
        """The same result as cryolive's engine returns (no patch field, no defect map)."""
        return MotionResult(
            shifts_px=self.shifts_px, pixel_size_a=pixel_size_a,
            dose_per_frame_e_per_a2=dose_per_frame_e_per_a2,
            pre_exposure_e_per_a2=pre_exposure_e_per_a2, total_motion_a=self.total_motion_a,
            early_motion_a=self.early_motion_a, late_motion_a=self.late_motion_a,
            dose_weighted_sum=self.dose_weighted_sum, plain_sum=self.plain_sum,
            patch_field=None, defects=None, iterations=0,
        )  # fmt: skip


def find_relion_motioncorr() -> str | None:
    """Path of ``relion_run_motioncorr`` on PATH, or None."""
    return shutil.which(EXECUTABLE)


def _read_mrc(path: Path) -> NDArray[np.float32]:
    with mrcfile.open(path, permissive=True) as mrc:
        return np.asarray(mrc.data, dtype=np.float32).copy()


def run_relion_motioncorr(
    movie: Path,
    work_dir: Path,
    *,
    pixel_size_a: float,
    dose_per_frame_e_per_a2: float,
    voltage_kv: float = 300.0,
    pre_exposure_e_per_a2: float = 0.0,
    gain: NDArray[np.floating] | None = None,
    patches: tuple[int, int] = (5, 5),
    bfactor_a2: float = 150.0,
    threads: int = 1,
    timeout_s: float | None = None,
) -> RelionMotionResult:
    """Motion-correct ``movie`` (TIFF, MRC or MRCS) with RELION's own implementation.

    RELION reads TIFF frames bottom row first: for a TIFF movie the gain is written flipped
    to match, and the sums are flipped back, so that sums and shifts are in the rows of the
    file whatever its format (as :func:`cryolive.engines.motion.correct_motion` gives them).

    Parameters
    ----------
    movie : Path
        The movie; linked into ``work_dir``.
    work_dir : Path
        Folder for RELION's inputs and outputs (created).
    pixel_size_a, dose_per_frame_e_per_a2, voltage_kv, pre_exposure_e_per_a2 : float
        Å, e/Å² per frame, kV, e/Å² before the first frame.
    gain : (y, x) float or None
        Multiplicative gain in the movie's orientation (written as MRC; RELION then needs no
        rotation or flip).
    patches : (across x, across y)
    bfactor_a2 : float
        RELION's ``--bfactor``.
    threads : int
        RELION's ``--j``.

    Raises
    ------
    BadInputError
        A movie format RELION's own motion correction does not read.
    RelionMotionError
        Not installed, non-zero exit, or outputs missing.
    """
    suffix = movie.suffix.lower()
    if suffix not in ROWS_FLIPPED:
        raise BadInputError(
            f"{movie.name}: RELION's motion correction reads TIFF, MRC or MRCS movies, "
            f"not {movie.suffix or 'a file without a suffix'}"
        )
    rows_flipped = ROWS_FLIPPED[suffix]
    executable = find_relion_motioncorr()
    if executable is None:
        raise RelionMotionError(f"{EXECUTABLE} is not on PATH (Debian: apt-get install relion)")
    if not pixel_size_a > 0 or not dose_per_frame_e_per_a2 > 0:
        raise ValueError("pixel_size_a, dose_per_frame_e_per_a2: must be positive")
    work_dir.mkdir(parents=True, exist_ok=True)
    link = work_dir / movie.name
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(movie.resolve(), link)
    (work_dir / "movies.star").write_text(
        movies_star(link, pixel_size_a=pixel_size_a, voltage_kv=voltage_kv)
    )
    command = [
        executable, "--i", "movies.star", "--o", "out/", "--use_own", "--j", str(threads),
        "--bfactor", str(bfactor_a2), "--patch_x", str(patches[0]), "--patch_y", str(patches[1]),
        "--dose_weighting", "--angpix", str(pixel_size_a), "--voltage", str(voltage_kv),
        "--dose_per_frame", str(dose_per_frame_e_per_a2), "--save_noDW",
        "--preexposure", str(pre_exposure_e_per_a2),
        "--first_frame_sum", "1", "--last_frame_sum", "-1",
    ]  # fmt: skip
    if gain is not None:
        with mrcfile.new(work_dir / "gain.mrc", overwrite=True) as mrc:
            stored = np.asarray(gain, dtype=np.float32)
            mrc.set_data(np.ascontiguousarray(stored[::-1] if rows_flipped else stored))
        command += ["--gainref", "gain.mrc"]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=work_dir, capture_output=True, text=True,
                              timeout=timeout_s, check=False)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise RelionMotionError(f"{EXECUTABLE} ran past {timeout_s} s") from exc
    seconds = time.perf_counter() - start
    stem = movie.name.split(".")[0]
    out = work_dir / "out"
    if done.returncode != 0 or not (out / f"{stem}.star").exists():
        tail = (done.stderr or done.stdout)[-2000:]
        raise RelionMotionError(f"{EXECUTABLE} failed (exit {done.returncode}): {tail}")
    total, early, late = read_motion_a(out / "corrected_micrographs.star")
    weighted, plain = _read_mrc(out / f"{stem}.mrc"), _read_mrc(out / f"{stem}_noDW.mrc")
    if rows_flipped:
        weighted, plain = np.ascontiguousarray(weighted[::-1]), np.ascontiguousarray(plain[::-1])
    return RelionMotionResult(
        shifts_px=read_shifts_px(out / f"{stem}.star", rows_flipped=rows_flipped),
        total_motion_a=total, early_motion_a=early, late_motion_a=late,
        dose_weighted_sum=weighted, plain_sum=plain,
        seconds=seconds, command=tuple(command),
    )  # fmt: skip
