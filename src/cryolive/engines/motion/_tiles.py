"""Shift every frame by its own (local) shifts with Fourier phase ramps and sum, plain and
dose-weighted, tile by tile."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cryolive.engines import fft as pfft
from cryolive.engines.motion._dose import exposure_filters
from cryolive.engines.motion._fourier import (
    Complex,
    Float,
    even_fast_len,
    phase_ramps,
    radial_frequency,
)


@dataclass(frozen=True)
class TileLayout:
    """Square tiles of ``core`` px (the last row/column may be cut by the frame edge), each
    transformed with ``margin`` px of context on every side (``size`` = FFT width)."""

    shape: tuple[int, int]
    core: int
    margin: int

    @property
    def size(self) -> int:
        return even_fast_len(self.core + 2 * self.margin)

    @property
    def counts(self) -> tuple[int, int]:
        return -(-self.shape[0] // self.core), -(-self.shape[1] // self.core)

    def centres(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Centres (y, x) px of the tiles' parts inside the frame, row-major, each (t,)."""
        ty, tx = self.counts
        y = np.array([(i * self.core + min((i + 1) * self.core, self.shape[0])) / 2
                      for i in range(ty)])  # fmt: skip
        x = np.array([(j * self.core + min((j + 1) * self.core, self.shape[1])) / 2
                      for j in range(tx)])  # fmt: skip
        yy, xx = np.meshgrid(y, x, indexing="ij")
        return yy.ravel(), xx.ravel()


def sum_frames(
    frame_into: Callable[[int, Float], None],
    n_frames: int,
    layout: TileLayout,
    tile_shifts_px: NDArray[np.float64],
    *,
    pixel_size_a: float,
    dose_per_frame_e_per_a2: float,
    pre_exposure_e_per_a2: float,
    voltage_kv: float,
    workers: int,
    torch_job: Callable[..., tuple[Complex, Complex]] | None = None,
) -> tuple[Float, Float]:
    """Plain and dose-weighted sums of the frames, each moved back by its shifts.

    Parameters
    ----------
    frame_into
        ``frame_into(t, out)`` writes frame t, gain-corrected, into ``out`` (y, x) float32.
    n_frames
        Number of frames.
    layout
        Tiles; within a tile a frame moves rigidly by the shift at the tile's centre.
    tile_shifts_px : (n, tiles, 2) float64
        (dy, dx) px by which the content of frame t moved at each tile centre.
    torch_job
        When given, ``torch_job(starts=, fractions=, core=, margin=, size=, q=, norm=)``
        makes the accumulators instead of the numpy loop (the PyTorch backend).

    Returns
    -------
    plain, dose_weighted : (y, x) float32
    """
    size, core, margin = layout.size, layout.core, layout.margin
    ty, tx = layout.counts
    whole = np.rint(tile_shifts_px).astype(np.int64)
    fraction = tile_shifts_px - whole
    q, norm = exposure_filters(
        radial_frequency((size, size), pixel_size_a),
        n_frames=n_frames,
        dose_per_frame_e_per_a2=dose_per_frame_e_per_a2,
        pre_exposure_e_per_a2=pre_exposure_e_per_a2,
        voltage_kv=voltage_kv,
    )
    if torch_job is not None:
        corners = np.array([[(k // tx) * core - margin, (k % tx) * core - margin]
                            for k in range(ty * tx)])  # fmt: skip
        plain, weighted = torch_job(starts=corners[None] + whole, fractions=fraction, core=core,
                                    margin=margin, size=size, q=q, norm=norm)  # fmt: skip
    else:
        plain, weighted = _accumulate(frame_into, n_frames, layout, whole, fraction, q, norm,
                                      workers=workers)  # fmt: skip
    return _stitch(plain, layout, workers), _stitch(weighted, layout, workers)


def _accumulate(
    frame_into: Callable[[int, Float], None],
    n_frames: int,
    layout: TileLayout,
    whole: NDArray[np.int64],
    fraction: NDArray[np.float64],
    q: Float,
    norm: Float,
    *,
    workers: int,
) -> tuple[Complex, Complex]:
    """The numpy path: tile spectra of every frame, moved and summed (plain, filtered)."""
    ny, nx = layout.shape
    size, core, margin = layout.size, layout.core, layout.margin
    ty, tx = layout.counts
    pad = max(margin, size - core - margin) + int(np.abs(whole).max(initial=0)) + 1
    count = ty * tx
    plain = np.zeros((count, size, size // 2 + 1), dtype=np.complex64)
    weighted = np.zeros_like(plain)
    padded = np.empty((ny + 2 * pad, nx + 2 * pad), dtype=np.float32)
    for t in range(n_frames):
        frame_into(t, padded[pad : pad + ny, pad : pad + nx])
        _mirror_edges(padded, pad)
        ry, rx = phase_ramps(fraction[t], (size, size))
        # One tile at a time, transformed straight from the padded frame (no copy): its
        # spectrum stays in cache through the phase ramps, the dose filter and both
        # accumulations, where a whole frame's tile spectra would go to memory and back for
        # each of those passes.
        for k in range(count):
            y0 = pad + (k // tx) * core - margin + int(whole[t, k, 0])
            x0 = pad + (k % tx) * core - margin + int(whole[t, k, 1])
            spectrum = pfft.rfft2(padded[y0 : y0 + size, x0 : x0 + size], workers=workers)
            spectrum *= ry[k]
            spectrum *= rx[k]
            plain[k] += spectrum
            spectrum *= q[t]
            weighted[k] += spectrum
    weighted *= norm
    return plain, weighted


def _stitch(spectra: Complex, layout: TileLayout, workers: int) -> Float:
    """Inverse-transform the tiles and put their cores side by side, (y, x) float32."""
    ny, nx = layout.shape
    size, core, margin = layout.size, layout.core, layout.margin
    tx = layout.counts[1]
    image = np.empty((ny, nx), dtype=np.float32)
    for k in range(spectra.shape[0]):  # tile by tile: no full stack of real tiles in memory
        real = pfft.irfft2(spectra[k], s=(size, size), workers=workers)
        y0, x0 = (k // tx) * core, (k % tx) * core
        h, w = min(core, ny - y0), min(core, nx - x0)
        image[y0 : y0 + h, x0 : x0 + w] = real[margin : margin + h, margin : margin + w]
    return image


def _mirror_edges(padded: Float, pad: int) -> None:
    """Fill the ``pad`` px border of ``padded`` with the mirror image of its middle (in place):
    no step at the frame edge for a sub-pixel shift to ring at."""
    ny, nx = padded.shape[0] - 2 * pad, padded.shape[1] - 2 * pad
    if pad > min(ny, nx):
        middle = padded[pad : pad + ny, pad : pad + nx].copy()
        padded[...] = np.pad(middle, pad, mode="symmetric")
        return
    rows = slice(pad, pad + ny)
    padded[rows, :pad] = padded[rows, 2 * pad - 1 : pad - 1 : -1]
    padded[rows, pad + nx :] = padded[rows, pad + nx - 1 : nx - 1 : -1]
    padded[:pad] = padded[2 * pad - 1 : pad - 1 : -1]
    padded[pad + ny :] = padded[pad + ny - 1 : ny - 1 : -1]
