"""The local-motion field: a planted smooth field is recovered from noisy patch shifts, and
pure noise is shrunk to (almost) no field."""

from __future__ import annotations

import numpy as np

from cryolive.engines.motion._field import fit_field


def _grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cy = (np.arange(5) + 0.5) * 4096 / 5
    cx = (np.arange(5) + 0.5) * 4096 / 5
    times = np.arange(10) * 4 + 1.5  # groups of 4 frames of 40
    return cy, cx, times


def _planted(cy: np.ndarray, cx: np.ndarray, times: np.ndarray) -> np.ndarray:
    """(g, 5, 5, 2): a field growing as 1 - exp(-t / 10) and quadratic in position, peak 1.5 px."""
    v, u = np.meshgrid(cy / 4096 - 0.5, cx / 4096 - 0.5, indexing="ij")
    growth = 1 - np.exp(-times / 10.0)
    dy = growth[:, None, None] * (1.2 * u * v + 0.8 * u)
    dx = growth[:, None, None] * (-1.5 * v * v + 0.6 * v)
    return np.stack([dy, dx], axis=-1) * 3.0


def test_a_planted_field_is_recovered_within_0_05_px() -> None:
    cy, cx, times = _grid()
    planted = _planted(cy, cx, times)
    noisy = planted + np.random.default_rng(0).normal(0, 0.1, planted.shape)
    field = fit_field(noisy, cy, cx, times=times, n_frames=40, shape_px=(4096, 4096))
    assert field.shrink > 0.95
    found = field.at(*(g.ravel() for g in np.meshgrid(cy, cx, indexing="ij")))  # (40, 25, 2)
    frames = np.arange(40)
    columns = [np.interp(frames, times, planted[:, i // 5, i % 5, a])
               for i in range(25) for a in range(2)]  # fmt: skip
    expected = np.stack(columns, axis=1).reshape(40, 25, 2)
    inside = (frames >= times[0]) & (frames <= times[-1])
    error = (found - found[inside].mean(axis=0)) - (expected - expected[inside].mean(axis=0))
    assert np.sqrt(np.mean(error[inside] ** 2)) < 0.05
    assert np.sqrt(np.mean(expected[inside] ** 2)) > 0.3


def test_pure_noise_is_shrunk_towards_no_field() -> None:
    cy, cx, times = _grid()
    noise = np.random.default_rng(1).normal(0, 0.1, (10, 5, 5, 2))
    field = fit_field(noise, cy, cx, times=times, n_frames=40, shape_px=(4096, 4096))
    assert field.shrink < 0.5
    found = field.at(cy, cx)
    assert np.sqrt(np.mean(found**2)) < 0.02
