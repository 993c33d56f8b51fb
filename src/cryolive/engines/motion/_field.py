"""A smooth local-motion field: quadratic in position, cubic in time (as in MotionCor2's
deformation model), fitted to shifts measured on patches."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

_TIME_POWERS = (1, 2, 3)


def _spatial(u: NDArray[np.float64], v: NDArray[np.float64]) -> NDArray[np.float64]:
    """(6, *u.shape): 1, u, v, u², uv, v² with u, v in [-0.5, 0.5] across the frame."""
    return np.stack([np.ones_like(u), u, v, u * u, u * v, v * v])


def _temporal(times: NDArray[np.float64], n_frames: int) -> NDArray[np.float64]:
    """(3, m): tau, tau², tau³ (tau = t / (n - 1)) at frame times ``times``, each with its
    mean over those times removed."""
    tau = times / max(n_frames - 1, 1)
    basis = np.stack([tau**p for p in _TIME_POWERS])
    return np.asarray(basis - basis.mean(axis=1, keepdims=True), dtype=np.float64)


@dataclass(frozen=True)
class PatchField:
    """Local motion on top of the whole-frame shifts.

    Attributes
    ----------
    shape_px : (y, x)
        Frame shape (full-size px).
    centres_y_px, centres_x_px : (py,), (px,) float64
        Patch centres (px).
    n_frames : int
        Frames in the movie.
    times : (g,) float64
        Frame index (fractional: the middle of a group of frames) of each measurement.
    measured_px : (g, py, px, 2) float64
        Residual (dy, dx) of each patch after whole-frame alignment, mean over ``times``
        removed.
    coefficients : (2, 6, 3) float64
        Fitted field: [dy|dx][1, u, v, u², uv, v²][tau, tau², tau³] (means over frames removed).
    rms_misfit_px : float
        RMS of measured minus fitted over the patches kept in the fit.
    shrink : float
        Factor (0 to 1) the least-squares field was scaled by: 1 - (share of its mean square
        that noise of the misfit's size would produce); near 0 when the patches see no
        local motion above their noise.
    """

    shape_px: tuple[int, int]
    n_frames: int
    times: NDArray[np.float64]
    centres_y_px: NDArray[np.float64]
    centres_x_px: NDArray[np.float64]
    measured_px: NDArray[np.float64]
    coefficients: NDArray[np.float64]
    rms_misfit_px: float
    shrink: float

    def at(self, y_px: NDArray[np.float64], x_px: NDArray[np.float64]) -> NDArray[np.float64]:
        """Field (dy, dx) px at points ``y_px``, ``x_px`` (m,) in every frame: (n, m, 2)."""
        u = np.asarray(x_px, dtype=np.float64) / self.shape_px[1] - 0.5
        v = np.asarray(y_px, dtype=np.float64) / self.shape_px[0] - 0.5
        spatial = _spatial(u, v)  # (6, m)
        temporal = _temporal(np.arange(self.n_frames, dtype=np.float64), self.n_frames)
        field = np.einsum("asj,sm,jn->nma", self.coefficients, spatial, temporal)
        return np.asarray(field, dtype=np.float64)


def fit_field(
    measured_px: NDArray[np.float64],
    centres_y_px: NDArray[np.float64],
    centres_x_px: NDArray[np.float64],
    *,
    times: NDArray[np.float64],
    n_frames: int,
    shape_px: tuple[int, int],
    reject_sigma: float = 3.0,
) -> PatchField:
    """Least-squares fit of the field to patch residuals, once more without outliers.

    Parameters
    ----------
    measured_px : (g, py, px, 2) float64
        Residual (dy, dx) px per measurement and patch (any per-patch constant is ignored).
    centres_y_px, centres_x_px : (py,), (px,) float64
        Patch centres (px).
    times : (g,) float64
        Frame index of each measurement (fractional for groups of frames).
    n_frames : int
        Frames in the movie.
    shape_px : (y, x)
        Frame shape (px).
    reject_sigma : float
        Observations further than this many RMS misfits from the first fit are dropped.
    """
    n, py, px, _ = measured_px.shape
    centred = measured_px - measured_px.mean(axis=0, keepdims=True)
    vv, uu = np.meshgrid(centres_y_px / shape_px[0] - 0.5, centres_x_px / shape_px[1] - 0.5,
                         indexing="ij")  # fmt: skip
    spatial = _spatial(uu.ravel(), vv.ravel())  # (6, p)
    temporal = _temporal(np.asarray(times, dtype=np.float64), n_frames)  # (3, g)
    design = np.einsum("sp,jn->npsj", spatial, temporal).reshape(n * py * px, -1)
    coefficients = np.zeros((2, spatial.shape[0], temporal.shape[0]))
    keep = np.ones(n * py * px, dtype=bool)
    misfits = []
    used = keep
    for _ in range(2):
        used = keep
        for axis in range(2):
            target = centred[..., axis].reshape(-1)
            solution, *_ = np.linalg.lstsq(design[keep], target[keep], rcond=None)
            coefficients[axis] = solution.reshape(coefficients.shape[1:])
        fitted = np.stack([design @ coefficients[a].ravel() for a in range(2)], axis=1)
        misfit = np.linalg.norm(centred.reshape(-1, 2) - fitted, axis=1)
        rms = float(np.sqrt(np.mean(misfit[keep] ** 2)))
        misfits.append(rms)
        keep = misfit <= reject_sigma * max(rms, 1e-6)
    # Shrink towards no local motion by the share of the field that noise alone would fit:
    # with p coefficients per axis fitted to m observations, noise of RMS r gives a fitted
    # field of mean square r² p / m (James-Stein-like; a field far above noise is kept whole).
    field_msq = float(np.mean(np.sum(fitted[used] ** 2, axis=1)))
    noise_msq = misfits[-1] ** 2 * design.shape[1] / max(int(used.sum()), 1)
    shrink = max(0.0, 1.0 - noise_msq / field_msq) if field_msq > 0 else 0.0
    coefficients *= shrink
    return PatchField(
        shape_px=shape_px,
        n_frames=n_frames,
        times=np.asarray(times, dtype=np.float64),
        centres_y_px=np.asarray(centres_y_px, dtype=np.float64),
        centres_x_px=np.asarray(centres_x_px, dtype=np.float64),
        measured_px=centred,
        coefficients=coefficients,
        rms_misfit_px=misfits[-1],
        shrink=shrink,
    )
