"""Read the particle STAR file RELION is given and the files ``relion_refine`` writes.

Conventions. RELION's ``rlnOriginXAngst``/``rlnOriginYAngst`` is the translation that moves
the particle onto the box centre, x along array axis 1 and y along axis 0 (row index, as the
image is stored); cryolive's ``shift_a`` is where the particle's centre sits, (y, x) Å from the
box centre, so ``shift_a = (-OriginY, -OriginX)``. RELION's ``rlnAnglePsi`` rotates the class
average onto the particle; cryolive's ``psi_deg`` is the same rotation measured from +x (axis 1)
towards +y (axis 0), which is RELION's psi with its sign turned: ``psi_deg = -AnglePsi``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd
import starfile
from numpy.typing import NDArray

from cryolive.adapters._relion_star import check_particle_tables

OPTICS_COLUMNS = (
    "rlnOpticsGroup",
    "rlnImagePixelSize",
    "rlnImageSize",
    "rlnVoltage",
    "rlnSphericalAberration",
    "rlnAmplitudeContrast",
)
PARTICLE_COLUMNS = (
    "rlnImageName",
    "rlnOpticsGroup",
    "rlnDefocusU",
    "rlnDefocusV",
    "rlnDefocusAngle",
)
NO_RESOLUTION_A = 999.0  # what RELION writes for a class it cannot estimate


@dataclass(frozen=True)
class InputParticles:
    """What the adapter needs from the input STAR file."""

    image_names: list[str]
    pixel_size_a: float
    box_px: int


@dataclass(frozen=True)
class Iteration:
    """The parsed output of one RELION iteration, particles in input order."""

    averages: NDArray[np.float32]
    assignment: NDArray[np.int64]
    psi_deg: NDArray[np.float64]
    shift_a: NDArray[np.float64]
    probability: NDArray[np.float64]
    resolution_a: NDArray[np.float64]


def read_input(star_path: Path) -> InputParticles:
    """Check that ``star_path`` is a RELION 3.1 particles file RELION can classify with CTF.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not a STAR file, no optics or particles block, a required column missing, optics
        groups with different pixel sizes or boxes, or repeated image names.
    """
    if not star_path.is_file():
        raise FileNotFoundError(f"star_path: {star_path} does not exist")
    try:
        blocks = starfile.read(star_path, always_dict=True)
    except Exception as exc:  # starfile raises many kinds on garbage
        raise ValueError(f"star_path: {star_path} is not a readable STAR file: {exc}") from exc
    if "optics" not in blocks or not isinstance(blocks["optics"], pd.DataFrame):
        raise ValueError(
            f"star_path: {star_path} has no data_optics loop (RELION 3.1 needs pixel size, "
            "voltage, Cs and amplitude contrast there)"
        )
    if "particles" not in blocks or not isinstance(blocks["particles"], pd.DataFrame):
        raise ValueError(f"star_path: {star_path} has no data_particles loop")
    optics, particles = blocks["optics"], blocks["particles"]
    pixel, box = check_particle_tables(
        star_path, optics, particles,
        optics_columns=OPTICS_COLUMNS, particle_columns=PARTICLE_COLUMNS,
    )  # fmt: skip
    names = [str(name) for name in particles["rlnImageName"]]
    return InputParticles(image_names=names, pixel_size_a=pixel, box_px=box)


def iteration_files(root: Path, iteration: int) -> dict[str, Path]:
    """The classes, model and data files RELION writes for ``iteration`` under ``root``."""
    stem = f"{root}_it{iteration:03d}"
    return {kind: Path(f"{stem}_{kind}") for kind in ("classes.mrcs", "model.star", "data.star")}


def read_iteration(root: Path, iteration: int, *, image_names: list[str]) -> Iteration:
    """Parse one iteration's classes, model and data files; order particles as ``image_names``.

    Raises
    ------
    ValueError
        A file lacks a block or column, or the particles do not match the input.
    """
    files = iteration_files(root, iteration)
    with mrcfile.open(files["classes.mrcs"], permissive=True) as mrc:
        averages = np.asarray(mrc.data, dtype=np.float32).copy()
    if averages.ndim == 2:
        averages = averages[None]
    model = starfile.read(files["model.star"], always_dict=True)
    if "model_classes" not in model:
        raise ValueError(f"{files['model.star']}: no data_model_classes block")
    classes = model["model_classes"]
    resolution = classes["rlnEstimatedResolution"].to_numpy(float)
    resolution = np.where(resolution >= NO_RESOLUTION_A, np.inf, resolution)
    data = starfile.read(files["data.star"], always_dict=True)
    if "particles" not in data:
        raise ValueError(f"{files['data.star']}: no data_particles block")
    table = data["particles"]
    position = {name: index for index, name in enumerate(image_names)}
    try:
        order = np.array([position[str(name)] for name in table["rlnImageName"]], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(f"{files['data.star']}: image {exc} is not in the input") from exc
    if len(order) != len(image_names) or len(set(order.tolist())) != len(order):
        raise ValueError(f"{files['data.star']}: particles do not match the input one to one")
    n = len(order)

    def column(name: str) -> NDArray[np.float64]:
        values = np.empty(n, dtype=np.float64)
        values[order] = table[name].to_numpy(float)
        return values

    return Iteration(
        averages=averages,
        assignment=(column("rlnClassNumber") - 1).astype(np.int64),
        psi_deg=-column("rlnAnglePsi"),
        shift_a=np.stack([-column("rlnOriginYAngst"), -column("rlnOriginXAngst")], axis=1),
        probability=column("rlnMaxValueProbDistribution"),
        resolution_a=np.asarray(resolution, dtype=np.float64),
    )
