"""Optional PyTorch backend for the two full-size stages (alignment spectra and the sums):
the same arithmetic as the numpy path, on any torch device (a GPU when one is at hand).

PyTorch is not a dependency of cryolive: install it to use ``device=...``. The alignment
itself (small Fourier-cropped grids) runs in numpy either way.
"""

from __future__ import annotations

import importlib.util
import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cryolive.engines.motion._defects import DefectMap
from cryolive.engines.motion._fourier import Complex, Float


def torch_available() -> bool:
    """Whether PyTorch can be imported."""
    return importlib.util.find_spec("torch") is not None


def _torch() -> Any:
    if not torch_available():
        raise ValueError("device: needs PyTorch (pip install torch); it is not installed")
    import torch

    return torch


def _corrected(torch: Any, raw: NDArray[np.generic], gain: Any, defects: Any, device: str) -> Any:
    """Frame t as float32 on ``device``, times the gain, defects replaced."""
    array = np.ascontiguousarray(raw)
    if array.dtype.kind == "u" and array.dtype.itemsize > 1:
        array = array.astype(np.int32)  # torch's unsigned types beyond uint8 are limited
    frame = torch.from_numpy(array).to(device=device, dtype=torch.float32)
    if gain is not None:
        frame = frame * gain
    if defects is not None:
        flat = frame.view(-1)
        flat[defects[0]] = flat[defects[1]]
    return frame


def _prepared(
    torch: Any, gain: Float | None, defects: DefectMap | None, device: str
) -> tuple[Any, Any]:
    gain_t = None if gain is None else torch.from_numpy(np.ascontiguousarray(gain)).to(device)
    defects_t = None
    if defects is not None and defects.pixels.size:
        defects_t = (torch.from_numpy(defects.pixels).to(device),
                     torch.from_numpy(defects.sources).to(device))  # fmt: skip
    return gain_t, defects_t


def alignment_spectra_torch(
    frames: NDArray[np.generic],
    *,
    gain: Float | None,
    defects: DefectMap | None,
    binned: bool,
    shape: tuple[int, int],
    device: str,
) -> Complex:
    """(n, ay, ax // 2 + 1) complex64: each frame corrected, 2 x 2 binned if ``binned``,
    transformed and Fourier-cropped to ``shape`` = (ay, ax) (as the numpy path)."""
    torch = _torch()
    gain_t, defects_t = _prepared(torch, gain, defects, device)
    ay, ax = shape
    out = np.empty((frames.shape[0], ay, ax // 2 + 1), dtype=np.complex64)
    for t in range(frames.shape[0]):
        frame = _corrected(torch, frames[t], gain_t, defects_t, device)
        if binned:
            ny, nx = frame.shape[0] // 2 * 2, frame.shape[1] // 2 * 2
            rows = frame[0:ny:2, :nx] + frame[1:ny:2, :nx]
            frame = (rows[:, 0::2] + rows[:, 1::2]) * 0.25
        spectrum = torch.fft.rfft2(frame)
        full = frame.shape
        cropped = torch.cat([spectrum[: ay // 2, : ax // 2 + 1],
                             spectrum[full[0] - ay // 2 :, : ax // 2 + 1]])  # fmt: skip
        cropped = cropped * (ay * ax / (full[0] * full[1]))
        out[t] = cropped.cpu().numpy()
    return out


def sum_frames_torch(
    frames: NDArray[np.generic],
    *,
    gain: Float | None,
    defects: DefectMap | None,
    starts: NDArray[np.int64],
    fractions: NDArray[np.float64],
    core: int,
    margin: int,
    size: int,
    q: Float,
    norm: Float,
    device: str,
) -> tuple[Complex, Complex]:
    """Tile spectra summed over frames, plain and exposure-filtered (see ``_tiles``).

    ``starts``: (n, tiles, 2) top-left corner of each tile in the frame (may lie outside);
    ``fractions``: (n, tiles, 2) sub-pixel part of each shift. Returns (tiles, size, size//2+1)
    complex64 accumulators.
    """
    torch = _torch()
    gain_t, defects_t = _prepared(torch, gain, defects, device)
    n, tiles = starts.shape[:2]
    ky = torch.fft.fftfreq(size, device=device, dtype=torch.float64)[:, None]
    kx = torch.fft.rfftfreq(size, device=device, dtype=torch.float64)[None, :]
    q_t = torch.from_numpy(q).to(device)
    plain = torch.zeros((tiles, size, size // 2 + 1), dtype=torch.complex64, device=device)
    weighted = torch.zeros_like(plain)
    pad = int(max(-starts.min(), (starts.max() + size) - min(frames.shape[1:]), 0)) + 1
    for t in range(n):
        frame = _corrected(torch, frames[t], gain_t, defects_t, device)
        padded = _mirror_pad(torch, frame, pad)
        batch = torch.stack([padded[y + pad : y + pad + size, x + pad : x + pad + size]
                             for y, x in starts[t].tolist()])  # fmt: skip
        spectra = torch.fft.rfft2(batch)
        shift = torch.from_numpy(fractions[t]).to(device)
        phase = 2 * math.pi * (shift[:, 0, None, None] * ky + shift[:, 1, None, None] * kx)
        spectra = spectra * torch.polar(torch.ones_like(phase), phase).to(torch.complex64)
        plain += spectra
        weighted += spectra * q_t[t]
    weighted *= torch.from_numpy(norm).to(device)
    return plain.cpu().numpy(), weighted.cpu().numpy()


def _mirror_pad(torch: Any, frame: Any, pad: int) -> Any:
    """Symmetric mirror padding by ``pad`` px (numpy's ``mode="symmetric"``)."""
    top = frame[:pad].flip(0)
    bottom = frame[frame.shape[0] - pad :].flip(0)
    tall = torch.cat([top, frame, bottom])
    left = tall[:, :pad].flip(1)
    right = tall[:, tall.shape[1] - pad :].flip(1)
    return torch.cat([left, tall, right], dim=1)
