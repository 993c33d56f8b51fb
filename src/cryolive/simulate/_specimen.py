"""Specimens as clouds of (pseudo-)atoms, each with the phase it imparts to the beam.

A residue of a protein shifts a 300 kV electron's phase by roughly 0.6 rad·Å² integrated over
its projection (its ~8 non-hydrogen atoms at ~0.08 rad·Å² each: the interaction constant
0.00065 rad/(V·Å) times an atom's integrated potential of ~120 V·Å³ for carbon). Pseudo-atoms
are residues; atoms read from a model weigh in proportion to their atomic number.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np

PHASE_PER_RESIDUE_RAD_A2 = 0.6
PHASE_PER_CARBON_RAD_A2 = 0.08


@dataclass(frozen=True)
class Specimen:
    """One species of particle.

    Attributes
    ----------
    name
        Species label, as written in the ground truth.
    coords_a
        (m, 3) float32 atom positions in Å, centred on the centre of mass.
    phase_rad_a2
        (m,) float32 projected phase of each atom, integrated over area (rad·Å²).
    """

    name: str
    coords_a: np.ndarray
    phase_rad_a2: np.ndarray

    def __post_init__(self) -> None:
        if self.coords_a.ndim != 2 or self.coords_a.shape[1] != 3:
            raise ValueError(f"coords_a: must be (m, 3), got {self.coords_a.shape}")
        if self.phase_rad_a2.shape != (self.coords_a.shape[0],):
            raise ValueError("phase_rad_a2: must have one value per atom")
        if self.coords_a.shape[0] == 0:
            raise ValueError("coords_a: a specimen needs at least one atom")

    @property
    def radius_a(self) -> float:
        """Largest distance (Å) of an atom from the centre."""
        return float(np.sqrt((self.coords_a**2).sum(axis=1)).max())


def _centred(name: str, coords: np.ndarray, weights: np.ndarray) -> Specimen:
    coords = coords.astype(np.float64)
    centre = (coords * weights[:, None]).sum(axis=0) / weights.sum()
    return Specimen(name, (coords - centre).astype(np.float32), weights.astype(np.float32))


def procedural_specimen(
    *, seed: int, n_residues: int = 1500, radius_a: float = 45.0, name: str | None = None
) -> Specimen:
    """A protein-like chain of pseudo-atoms folded into an asymmetric blob.

    A random walk of 3.8 Å steps (the C-alpha to C-alpha distance) is kept inside an ellipsoid with
    semi-axes ``radius_a`` x (1.0, 0.75, 0.55) by reflecting steps that would leave it, so
    that every orientation gives a distinct projection.

    Parameters
    ----------
    seed
        Makes the specimen reproducible; the same seed gives the same atoms.
    n_residues
        Number of pseudo-atoms (about 110 Da each: 1500 is ~165 kDa).
    radius_a
        Largest semi-axis of the ellipsoid (Å).
    """
    if n_residues < 1:
        raise ValueError(f"n_residues: must be at least 1, got {n_residues}")
    if radius_a <= 3.8:
        raise ValueError(f"radius_a: must exceed one step (3.8 Å), got {radius_a}")
    rng = np.random.default_rng(seed)
    axes = radius_a * np.array([1.0, 0.75, 0.55])
    coords = np.empty((n_residues, 3))
    here = np.zeros(3)
    direction = rng.normal(size=3)
    for i in range(n_residues):
        for _ in range(20):
            trial_dir = direction + 1.2 * rng.normal(size=3)
            trial_dir /= np.linalg.norm(trial_dir)
            trial = here + 3.8 * trial_dir
            if ((trial / axes) ** 2).sum() <= 1.0:
                break
        else:
            trial = here * 0.9
        here, direction = trial, trial_dir
        coords[i] = here
    weights = np.full(n_residues, PHASE_PER_RESIDUE_RAD_A2)
    return _centred(name or f"procedural-{seed}", coords, weights)


def specimen_from_model(path: Path | str, *, name: str | None = None) -> Specimen:
    """Atoms of a PDB or mmCIF model (through gemmi), weighted by atomic number.

    Raises
    ------
    ValueError
        The file cannot be read by gemmi or holds no atoms.
    """
    import gemmi

    path = Path(path)
    try:
        structure = gemmi.read_structure(str(path))
    except (RuntimeError, ValueError, OSError) as exc:
        raise ValueError(f"path: cannot read {path} as a PDB/mmCIF model: {exc}") from exc
    coords, weights = [], []
    for model in structure:
        for chain in model:
            for residue in chain:
                for atom in residue:
                    coords.append((atom.pos.x, atom.pos.y, atom.pos.z))
                    weights.append(PHASE_PER_CARBON_RAD_A2 * atom.element.atomic_number / 6.0)
        break
    if not coords:
        raise ValueError(f"path: {path} holds no atoms")
    return _centred(name or path.stem, np.asarray(coords), np.asarray(weights))


def specimen_from_map(
    path: Path | str, *, threshold: float | None = None, name: str | None = None
) -> Specimen:
    """Voxels of an MRC map above ``threshold`` as pseudo-atoms weighted by their density.

    The total phase is scaled to that of a protein of the same volume (0.6 rad·Å² per
    ~135 Å³ residue). ``threshold`` defaults to the mean plus two standard deviations.
    """
    path = Path(path)
    try:
        with mrcfile.open(path, permissive=False, mode="r") as mrc:
            density = np.asarray(mrc.data, dtype=np.float32)
            voxel_a = float(mrc.voxel_size.x) or 1.0
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"path: cannot read {path} as an MRC map: {exc}") from exc
    if density.ndim != 3:
        raise ValueError(f"path: {path} is not a 3D map (shape {density.shape})")
    level = float(density.mean() + 2 * density.std()) if threshold is None else threshold
    z, y, x = np.nonzero(density > level)
    if z.size == 0:
        raise ValueError(f"threshold: no voxel of {path} lies above {level}")
    values = density[z, y, x] - level
    weights = values / values.sum() * (z.size * voxel_a**3 / 135.0) * PHASE_PER_RESIDUE_RAD_A2
    coords = np.stack([x, y, z], axis=1) * voxel_a
    return _centred(name or path.stem, coords, weights)
