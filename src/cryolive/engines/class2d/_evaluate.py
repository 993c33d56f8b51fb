"""How good are 2D classes? Compare class averages with the true projections of simulated views."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sfft
from scipy import ndimage

from cryolive.engines._resample import fourier_resize
from cryolive.engines.class2d._frc import frc, resolution_at
from cryolive.engines.class2d._types import Class2DResult


class ParticleTruth(Protocol):
    """What scoring needs of the simulation's truth (cryolive.simulate.ParticleTruth has it):
    a Protocol here, so that the pure engine does not import the simulator above it."""

    @property
    def projections(self) -> NDArray[np.float32]: ...
    @property
    def view(self) -> NDArray[np.int64]: ...
    @property
    def junk(self) -> NDArray[np.str_]: ...
    @property
    def diameter_a(self) -> float: ...


TruthArrays = tuple[NDArray[np.floating], NDArray[np.integer], NDArray[np.generic]]


@dataclass(frozen=True, kw_only=True)
class Class2DQuality:
    """Classes scored against the truth.

    Attributes
    ----------
    best_view : (k,) int64
        True view that matches each class best (-1: an empty class).
    correlation : (k,) float64
        Normalised cross-correlation of each class with its best view, aligned and masked.
    resolution_a : (k,) float64
        Resolution where the FRC of the class with its best view falls below 0.5, Å
        (inf: at once, or an empty class).
    junk_fraction : (k,) float64
        Fraction of each class's particles that are junk (nan: empty).
    median_resolution_a : float
        Unweighted median of ``resolution_a`` over the classes that hold particles, most of
        them true particles (inf when there are none).
    true_view_fraction : float
        Fraction of true particles whose class's best view is their own view.
    junk_rejected : float
        Fraction of junk in classes not selected (nan: no junk).
    selected_good : float
        Fraction of true particles in selected classes.
    """

    best_view: NDArray[np.int64]
    correlation: NDArray[np.float64]
    resolution_a: NDArray[np.float64]
    junk_fraction: NDArray[np.float64]
    median_resolution_a: float
    true_view_fraction: float
    junk_rejected: float
    selected_good: float


def soft_circular_mask(
    box_px: int, radius_px: float, *, edge_px: float = 3.0
) -> NDArray[np.float64]:
    """1 inside ``radius_px`` of pixel (b//2, b//2), a raised-cosine fall to 0 over ``edge_px``."""
    yy, xx = np.mgrid[0:box_px, 0:box_px] - box_px // 2
    r = np.hypot(yy, xx)
    ramp = np.clip((r - radius_px) / edge_px, 0.0, 1.0)
    return np.asarray(0.5 * (1.0 + np.cos(np.pi * ramp)), dtype=np.float64)


def resample_to(
    images: NDArray[np.floating], *, pixel_size_a: float, to_pixel_size_a: float, box_px: int
) -> NDArray[np.float64]:
    """(n, b, b) images at ``pixel_size_a`` resampled (Fourier crop or pad) to ``to_pixel_size_a``
    and cut or padded around pixel b//2 to ``box_px``. The new pixel is exact to 1/b."""
    n, b = images.shape[0], images.shape[-1]
    size = max(2, 2 * round(b * pixel_size_a / to_pixel_size_a / 2))
    out = np.zeros((n, box_px, box_px))
    for i in range(n):
        image = fourier_resize(np.asarray(images[i], dtype=np.float32), (size, size))
        lo = size // 2 - box_px // 2
        src = slice(max(lo, 0), min(lo + box_px, size))
        dst = slice(src.start - lo, src.stop - lo)
        out[i, dst, dst] = image[src, src]
    return out


def _rotations(images: NDArray[np.float64], angles_deg: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each image turned by each angle about pixel (b//2, b//2), cubic splines: (n, a, b, b)."""
    n, b = images.shape[0], images.shape[-1]
    yy, xx = np.mgrid[0:b, 0:b].astype(np.float64) - b // 2
    out = np.empty((n, angles_deg.size, b, b))
    for i in range(n):
        coeffs = ndimage.spline_filter(images[i], order=3, mode="constant")
        for j, angle in enumerate(np.deg2rad(angles_deg)):
            if angle == 0:
                out[i, j] = images[i]
                continue
            c, s = np.cos(angle), np.sin(angle)
            src_y = c * yy - s * xx + b // 2
            src_x = s * yy + c * xx + b // 2
            out[i, j] = ndimage.map_coordinates(
                coeffs, [src_y, src_x], order=3, mode="constant", prefilter=False
            )
    return out


def _peak(cc: NDArray[np.float64], max_shift_px: int) -> tuple[float, float, float]:
    """Highest value of a circular cross-correlation within ``max_shift_px``, sub-pixel."""
    b = cc.shape[-1]
    lag = np.fft.fftfreq(b) * b
    near = (np.abs(lag)[:, None] <= max_shift_px) & (np.abs(lag)[None, :] <= max_shift_px)
    iy, ix = np.unravel_index(np.argmax(np.where(near, cc, -np.inf)), cc.shape)

    def vertex(m: float, z: float, p: float) -> float:
        d = m - 2 * z + p
        return float(np.clip(0.5 * (m - p) / d, -0.5, 0.5)) if d < 0 else 0.0

    dy = vertex(cc[iy - 1, ix], cc[iy, ix], cc[(iy + 1) % b, ix])
    dx = vertex(cc[iy, ix - 1], cc[iy, ix], cc[iy, (ix + 1) % b])
    return float(cc[iy, ix]), float(lag[iy] + dy), float(lag[ix] + dx)


def _shifted(image: NDArray[np.float64], dy: float, dx: float) -> NDArray[np.float64]:
    b = image.shape[-1]
    ky = np.fft.fftfreq(b)[:, None]
    kx = np.fft.rfftfreq(b)[None, :]
    ramp = np.exp(-2j * np.pi * (ky * dy + kx * dx))
    return np.asarray(sfft.irfft2(sfft.rfft2(image) * ramp, s=(b, b)), dtype=np.float64)


def evaluate_classes(
    result: Class2DResult,
    truth: ParticleTruth | TruthArrays,
    *,
    truth_pixel_size_a: float,
    particle_diameter_a: float | None = None,
    angle_step_deg: float = 2.0,
) -> Class2DQuality:
    """Score classes against the true views of simulated particles.

    Each non-empty class is aligned to every true projection (resampled to the classes' pixel
    size and box) over in-plane rotations (``angle_step_deg``) and translations (FFT
    cross-correlation, sub-pixel), both masked by a soft circle of the particle's diameter,
    with no mirroring (2D classification does not flip particles). The best view is the one
    that correlates best; the class's resolution is where their FRC falls below 0.5.

    Parameters
    ----------
    result : Class2DResult
        Classes of the simulated particles, in the simulation's particle order.
    truth : ParticleTruth or (projections, view, junk)
        The simulation's truth, or its arrays: projections (v, b, b) float, view (n,) int
        (-1 for junk) and junk (n,) str ("" for a particle) or bool.
    truth_pixel_size_a : float
        Pixel size of the true projections, Å.
    particle_diameter_a : float, optional
        Mask diameter, Å; default the truth's ``diameter_a`` (required with arrays).
    angle_step_deg : float
        In-plane rotation step of the alignment, degrees.

    Returns
    -------
    Class2DQuality
    """
    if isinstance(truth, tuple):
        projections = np.asarray(truth[0], dtype=np.float64)
        view, junk = np.asarray(truth[1]), np.asarray(truth[2])
        diameter = particle_diameter_a
    else:
        projections = np.asarray(truth.projections, dtype=np.float64)
        view, junk = truth.view, truth.junk
        diameter = particle_diameter_a or truth.diameter_a
    if diameter is None or not diameter > 0:
        raise ValueError("particle_diameter_a: must be positive (required with truth arrays)")
    if not truth_pixel_size_a > 0:
        raise ValueError(f"truth_pixel_size_a: must be positive, got {truth_pixel_size_a}")
    if not 0 < angle_step_deg <= 45:
        raise ValueError(f"angle_step_deg: must lie in (0, 45], got {angle_step_deg}")
    if projections.ndim != 3 or projections.shape[1] != projections.shape[2]:
        raise ValueError(f"truth: projections must be (v, b, b), got {projections.shape}")
    is_junk = junk != "" if junk.dtype.kind in "US" else junk.astype(bool)
    view = np.asarray(view, dtype=np.int64)
    assignment = np.asarray(result.assignment, dtype=np.int64)
    n = assignment.shape[0]
    if view.shape != (n,) or is_junk.shape != (n,):
        raise ValueError(f"truth: view and junk need one entry per particle ({n})")
    if np.any(view[~is_junk] < 0) or np.any(view >= projections.shape[0]):
        raise ValueError("truth: view must index projections for every true particle")
    k, b = result.n_classes, result.averages.shape[-1]
    p = result.pixel_size_a
    mask = soft_circular_mask(b, min(diameter / 2 / p, b / 2 - 3.0))
    refs = resample_to(projections, pixel_size_a=truth_pixel_size_a, to_pixel_size_a=p, box_px=b)
    angles = np.arange(0.0, 360.0, angle_step_deg)
    turned = _rotations(refs, angles)  # (v, a, b, b)
    masked = turned * mask
    masked -= masked.mean(axis=(-2, -1), keepdims=True)
    norms = np.sqrt((masked**2).sum(axis=(-2, -1)))
    spectra = np.conj(sfft.rfft2(masked))
    members = np.bincount(assignment, minlength=k)[:k]
    junk_in = np.bincount(assignment[is_junk], minlength=k)[:k]
    best_view = np.full(k, -1, dtype=np.int64)
    correlation = np.zeros(k)
    resolution = np.full(k, np.inf)
    max_shift = b // 4
    for c in np.flatnonzero(members):
        average = np.asarray(result.averages[c], dtype=np.float64) * mask
        average -= average.mean()
        norm = float(np.sqrt((average**2).sum()))
        if norm == 0:
            continue
        cc = sfft.irfft2(spectra * sfft.rfft2(average), s=(b, b))
        cc /= norm * np.maximum(norms, 1e-30)[..., None, None]
        flat = cc.reshape(-1, b, b).max(axis=(-2, -1))
        v, a = np.unravel_index(int(np.argmax(flat)), norms.shape)
        value, dy, dx = _peak(cc[v, a], max_shift)
        best_view[c], correlation[c] = v, value
        reference = _shifted(turned[v, a], dy, dx) * mask
        curve = frc(np.asarray(result.averages[c], dtype=np.float64) * mask, reference)
        resolution[c] = resolution_at(curve, pixel_size_a=p, threshold=0.5)
    with np.errstate(invalid="ignore", divide="ignore"):
        junk_fraction = np.where(members > 0, junk_in / members, np.nan)
    particle_classes = (members > 0) & (junk_fraction < 0.5)
    good = ~is_junk
    selected = np.asarray(result.selected, dtype=bool)
    return Class2DQuality(
        best_view=best_view,
        correlation=correlation,
        resolution_a=resolution,
        junk_fraction=junk_fraction,
        median_resolution_a=(
            float(np.median(resolution[particle_classes])) if particle_classes.any() else np.inf
        ),
        true_view_fraction=float(np.mean(best_view[assignment[good]] == view[good]))
        if good.any()
        else float("nan"),
        junk_rejected=float(np.mean(~selected[assignment[is_junk]]))
        if is_junk.any()
        else float("nan"),
        selected_good=float(np.mean(selected[assignment[good]])) if good.any() else float("nan"),
    )
