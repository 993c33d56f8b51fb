"""Normalisation of a power spectrum and the smooth background/envelope model around the CTF.

The tile-averaged power spectrum is modelled, over a resolution band, as

    P(k) = B(|k|) + E(|k|) sin² χ(k)

with B (background: noise, inelastic scattering) and E (envelope of the Thon rings) smooth
functions of the radius — Chebyshev polynomials of low degree. For a given χ the model is
linear in the coefficients, so B and E are fitted by least squares for every trial χ (a
variable-projection search), which avoids the ring-following of a box-filter background at low
defocus, where rings are broad.
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial import chebyshev
from numpy.typing import NDArray

BACKGROUND_DEGREE = 4
ENVELOPE_DEGREE = 2


def smooth_level(
    power: NDArray[np.float32], r_px: NDArray[np.float64], r_lo: float, r_hi: float
) -> NDArray[np.float64]:
    """A smooth fit to the log rotational average of ``power`` over [r_lo, r_hi], exponentiated:
    the spectrum is divided by it so that its background is near 1 everywhere."""
    bins = np.rint(r_px).astype(np.intp)
    counts = np.bincount(bins.ravel())
    sums = np.bincount(bins.ravel(), weights=power.ravel().astype(np.float64))
    radii = np.arange(counts.size, dtype=np.float64)
    keep = (counts > 0) & (radii >= r_lo) & (radii <= r_hi) & (sums > 0)
    if np.count_nonzero(keep) < 8:
        raise ValueError("min_res_a/max_res_a: the resolution band holds too few frequencies")
    profile = np.log(sums[keep] / counts[keep])
    coef = chebyshev.chebfit(_unit(radii[keep], r_lo, r_hi), profile, 4)
    smooth: NDArray[np.float64] = np.exp(
        chebyshev.chebval(_unit(np.clip(r_px, r_lo, r_hi), r_lo, r_hi), coef)
    )
    return smooth


def _unit(r: NDArray[np.float64], r_lo: float, r_hi: float) -> NDArray[np.float64]:
    out: NDArray[np.float64] = 2.0 * (r - r_lo) / (r_hi - r_lo) - 1.0
    return out


def basis(
    r_px: NDArray[np.float64],
    r_lo: float,
    r_hi: float,
    *,
    background_degree: int = BACKGROUND_DEGREE,
    envelope_degree: int = ENVELOPE_DEGREE,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Chebyshev design columns (n, nb) for B and (n, ne) for E at radii ``r_px``."""
    x = _unit(r_px, r_lo, r_hi)
    vb = np.asarray(chebyshev.chebvander(x, background_degree), dtype=np.float64)
    ve = np.asarray(chebyshev.chebvander(x, envelope_degree), dtype=np.float64)
    return vb, ve


def fit_linear(
    y: NDArray[np.float64],
    ctf2: NDArray[np.float64],
    vb: NDArray[np.float64],
    ve: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """:func:`fit_linear_coefficients` without the coefficients."""
    rss, background, envelope, _ = fit_linear_coefficients(y, ctf2, vb, ve)
    return rss, background, envelope


def fit_linear_coefficients(
    y: NDArray[np.float64],
    ctf2: NDArray[np.float64],
    vb: NDArray[np.float64],
    ve: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Least-squares B and E for each trial ``ctf2``.

    Parameters
    ----------
    y : (n,)
        Normalised spectrum.
    ctf2 : (..., n)
        sin² χ of each trial.
    vb, ve : (n, nb), (n, ne)
        Design columns of :func:`basis`.

    Returns
    -------
    rss : (...,)
        Residual sum of squares of each trial (``inf`` where the envelope comes out negative).
    background, envelope : (..., n)
        B and E of each trial.
    coefficients : (..., nb + ne)
        Their Chebyshev coefficients, B's first (only from fit_linear_coefficients).
    """
    lead = ctf2.shape[:-1]
    design = np.concatenate(
        [np.broadcast_to(vb, (*lead, *vb.shape)), ve * ctf2[..., :, None]], axis=-1
    )
    gram = np.einsum("...ni,...nj->...ij", design, design)
    rhs = np.einsum("...ni,n->...i", design, y)
    ridge = 1e-9 * np.trace(gram, axis1=-2, axis2=-1)[..., None, None]
    coef = np.linalg.solve(gram + ridge * np.eye(gram.shape[-1]), rhs[..., None])[..., 0]
    nb = vb.shape[1]
    background = np.einsum("ni,...i->...n", vb, coef[..., :nb])
    envelope = np.einsum("ni,...i->...n", ve, coef[..., nb:])
    rss = float(y @ y) - np.einsum("...i,...i->...", coef, rhs)
    rss = np.where(envelope.mean(axis=-1) > 0, rss, np.inf)
    return rss, background, envelope, coef
