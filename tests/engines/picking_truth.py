"""Corrected micrographs with particles at known positions, for the picking tests and bench.

The simulator (``cryolive.simulate``) plans and renders one exposure as a single frame with no
motion (a motion-corrected sum); this module adds what the simulator does not plant yet and a
picker must reject: a carbon film beyond a curved hole edge and ice contamination (thick, dark
blobs with CTF fringes). Particles are kept only where they lie wholly in clear ice, so a pick
on carbon or contamination counts as a false positive. Not a test module: loaded by
``conftest.py`` and by ``bench/picking.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sfft
from scipy import ndimage

from cryolive.simulate import (
    ExposureRenderer,
    MovieConfig,
    Specimen,
    ctf_2d,
    euler_zyz_matrix,
    plan_exposure,
    procedural_specimen,
    random_orientations,
)

RADIUS_A = 45.0  # largest semi-axis of the procedural particle; its shortest is 0.55 of it


@dataclass(frozen=True)
class Planted:
    """A micrograph and what was planted in it (positions (n, 2) as y, x in pixels)."""

    micrograph: NDArray[np.float32]
    pixel_size_a: float
    positions_px: NDArray[np.float64]
    defocus_u_a: float
    defocus_v_a: float
    astigmatism_angle_deg: float
    bad_area: NDArray[np.bool_]  # carbon or contamination


@lru_cache(maxsize=4)
def specimen(seed: int = 1, n_residues: int = 1500, radius_a: float = RADIUS_A) -> Specimen:
    return procedural_specimen(seed=seed, n_residues=n_residues, radius_a=radius_a)


def _bad_area(
    rng: np.random.Generator,
    shape: tuple[int, int],
    *,
    carbon: bool,
    contamination: int,
    pixel_size_a: float,
) -> NDArray[np.float32]:
    """Extra thickness map (Å): carbon beyond a hole edge, blobs of ice contamination."""
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float32)
    extra = np.zeros(shape, dtype=np.float32)
    if carbon:
        # the hole: a circle of radius 2.5 x the frame whose edge passes 0.25-0.4 of the frame
        # from its centre, leaving carbon on one side
        radius = 2.5 * max(shape)
        angle = rng.uniform(0, 2 * np.pi)
        offset = radius - rng.uniform(0.25, 0.4) * max(shape)
        cy = ny / 2 - np.sin(angle) * offset
        cx = nx / 2 - np.cos(angle) * offset
        outside = np.hypot(yy - cy, xx - cx) > radius
        extra += 150.0 * outside  # ~150 Å of amorphous carbon
    for _ in range(contamination):
        r = rng.uniform(100.0, 250.0) / pixel_size_a
        y0, x0 = rng.uniform(0, ny), rng.uniform(0, nx)
        extra += 2000.0 * (np.hypot(yy - y0, xx - x0) < r)
    return ndimage.gaussian_filter(extra, 2.0)


def planted_micrograph(
    rng: np.random.Generator,
    *,
    shape: tuple[int, int] = (1024, 1024),
    pixel_size_a: float = 1.0,
    defocus_a: float = 15000.0,
    ice_a: float = 400.0,
    density: float = 0.25,
    dose_e_per_a2: float = 40.0,
    carbon: bool = False,
    contamination: int = 0,
    empty_fraction: float = 0.0,
    n_residues: int = 1500,
    radius_a: float = RADIUS_A,
    preset: str = "realistic",
    **movie: object,
) -> Planted:
    """A motion-corrected micrograph (Poisson counts, float32) of the procedural particle.

    ``empty_fraction`` leaves that fraction of the width (on the left) without particles.
    ``n_residues`` and ``radius_a`` make another particle (default: 165 kDa, 45 Å; about
    110 Da per residue, e.g. 500 and 30 Å for a 55 kDa one). ``preset`` names the simulator's
    movie preset (``realistic``, the default, or ``easy``); ``movie`` overrides its fields.
    """
    spec = specimen(1, n_residues, radius_a)
    config = MovieConfig.preset(
        preset,
        n_frames=1,
        dose_e_per_a2=dose_e_per_a2,
        defocus_range_a=(defocus_a, defocus_a),
        ice_thickness_range_a=(ice_a, ice_a),
        particle_density=density,
        drift_total_px=0.0,
        local_motion_px=0.0,
        **movie,
    )
    plan = plan_exposure(
        config, [spec], np.ones(1), shape_px=shape, pixel_size_a=pixel_size_a, rng=rng
    )
    extra = _bad_area(
        rng, shape, carbon=carbon, contamination=contamination, pixel_size_a=pixel_size_a
    )
    bad = extra > 1.0
    reach = ndimage.distance_transform_edt(~bad)
    pos = plan.positions_px
    iy = np.clip(np.rint(pos[:, 0]).astype(int), 0, shape[0] - 1)
    ix = np.clip(np.rint(pos[:, 1]).astype(int), 0, shape[1] - 1)
    keep = (reach[iy, ix] > radius_a / pixel_size_a) & (pos[:, 1] >= empty_fraction * shape[1])
    plan = replace(
        plan,
        positions_px=pos[keep],
        orientations_deg=plan.orientations_deg[keep],
        species=plan.species[keep],
    )
    renderer = ExposureRenderer(plan, config, [spec], rng=rng)
    expected = next(iter(renderer.frames()))
    if carbon or contamination:
        pad = 64
        padded = (shape[0] + 2 * pad, shape[1] + 2 * pad)
        ctf = ctf_2d(
            padded,
            pixel_size_a=pixel_size_a,
            defocus_u_a=plan.defocus_u_a,
            defocus_v_a=plan.defocus_v_a,
            astigmatism_angle_deg=plan.astigmatism_angle_deg,
            bfactor_a2=60.0,
        )
        # the film's mean phase (weak-phase, ~0.003 rad per Å) shows as fringes at its edges;
        # carbon adds a coarse texture of its own
        texture = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), 1.5)
        phase = 0.003 * np.minimum(extra, 300.0) + 0.6 * (extra > 50) * texture
        phase = np.pad(phase, pad, mode="reflect")  # no wrap-around at the frame's edges
        fringes = sfft.irfft2(sfft.rfft2(phase) * ctf, s=padded)[pad:-pad, pad:-pad]
        expected = expected * np.exp(-extra / 2500.0) * np.clip(1 + 2 * fringes, 0, None)
    counts = rng.poisson(np.maximum(expected, 0)).astype(np.float32)
    return Planted(
        micrograph=counts,
        pixel_size_a=pixel_size_a,
        positions_px=plan.positions_px,
        defocus_u_a=plan.defocus_u_a,
        defocus_v_a=plan.defocus_v_a,
        astigmatism_angle_deg=plan.astigmatism_angle_deg,
        bad_area=bad,
    )


def projections(
    n: int, rng: np.random.Generator, *, pixel_size_a: float, box_px: int
) -> NDArray[np.float32]:
    """``n`` projections (n, box, box) of the particle at random orientations, protein bright.

    The projected phase of the atoms, binned and blurred by one pixel: what CTF-corrected 2D
    class averages look like.
    """
    coords = specimen().coords_a.astype(np.float64)
    angles = random_orientations(n, rng)
    rotations = euler_zyz_matrix(*angles.T)
    out = np.zeros((n, box_px, box_px), dtype=np.float32)
    edges = (np.arange(box_px + 1) - box_px / 2) * pixel_size_a
    for k, rotation in enumerate(rotations):
        xyz = coords @ rotation.T
        image, _, _ = np.histogram2d(xyz[:, 1], xyz[:, 0], bins=(edges, edges))
        out[k] = ndimage.gaussian_filter(image.astype(np.float32), 1.0)
    return out
