"""Particle images with known views, for 2D classification: as extraction would cut them.

Each particle is one of ``n_views`` projections of a specimen, turned in-plane by a random
psi and shifted, imaged as a weak phase object through its own CTF at a dose, counted with
Poisson noise, then normalised and inverted by :func:`cryolive.engines.extract.extract_particles`
itself, so that the boxes follow the same convention as particles cut from a simulated visit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sfft

from cryolive.engines.class2d import ParticleSet
from cryolive.engines.extract import extract_particles
from cryolive.simulate._config import MovieConfig
from cryolive.simulate._optics import critical_exposure_e_per_a2, ctf_2d, rfft_frequencies
from cryolive.simulate._orient import euler_zyz_matrix
from cryolive.simulate._render import _splat
from cryolive.simulate._specimen import Specimen

JUNK_KINDS = ("empty", "ice", "carbon")
ICE_PHASE_RAD_PER_A = 0.0029  # 0.00065 rad/(V·Å) x ~4.5 V mean inner potential of ice
CARBON_PHASE_RAD_PER_A = 0.0058  # ~9 V for amorphous carbon
CARBON_MEAN_FREE_PATH_A = 1500.0
_CHUNK = 256


@dataclass(frozen=True, kw_only=True)
class ParticleTruth:
    """What was planted in each simulated particle.

    Attributes
    ----------
    view : (n,) int64
        Index of the particle's view into ``projections``; -1 for junk.
    junk : (n,) str
        "" for a particle, else the kind of junk: "empty", "ice" or "carbon".
    psi_deg : (n,) float64
        In-plane rotation of the particle: its image is ``projections[view]`` turned by psi
        counter-clockwise in (x = axis 1, y = axis 0); 0 for junk.
    shift_a : (n, 2) float64
        Offset (y, x) of the particle's centre from the box centre (pixel ``b // 2``), Å;
        0 for junk.
    projections : (n_views, b, b) float32
        Noise-free, CTF-free projections (phase, rad per pixel) of each view, protein bright,
        centred on pixel ``b // 2``, at ``pixel_size_a``.
    view_angles_deg : (n_views, 3) float64
        ZYZ Euler angles (rot, tilt, psi = 0) of each view, as :func:`euler_zyz_matrix`.
    pixel_size_a : float
        Pixel size of ``projections`` and of the particle images, Å.
    diameter_a : float
        Largest diameter of the specimen, Å.
    specimen : str
        Name of the specimen.
    """

    view: NDArray[np.int64]
    junk: NDArray[np.str_]
    psi_deg: NDArray[np.float64]
    shift_a: NDArray[np.float64]
    projections: NDArray[np.float32]
    view_angles_deg: NDArray[np.float64]
    pixel_size_a: float
    diameter_a: float
    specimen: str

    def __len__(self) -> int:
        return int(self.view.shape[0])

    @property
    def n_views(self) -> int:
        return int(self.projections.shape[0])


@dataclass(frozen=True, kw_only=True)
class SimulatedParticles:
    """Simulated particle images and their ground truth."""

    particles: ParticleSet
    truth: ParticleTruth


def spread_views(n_views: int) -> NDArray[np.float64]:
    """``n_views`` viewing directions spread evenly over a hemisphere (rot, tilt, 0) degrees.

    A Fibonacci lattice on the upper hemisphere: no two views are mirror images of one
    another (a view from the far side is a mirror image, which 2D classification does not
    bring onto its partner by an in-plane rotation, but which looks alike at low resolution).
    """
    if n_views < 1:
        raise ValueError(f"n_views: must be at least 1, got {n_views}")
    i = np.arange(n_views, dtype=np.float64)
    cos_tilt = 1.0 - (i + 0.5) / n_views
    rot = np.mod(i * 180.0 * (3.0 - np.sqrt(5.0)), 360.0)
    tilt = np.rad2deg(np.arccos(cos_tilt))
    return np.stack([rot, tilt, np.zeros(n_views)], axis=1)


def _phase_images(
    specimen: Specimen,
    angles_deg: NDArray[np.float64],
    centres_px: NDArray[np.float64],
    *,
    grid_px: int,
    pixel_size_a: float,
) -> NDArray[np.float32]:
    """Projected phase (rad per pixel) of the specimen at each orientation and centre.

    Returns (m, grid, grid) float32; the simulator's own splatting, on a tall mosaic of
    ``grid``-high tiles (atoms never reach a neighbour: the grid is twice the box).
    """
    m = angles_deg.shape[0]
    mosaic = np.zeros((m * grid_px, grid_px), dtype=np.float32)
    if m == 0:
        return mosaic.reshape(0, grid_px, grid_px)
    rot = euler_zyz_matrix(*angles_deg.T)
    xyz = np.einsum("pij,aj->pai", rot, specimen.coords_a.astype(np.float64))
    rows = centres_px[:, 0] + np.arange(m) * grid_px
    ys = (xyz[..., 1] / pixel_size_a + rows[:, None]).ravel()
    xs = (xyz[..., 0] / pixel_size_a + centres_px[:, None, 1]).ravel()
    w = np.broadcast_to(specimen.phase_rad_a2 / pixel_size_a**2, xyz.shape[:2]).ravel()
    _splat(mosaic, ys, xs, w)
    return mosaic.reshape(m, grid_px, grid_px)


def _junk_maps(
    kinds: list[str],
    *,
    grid_px: int,
    box_px: int,
    pixel_size_a: float,
    radius_a: float,
    rng: np.random.Generator,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Phase (rad per pixel) and amplitude (fraction of electrons left) of each junk box."""
    m = len(kinds)
    phase = np.zeros((m, grid_px, grid_px), dtype=np.float32)
    amplitude = np.ones((m, grid_px, grid_px), dtype=np.float32)
    c = grid_px // 2
    yy, xx = (np.mgrid[0:grid_px, 0:grid_px].astype(np.float32) - c) * np.float32(pixel_size_a)
    half_box_a = box_px * pixel_size_a / 2
    for k, kind in enumerate(kinds):
        if kind == "ice":  # a contamination lump, larger than the particle, off centre
            big_a = radius_a * rng.uniform(1.2, 2.0)
            depth_a = rng.uniform(300.0, 900.0)
            where = rng.uniform(0, 2 * np.pi)
            off_a = rng.uniform(0.2, 0.8) * half_box_a
            r2 = (yy - off_a * np.sin(where)) ** 2 + (xx - off_a * np.cos(where)) ** 2
            thickness = depth_a * np.sqrt(np.clip(1.0 - r2 / big_a**2, 0.0, None))
            phase[k] = ICE_PHASE_RAD_PER_A * thickness
            amplitude[k] = np.exp(-thickness / MovieConfig().inelastic_mean_free_path_a)
        elif kind == "carbon":  # a straight film edge: a step in thickness, slightly blurred
            theta = rng.uniform(0, 2 * np.pi)
            offset_a = rng.uniform(-0.5, 0.5) * half_box_a
            film_a = rng.uniform(100.0, 250.0)
            across = xx * np.cos(theta) + yy * np.sin(theta) - offset_a
            thickness = film_a / (1.0 + np.exp(-across / 2.0))
            texture = rng.standard_normal((grid_px, grid_px)).astype(np.float32)
            phase[k] = CARBON_PHASE_RAD_PER_A * thickness * (1.0 + 0.1 * texture)
            amplitude[k] = np.exp(-thickness / CARBON_MEAN_FREE_PATH_A)
    return phase, amplitude


def simulate_particles(
    specimen: Specimen,
    *,
    n_particles: int,
    n_views: int,
    box_px: int,
    pixel_size_a: float,
    defocus_range_a: tuple[float, float] = (8000.0, 25000.0),
    astigmatism_max_a: float = 500.0,
    dose_e_per_a2: float = 40.0,
    max_shift_a: float = 6.0,
    ice_thickness_a: float = 400.0,
    junk_fraction: Mapping[str, float] | None = None,
    seed: int = 0,
) -> SimulatedParticles:
    """Simulate extracted particle boxes of ``n_views`` known views, plus junk.

    Parameters
    ----------
    specimen : Specimen
        What to project; an asymmetric one (:func:`procedural_specimen`) makes every view
        distinct.
    n_particles, n_views : int
        Boxes to make (junk included) and distinct views, spread by :func:`spread_views`.
    box_px : int
        Even box side, pixels.
    pixel_size_a : float
        Pixel size, Å.
    defocus_range_a : (float, float)
        Mean defocus of each particle drawn uniformly from this range, Å (positive: underfocus).
    astigmatism_max_a : float
        |U - V| drawn uniformly up to this, Å; the angle uniformly in [-90, 90) degrees.
    dose_e_per_a2 : float
        Electrons per Å² (Poisson counting; radiation damage integrated over the exposure).
    max_shift_a : float
        Particle centres lie uniformly in a disc of this radius around the box centre, Å.
    ice_thickness_a : float
        Ice around the particles: attenuates the beam and adds its own phase noise.
    junk_fraction : mapping of str to float
        Fraction of the boxes that are "empty" (ice only), "ice" (a contamination lump) or
        "carbon" (a film edge); the rest are particles.
    seed : int
        Everything drawn comes from ``np.random.default_rng(seed)``.

    Returns
    -------
    SimulatedParticles
        ``particles`` (a :class:`ParticleSet` as extraction writes: protein bright, background
        zero mean and unit sd, not CTF-corrected) and their ``truth``.

    Notes
    -----
    The exposure is I(x) = D a(x) (1 + 2 F⁻¹[CTF · F[φ]]) electrons per pixel, with D the dose
    per pixel, a(x) the fraction left after inelastic scattering (ice, contamination, carbon)
    and φ the projected phase (the specimen's blurred by its atoms' size and damage, ice noise,
    junk), CTF = -sin(χ + asin A) with an envelope (:func:`cryolive.simulate.ctf_2d`, the
    visit simulator's). It is formed on a box twice the size (so the CTF's delocalisation
    does not wrap), counted, cropped to ``box_px`` and handed to ``extract_particles``
    (normalise, invert). The Fourier transform of a particle is thus ≈ -CTF · Φ · c, c > 0.
    """
    kinds = dict(junk_fraction or {})
    unknown = set(kinds) - set(JUNK_KINDS)
    if unknown:
        raise ValueError(f"junk_fraction: unknown kinds {sorted(unknown)}; use {JUNK_KINDS}")
    if any(not 0 <= f <= 1 for f in kinds.values()) or sum(kinds.values()) > 1:
        raise ValueError(f"junk_fraction: fractions must lie in [0, 1] and sum to <= 1: {kinds}")
    if n_particles < 1:
        raise ValueError(f"n_particles: must be at least 1, got {n_particles}")
    if box_px < 16 or box_px % 2:
        raise ValueError(f"box_px: must be even and at least 16, got {box_px}")
    if not pixel_size_a > 0:
        raise ValueError(f"pixel_size_a: must be positive, got {pixel_size_a}")
    lo, hi = defocus_range_a
    if not 0 < lo <= hi:
        raise ValueError(f"defocus_range_a: need 0 < low <= high, got {defocus_range_a}")
    if not (astigmatism_max_a >= 0 and max_shift_a >= 0 and dose_e_per_a2 > 0):
        raise ValueError("astigmatism_max_a, max_shift_a: must be >= 0; dose_e_per_a2: > 0")
    if not ice_thickness_a >= 0:
        raise ValueError(f"ice_thickness_a: must be >= 0, got {ice_thickness_a}")
    rng = np.random.default_rng(seed)
    views = spread_views(n_views)
    junk = np.full(n_particles, "", dtype="<U6")
    start = 0
    for kind in JUNK_KINDS:
        count = round(kinds.get(kind, 0.0) * n_particles)
        junk[start : start + count] = kind
        start += count
    junk = junk[rng.permutation(n_particles)]
    good = junk == ""
    view = np.where(good, rng.integers(0, n_views, n_particles), -1).astype(np.int64)
    psi = np.where(good, rng.uniform(0.0, 360.0, n_particles), 0.0)
    radius = max_shift_a * np.sqrt(rng.uniform(0, 1, n_particles))
    angle = rng.uniform(0, 2 * np.pi, n_particles)
    shift = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1)
    shift[~good] = 0.0
    mean_defocus = rng.uniform(lo, hi, n_particles)
    half_ast = rng.uniform(0, astigmatism_max_a, n_particles) / 2
    defocus_u, defocus_v = mean_defocus + half_ast, mean_defocus - half_ast
    ast_angle = rng.uniform(-90.0, 90.0, n_particles)

    optics = MovieConfig()
    grid = 2 * box_px
    centre = grid // 2
    ky, kx = rfft_frequencies((grid, grid), pixel_size_a)
    k2 = kx * kx + ky * ky
    blur = np.exp(-2 * np.pi**2 * 0.7**2 * k2).astype(np.float32)
    n_e = critical_exposure_e_per_a2(np.sqrt(k2))
    x = dose_e_per_a2 / (2 * n_e)  # signal left, averaged over the exposure
    damage = np.where(x > 1e-6, (1 - np.exp(-x)) / np.maximum(x, 1e-6), 1.0).astype(np.float32)
    electrons_px = dose_e_per_a2 * pixel_size_a**2
    ice_att = np.float32(np.exp(-ice_thickness_a / optics.inelastic_mean_free_path_a))
    ice_noise_rad = optics.ice_phase_noise_rad / pixel_size_a * np.sqrt(ice_thickness_a / 300.0)
    crop = slice(centre - box_px // 2, centre - box_px // 2 + box_px)
    images = np.empty((n_particles, box_px, box_px), dtype=np.float32)
    for first in range(0, n_particles, _CHUNK):
        part = slice(first, min(first + _CHUNK, n_particles))
        m = part.stop - part.start
        g = good[part]
        angles = np.column_stack([views[view[part][g], :2], psi[part][g]])
        phase = np.zeros((m, grid, grid), dtype=np.float32)
        phase[g] = _phase_images(
            specimen, angles, centre + shift[part][g] / pixel_size_a,
            grid_px=grid, pixel_size_a=pixel_size_a,
        )  # fmt: skip
        phase_spec = sfft.rfft2(phase, workers=-1) * (blur * damage)
        junk_phase, amplitude = _junk_maps(
            list(junk[part][~g]), grid_px=grid, box_px=box_px, pixel_size_a=pixel_size_a,
            radius_a=specimen.radius_a, rng=rng,
        )  # fmt: skip
        other = rng.standard_normal((m, grid, grid), dtype=np.float32) * np.float32(ice_noise_rad)
        other[~g] += junk_phase
        phase_spec += sfft.rfft2(other, workers=-1)
        for j, index in enumerate(range(part.start, part.stop)):
            phase_spec[j] *= 2.0 * ctf_2d(
                (grid, grid), pixel_size_a=pixel_size_a, defocus_u_a=defocus_u[index],
                defocus_v_a=defocus_v[index], astigmatism_angle_deg=ast_angle[index],
                voltage_kv=optics.voltage_kv, cs_mm=optics.cs_mm,
                amplitude_contrast=optics.amplitude_contrast,
                bfactor_a2=optics.envelope_bfactor_a2,
            )  # fmt: skip
        contrast = sfft.irfft2(phase_spec, s=(grid, grid), workers=-1)[:, crop, crop]
        atten = np.full((m, box_px, box_px), ice_att, dtype=np.float32)
        atten[~g] *= amplitude[:, crop, crop]
        expected = np.clip(electrons_px * atten * (1.0 + contrast), 0.0, None)
        counts = rng.poisson(expected).astype(np.float32)
        mosaic = counts.transpose(1, 0, 2).reshape(box_px, m * box_px)
        cut = extract_particles(
            mosaic,
            np.arange(m) * box_px + box_px // 2.0,
            np.full(m, box_px // 2.0),
            pixel_size_a=pixel_size_a,
            box_px=box_px,
        )
        images[part] = cut.images
    truth_phase = _phase_images(
        specimen, views, np.full((n_views, 2), float(centre)), grid_px=grid,
        pixel_size_a=pixel_size_a,
    )  # fmt: skip
    projections = sfft.irfft2(sfft.rfft2(truth_phase) * blur, s=(grid, grid))[:, crop, crop]
    particles = ParticleSet(
        images=images,
        pixel_size_a=pixel_size_a,
        defocus_u_a=defocus_u,
        defocus_v_a=defocus_v,
        astigmatism_angle_deg=ast_angle,
        voltage_kv=optics.voltage_kv,
        cs_mm=optics.cs_mm,
        amplitude_contrast=optics.amplitude_contrast,
    )
    truth = ParticleTruth(
        view=view,
        junk=junk,
        psi_deg=psi,
        shift_a=shift,
        projections=np.ascontiguousarray(projections, dtype=np.float32),
        view_angles_deg=views,
        pixel_size_a=pixel_size_a,
        diameter_a=2 * specimen.radius_a,
        specimen=specimen.name,
    )
    return SimulatedParticles(particles=particles, truth=truth)
