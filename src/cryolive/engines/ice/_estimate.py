"""Relative ice thickness from the attenuation of the beam, tile by tile."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray

from cryolive.engines._checks import UnusableMicrographError, check_micrograph
from cryolive.engines._tiles import tile_power_spectra

ICE_RING_A = (3.45, 3.95)
FLANKS_A = ((3.0, 3.3), (4.1, 4.6))
RING_BOX_PX = 512


class IceThicknessError(UnusableMicrographError):
    """No trustworthy ice thickness: ``reason`` is ``"non-finite"``, ``"blank"``,
    ``"saturated"`` or ``"no-electrons"``."""


@dataclass(frozen=True, kw_only=True)
class IceThickness:
    """Relative ice thickness of one micrograph: the five-number summary over its tiles.

    Each tile's value is ln(I0 / I), with I the tile's mean dose reaching the detector and
    I0 the incident dose: by Beer-Lambert, t / Λ, the thickness in units of the mean free path
    for the electrons the aperture or energy slit removes (≈ 300-400 nm at 300 kV). These map
    to ISPyB ``RelativeIceThickness`` (minimum, q1, median, q3, maximum).

    ``ice_ring_ratio`` is the spectral power in the 3.45-3.95 Å band (crystalline ice
    reflections at 3.90, 3.67 and 3.44 Å) over that in the flanking bands; about 1 for
    vitreous ice, above 1 when ice has crystallised. None when the pixel size cannot
    resolve 3 Å.
    """

    minimum: float
    q1: float
    median: float
    q3: float
    maximum: float
    ice_ring_ratio: float | None
    tiles: int

    def to_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def estimate_ice_thickness(
    image: NDArray[np.floating],
    *,
    incident_e_per_px: float,
    pixel_size_a: float,
    tiles_per_side: int = 8,
) -> IceThickness:
    """Relative ice thickness per tile and its five-number summary.

    Parameters
    ----------
    image : (y, x) float32
        Motion-corrected micrograph in electrons per pixel (counts, not normalised).
    incident_e_per_px : float
        Dose reaching the specimen, e/px (the collection's dose in e/Å² times pixel_size_a²).
    pixel_size_a : float
        Pixel size, Å.
    tiles_per_side : int
        The micrograph is cut into tiles_per_side² tiles.

    Returns
    -------
    IceThickness
        Five-number summary of ln(incident / tile mean) (dimensionless t/Λ) and the ice-ring
        ratio.

    Raises
    ------
    IceThicknessError
        NaN/inf, blank or saturated micrograph, or a tile with no electrons.
    ValueError
        A parameter out of range (the message names it).

    References
    ----------
    Rice WJ et al. (2018) Routine determination of ice thickness for cryo-EM grids. J Struct
    Biol 204:38-44. doi:10.1016/j.jsb.2018.06.007
    """
    if image.ndim != 2:
        raise ValueError(f"image must be 2D (y, x), got shape {image.shape}")
    if not incident_e_per_px > 0:
        raise ValueError(f"incident_e_per_px must be positive, got {incident_e_per_px}")
    if not pixel_size_a > 0:
        raise ValueError(f"pixel_size_a must be positive, got {pixel_size_a}")
    if not 1 <= tiles_per_side <= min(image.shape) // 8:
        raise ValueError(f"tiles_per_side must lie in [1, {min(image.shape) // 8}]")
    check_micrograph(image, IceThicknessError)
    means = _tile_means(image, tiles_per_side)
    if (means <= 0).any():
        raise IceThicknessError(
            "no-electrons", f"{int((means <= 0).sum())} tiles received no electrons"
        )
    thickness = np.log(incident_e_per_px / means)
    five = np.percentile(thickness, [0, 25, 50, 75, 100])
    return IceThickness(
        minimum=float(five[0]),
        q1=float(five[1]),
        median=float(five[2]),
        q3=float(five[3]),
        maximum=float(five[4]),
        ice_ring_ratio=_ice_ring_ratio(image, pixel_size_a),
        tiles=int(thickness.size),
    )


def _tile_means(image: NDArray[np.floating], n: int) -> NDArray[np.float64]:
    ny, nx = image.shape
    sy, sx = ny // n, nx // n
    crop = np.asarray(image[: sy * n, : sx * n], dtype=np.float64)
    means: NDArray[np.float64] = crop.reshape(n, sy, n, sx).mean(axis=(1, 3)).ravel()
    return means


def _ice_ring_ratio(image: NDArray[np.floating], pixel_size_a: float) -> float | None:
    if 2 * pixel_size_a > FLANKS_A[0][0]:
        return None
    box = RING_BOX_PX if min(image.shape) >= 2 * RING_BOX_PX else min(image.shape) // 2
    # The central (up to) 4 x 4 tiles are plenty for a ratio of shell powers.
    ny, nx = (min(n, 4 * box) for n in image.shape)
    y0, x0 = (image.shape[0] - ny) // 2, (image.shape[1] - nx) // 2
    halves = tile_power_spectra(image[y0 : y0 + ny, x0 : x0 + nx], box)
    power = halves.mean(axis=0)
    ky = np.fft.fftfreq(box)[:, None]
    kx = np.fft.rfftfreq(box)[None, :]
    spacing = pixel_size_a / np.maximum(np.hypot(kx, ky), 1e-12)

    def band(lo: float, hi: float) -> float:
        return float(power[(spacing >= lo) & (spacing <= hi)].mean())

    flanks = 0.5 * (band(*FLANKS_A[0]) + band(*FLANKS_A[1]))
    return band(*ICE_RING_A) / flanks if flanks > 0 else None
