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
    n_frames: int, rng: np.random.Generator, *, total_px: float, jitter_px: float = 0.05
) -> np.ndarray:
    """Whole-frame drift of each frame relative to frame 0, (n, 2) float64 columns (dy, dx) px.

    The path starts fast and slows down (as beam-induced motion does) along a random
    direction; its length is ``total_px`` x U(0.5, 1.5), plus a random walk of ``jitter_px``
    per frame. Frame 0 has zero drift.
    """
    if n_frames < 1:
        raise ValueError(f"n_frames: must be at least 1, got {n_frames}")
    if total_px < 0:
        raise ValueError(f"total_px: must be non-negative, got {total_px}")
    angle = rng.uniform(0, 2 * np.pi)
    length = total_px * rng.uniform(0.5, 1.5)
    path = _profile(n_frames, tau_frames=max(n_frames / 4.0, 1.0))[:, None] * length
    drift = path * np.array([np.sin(angle), np.cos(angle)])
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
