"""The FFTs of ``scipy.fft`` (its pocketfft) without the import of ``scipy.fft``.

``import scipy.fft`` costs ~0.25 s of CPU (its array-API layer, docstring parsing,
``scipy.special``) before one transform runs: more than the transforms of a one-micrograph
``cryolive ctf`` call or a small ``cryolive motioncorr`` job. The transforms themselves are
one compiled module, ``scipy.fft._pocketfft.pypocketfft``, which imports in ~1 ms. This module
loads that extension on its own, under its own name in ``sys.modules`` (so a later
``import scipy.fft`` reuses it rather than loading a second copy), and offers the few
``scipy.fft`` functions the motion, CTF and ice engines use, with the same arguments and the
same results bit for bit (the same calls into the same library). Should the file not be
where it is expected (another scipy layout), ``scipy.fft``'s own import is the fallback.

``workers``: threads per transform, as in ``scipy.fft`` (default 1; -1 = every CPU).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from functools import lru_cache
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

_NAME = "scipy.fft._pocketfft.pypocketfft"


@lru_cache(maxsize=1)
def _pocketfft() -> Any:
    """scipy's compiled pocketfft module, loaded without ``scipy.fft``'s package import."""
    loaded = sys.modules.get(_NAME)
    if loaded is not None:
        return loaded
    module = _load_alone()
    if module is None:  # another layout of scipy: pay for the package import
        from scipy.fft._pocketfft import pypocketfft

        return pypocketfft
    return module


def _load_alone() -> ModuleType | None:
    scipy = importlib.util.find_spec("scipy")  # finds the package without importing it
    if scipy is None or not scipy.submodule_search_locations:
        return None
    folder = os.path.join(scipy.submodule_search_locations[0], "fft", "_pocketfft")
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = os.path.join(folder, "pypocketfft" + suffix)
        if os.path.isfile(path):
            loader = importlib.machinery.ExtensionFileLoader(_NAME, path)
            spec = importlib.util.spec_from_file_location(_NAME, path, loader=loader)
            if spec is None:
                return None
            module = importlib.util.module_from_spec(spec)
            loader.exec_module(module)
            sys.modules[_NAME] = module
            return module
    return None


def _float_array(x: ArrayLike) -> NDArray[Any]:
    """``x`` as float32/64 or complex64/128 (float16 → float32, integers → float64), aligned
    and in native byte order, as ``scipy.fft`` converts its input."""
    a = np.asarray(x)
    if a.dtype == np.float16:
        return np.asarray(a, np.float32)
    if a.dtype.kind not in "fc":
        return np.asarray(a, np.float64)
    dtype = a.dtype.newbyteorder("=")
    return np.array(a, dtype=dtype, copy=True if not a.flags["ALIGNED"] else None)


def _workers(workers: int | None) -> int:
    if workers is None:
        return 1
    if workers == 0:
        raise ValueError("workers must not be zero")
    if workers < 0:
        cpus = os.cpu_count() or 1
        if workers < -cpus:
            raise ValueError(f"workers: {workers} is below -{cpus} (the CPU count)")
        return workers + 1 + cpus
    return workers


def _fit(a: NDArray[Any], shape: Sequence[int], axes: Sequence[int]) -> NDArray[Any]:
    """``a`` cropped or zero-padded (at the end) to ``shape`` along ``axes``."""
    index = [slice(None)] * a.ndim
    pad = False
    for n, axis in zip(shape, axes, strict=True):
        if n < 1:
            raise ValueError(f"invalid number of data points ({n}) specified")
        index[axis] = slice(0, min(n, a.shape[axis]))
        pad = pad or a.shape[axis] < n
    if not pad:
        return a[tuple(index)]
    full = list(a.shape)
    for n, axis in zip(shape, axes, strict=True):
        full[axis] = n
    out = np.zeros(full, a.dtype)
    out[tuple(index)] = a[tuple(index)]
    return out


def rfft(x: ArrayLike, *, axis: int = -1, workers: int | None = None) -> NDArray[Any]:
    """1D FFT of real input along ``axis`` (``scipy.fft.rfft``)."""
    a = _float_array(x)
    if a.dtype.kind == "c":
        raise TypeError("x must be a real sequence")
    return np.asarray(_pocketfft().r2c(a, (axis,), True, 0, None, _workers(workers)))


def fft(
    x: ArrayLike, *, axis: int = -1, overwrite_x: bool = False, workers: int | None = None
) -> NDArray[Any]:
    """1D complex FFT along ``axis`` (``scipy.fft.fft``); ``overwrite_x``: may reuse ``x``."""
    a = _float_array(x)
    out = a if overwrite_x and a.dtype.kind == "c" else None
    return np.asarray(_pocketfft().c2c(a, (axis,), True, 0, out, _workers(workers)))


def fft2(x: ArrayLike, *, workers: int | None = None) -> NDArray[Any]:
    """2D complex FFT over the last two axes (``scipy.fft.fft2``)."""
    return np.asarray(_pocketfft().c2c(_float_array(x), (-2, -1), True, 0, None, _workers(workers)))


def rfftn(
    x: ArrayLike, *, axes: Sequence[int] = (-2, -1), workers: int | None = None
) -> NDArray[Any]:
    """FFT of real input over ``axes``, the last one halved (``scipy.fft.rfftn``)."""
    a = _float_array(x)
    if a.dtype.kind == "c":
        raise TypeError("x must be a real sequence")
    axes = tuple(ax % a.ndim for ax in axes)
    return np.asarray(_pocketfft().r2c(a, axes, True, 0, None, _workers(workers)))


def rfft2(x: ArrayLike, *, workers: int | None = None) -> NDArray[Any]:
    """2D FFT of real input over the last two axes (``scipy.fft.rfft2``)."""
    return rfftn(x, axes=(-2, -1), workers=workers)


def irfft2(
    x: ArrayLike,
    *,
    s: tuple[int, int] | None = None,
    overwrite_x: bool = False,
    workers: int | None = None,
) -> NDArray[Any]:
    """Inverse of :func:`rfft2` to real output of shape ``s`` (``scipy.fft.irfft2``,
    normalised by 1/N). ``overwrite_x`` is accepted and, as in scipy, not used."""
    del overwrite_x
    a = _float_array(x)
    if a.dtype.kind != "c":
        a = a + 0j
    ny, nx = (a.shape[-2], 2 * (a.shape[-1] - 1)) if s is None else s
    axes = (a.ndim - 2, a.ndim - 1)
    a = _fit(a, (ny, nx // 2 + 1), axes)
    return np.asarray(_pocketfft().c2r(a, axes, nx, False, 2, None, _workers(workers)))


@lru_cache(maxsize=256)
def next_fast_len(target: int, real: bool = False) -> int:
    """Smallest length ≥ ``target`` that pocketfft transforms fast (``scipy.fft.next_fast_len``)."""
    return int(_pocketfft().good_size(target, real))
