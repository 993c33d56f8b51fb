"""What 2D classification writes: class averages (MRC stack), a model STAR file (one row per
class), RELION 3.1 data STAR files (every particle, and those of selected classes) that RELION
can continue from, and PNGs of the classes for a quick look.

Conventions of the data STAR files are RELION's, the inverse of the adapter's conversion
(:mod:`cryolive.adapters.relion_class2d`): rlnAnglePsi = -psi_deg, rlnOriginXAngst =
-shift_a[:, 1], rlnOriginYAngst = -shift_a[:, 0], rlnClassNumber 1-based.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd
import starfile
from numpy.typing import NDArray

from cryolive.engines.class2d import Class2DResult
from cryolive.io.png import png_bytes, to_uint8

NO_RESOLUTION_A = 999.0  # what RELION writes for a class it cannot estimate
MIN_TILE_PX = 96  # PNG tiles are enlarged (nearest neighbour) to at least this side
GAP_PX = 2
POSE_COLUMNS = (
    "rlnClassNumber",
    "rlnAnglePsi",
    "rlnOriginXAngst",
    "rlnOriginYAngst",
    "rlnMaxValueProbDistribution",
)


@dataclass(frozen=True)
class Class2DFiles:
    """Paths written by :func:`write_class2d_outputs`."""

    classes: Path  # {stem}_classes.mrcs
    model: Path  # {stem}_model.star
    data: Path  # {stem}_data.star
    selected_data: Path  # {stem}_selected_data.star
    class_pngs: tuple[Path, ...]  # class_001.png ... in class order (1-based, as rlnClassNumber)
    montage: Path  # classes.png


def _writable(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".cryolive-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OSError(f"out_dir: cannot write to {out_dir}: {exc}") from exc


def _tile(average: NDArray[np.float32], factor: int) -> NDArray[np.uint8]:
    grey = to_uint8(average)
    return np.repeat(np.repeat(grey, factor, axis=0), factor, axis=1)


def montage(result: Class2DResult) -> NDArray[np.uint8]:
    """All class averages in a near-square grid, most particles first, each scaled alone."""
    k, b = result.n_classes, result.averages.shape[-1]
    factor = max(1, math.ceil(MIN_TILE_PX / b))
    side = b * factor
    cols = math.ceil(math.sqrt(k))
    rows = math.ceil(k / cols)
    grid = np.zeros((rows * (side + GAP_PX) - GAP_PX, cols * (side + GAP_PX) - GAP_PX), np.uint8)
    order = np.argsort(-result.particles_per_class, kind="stable")
    for slot, c in enumerate(order):
        y, x = divmod(slot, cols)
        y0, x0 = y * (side + GAP_PX), x * (side + GAP_PX)
        grid[y0 : y0 + side, x0 : x0 + side] = _tile(result.averages[c], factor)
    return grid


def _model_tables(result: Class2DResult, classes_name: str) -> dict[str, pd.DataFrame]:
    k = result.n_classes
    number = np.arange(1, k + 1)
    resolution = np.where(np.isfinite(result.resolution_a), result.resolution_a, NO_RESOLUTION_A)
    general = pd.DataFrame(
        {
            "rlnReferenceDimensionality": [2],
            "rlnNrClasses": [k],
            "rlnPixelSize": [result.pixel_size_a],
            "rlnOriginalImageSize": [int(result.averages.shape[-1])],
            "rlnCurrentIteration": [result.iterations],
        }
    )
    classes = pd.DataFrame(
        {
            "rlnReferenceImage": [f"{c:06d}@{classes_name}" for c in number],
            "rlnClassDistribution": np.round(result.class_distribution, 6),
            "rlnEstimatedResolution": np.round(resolution, 3),
        }
    )
    ours = pd.DataFrame(
        {
            "cryoliveClassNumber": number,
            "cryoliveParticles": result.particles_per_class.astype(np.int64),
            "cryoliveScore": np.round(result.score, 4),
            "cryoliveSelected": result.selected.astype(np.int64),
            "cryoliveEngine": [result.engine] * k,
        }
    )
    return {"model_general": general, "model_classes": classes, "cryolive_classes": ours}


def _data_rows(result: Class2DResult, particle_rows: pd.DataFrame) -> pd.DataFrame:
    rows = particle_rows.drop(columns=[c for c in POSE_COLUMNS if c in particle_rows.columns])
    rows = rows.reset_index(drop=True)
    psi = -np.asarray(result.psi_deg, dtype=np.float64)
    psi = (psi + 180.0) % 360.0 - 180.0  # RELION keeps psi in [-180, 180)
    rows["rlnClassNumber"] = result.assignment + 1
    rows["rlnAnglePsi"] = np.round(psi, 4)
    rows["rlnOriginXAngst"] = np.round(-result.shift_a[:, 1], 4)
    rows["rlnOriginYAngst"] = np.round(-result.shift_a[:, 0], 4)
    rows["rlnMaxValueProbDistribution"] = np.round(result.probability, 6)
    return rows


def write_class2d_outputs(
    result: Class2DResult,
    out_dir: Path,
    *,
    particle_rows: pd.DataFrame,
    optics: pd.DataFrame,
    stem: str = "run",
) -> Class2DFiles:
    """Write the files of one 2D classification into ``out_dir`` (created).

    Parameters
    ----------
    result : Class2DResult
        The classes, either engine's.
    out_dir : Path
        Output folder.
    particle_rows : DataFrame
        The classified particles' data_particles rows (RELION 3.1), in the order of
        ``result.assignment``, every column kept; rlnImageName's stacks must be relative to
        ``out_dir`` or absolute (:func:`cryolive.io.particle_files.read_particle_tables` makes
        them so). Pose columns already there are replaced.
    optics : DataFrame
        The data_optics table those rows refer to (rlnOpticsGroup).
    stem : str
        Prefix of the STAR and MRC files.

    Returns
    -------
    Class2DFiles
        ``{stem}_classes.mrcs`` (averages, ``result.pixel_size_a`` in the header);
        ``{stem}_model.star`` (data_model_general; data_model_classes with rlnReferenceImage
        ``NNNNNN@{stem}_classes.mrcs``, rlnClassDistribution, rlnEstimatedResolution (999: none);
        data_cryolive_classes with cryoliveClassNumber, cryoliveParticles, cryoliveScore,
        cryoliveSelected (0/1), cryoliveEngine); ``{stem}_data.star`` (data_optics and every
        particle with rlnClassNumber, rlnAnglePsi, rlnOriginX/YAngst,
        rlnMaxValueProbDistribution in RELION's conventions); ``{stem}_selected_data.star``
        (only particles of selected classes); ``class_NNN.png`` per class (1-based) and
        ``classes.png``, a montage most particles first. PNG tiles are each scaled from their
        1st to 99th percentile and enlarged to at least 96 px.

    Raises
    ------
    ValueError
        ``particle_rows`` does not hold one row per particle, or a table lacks its key column.
    OSError
        ``out_dir`` cannot be created or written.
    """
    n = len(result.assignment)
    if len(particle_rows) != n:
        raise ValueError(
            f"particle_rows: need one row per particle ({n}), got {len(particle_rows)}"
        )
    if "rlnImageName" not in particle_rows.columns:
        raise ValueError("particle_rows: lacks rlnImageName")
    if "rlnOpticsGroup" not in optics.columns or len(optics) == 0:
        raise ValueError("optics: needs at least one row with rlnOpticsGroup")
    if not stem or "/" in stem:
        raise ValueError(f"stem: must be a plain file-name prefix, got {stem!r}")
    _writable(out_dir)
    k = result.n_classes
    files = Class2DFiles(
        classes=out_dir / f"{stem}_classes.mrcs",
        model=out_dir / f"{stem}_model.star",
        data=out_dir / f"{stem}_data.star",
        selected_data=out_dir / f"{stem}_selected_data.star",
        class_pngs=tuple(out_dir / f"class_{c:03d}.png" for c in range(1, k + 1)),
        montage=out_dir / "classes.png",
    )
    with mrcfile.new(files.classes, overwrite=True) as mrc:
        mrc.set_data(np.ascontiguousarray(result.averages, dtype=np.float32))
        mrc.set_image_stack()
        mrc.voxel_size = result.pixel_size_a
    starfile.write(_model_tables(result, files.classes.name), files.model, overwrite=True)
    rows = _data_rows(result, particle_rows)
    starfile.write({"optics": optics, "particles": rows}, files.data, overwrite=True)
    keep = np.asarray(result.selected, dtype=bool)[result.assignment]
    chosen = rows[keep].reset_index(drop=True)
    starfile.write({"optics": optics, "particles": chosen}, files.selected_data, overwrite=True)
    factor = max(1, math.ceil(MIN_TILE_PX / result.averages.shape[-1]))
    for c, path in enumerate(files.class_pngs):
        path.write_bytes(png_bytes(_tile(result.averages[c], factor)))
    files.montage.write_bytes(png_bytes(montage(result)))
    return files
