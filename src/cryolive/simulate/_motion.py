"""Beam-induced motion: a whole-frame drift trajectory plus a smooth local deformation."""

from __future__ import annotations

import numpy as np


def _profile(n_frames: int, tau_frames: float) -> np.ndarray:
    """Fast-then-slow path shape from 0 (frame 0) to 1 (last frame), (n,) float64."""
    t = np.arange(n_frames, dtype=np.float64)
    if n_frames == 1:
        return t
    shape = 1.0 - np.exp(-t / tau_frames)
    return np.asarray(shape / shape[-1], dtype=np.float64)


def drift_trajectory(
    n_frames: int,
    rng: np.random.Generator,
    *,
    total_px: float,
    jitter_px: float = 0.05,
    settle_frames: float | None = None,
    creep_fraction: float = 0.0,
) -> np.ndarray:
    """Whole-frame drift of each frame relative to frame 0, (n, 2) float64 columns (dy, dx) px.

    The path's length is ``total_px`` x U(0.5, 1.5). Of it, ``1 - creep_fraction`` is an
    exponential settle ``1 - exp(-t / settle_frames)`` (fast at first, as beam-induced motion
    is; ``None``: ``n_frames / 4``, normalised to end at the last frame) along a random
    direction, and ``creep_fraction`` a slow linear creep at up to 60° from it (so the path
    bends). On top, a random walk of ``jitter_px`` per frame. Frame 0 has zero drift.

    Notes
    -----
    Beam-induced motion is fastest over the first few e/Å² and then slows to a steady stage
    drift (Brilot et al. 2012, doi:10.1016/j.jsb.2012.02.003; Li et al. 2013,
    doi:10.1038/nmeth.2472); ``settle_frames`` of 3 at 1 e/Å² per frame settles over ~3 e/Å².
    """
    if n_frames < 1:
        raise ValueError(f"n_frames: must be at least 1, got {n_frames}")
    if total_px < 0:
        raise ValueError(f"total_px: must be non-negative, got {total_px}")
    if settle_frames is not None and settle_frames <= 0:
        raise ValueError(f"settle_frames: must be positive, got {settle_frames}")
    if not 0 <= creep_fraction <= 1:
        raise ValueError(f"creep_fraction: must be in [0, 1], got {creep_fraction}")
    angle = rng.uniform(0, 2 * np.pi)
    length = total_px * rng.uniform(0.5, 1.5)
    if settle_frames is None and creep_fraction == 0:
        # the model before issue 23 (the ``easy`` preset), with the same random draws
        path = _profile(n_frames, tau_frames=max(n_frames / 4.0, 1.0))[:, None] * length
        drift = path * np.array([np.sin(angle), np.cos(angle)])
    else:
        t = np.arange(n_frames, dtype=np.float64)
        tau = settle_frames if settle_frames is not None else max(n_frames / 4.0, 1.0)
        settle = (1.0 - np.exp(-t / tau)) * (1.0 - creep_fraction) * length
        creep = t / max(n_frames - 1, 1) * creep_fraction * length
        bend = angle + rng.uniform(-np.pi / 3, np.pi / 3)
        drift = settle[:, None] * np.array([np.sin(angle), np.cos(angle)])
        drift += creep[:, None] * np.array([np.sin(bend), np.cos(bend)])
    steps = rng.normal(0.0, jitter_px, size=(n_frames, 2))
    steps[0] = 0.0
    return np.asarray(drift + np.cumsum(steps, axis=0), dtype=np.float64)


def local_motion(
    n_frames: int,
    shape_px: tuple[int, int],
    rng: np.random.Generator,
    *,
    peak_px: float,
    tile_px: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smooth local motion sampled at tile centres.

    The deformation is a quadratic polynomial in position (x, y, xy, x², y², in coordinates
    scaled to [-0.5, 0.5]) whose coefficients grow along the same fast-then-slow path as the
    drift, scaled so that its largest displacement is ``peak_px``.

    Returns
    -------
    centres_y, centres_x : (ty,), (tx,) float64
        Tile centres (px).
    shifts : (n, ty, tx, 2) float64
        Displacement (dy, dx) px of each tile in each frame, zero in frame 0.
    """
    ny, nx = shape_px
    cy = np.arange(tile_px / 2, ny, tile_px, dtype=np.float64)
    cx = np.arange(tile_px / 2, nx, tile_px, dtype=np.float64)
    yy, xx = np.meshgrid(cy / ny - 0.5, cx / nx - 0.5, indexing="ij")
    basis = np.stack([xx, yy, xx * yy, xx * xx, yy * yy])
    coeffs = rng.normal(size=(2, basis.shape[0]))
    field = np.einsum("cb,byx->yxc", coeffs, basis)
    field -= field.mean(axis=(0, 1))
    peak = np.abs(field).max()
    if peak > 0:
        field *= peak_px / peak
    profile = _profile(n_frames, tau_frames=max(n_frames / 4.0, 1.0))
    return cy, cx, profile[:, None, None, None] * field[None]
