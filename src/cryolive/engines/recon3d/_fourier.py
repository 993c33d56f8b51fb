"""Central-slice projection and reconstruction in Fourier space (trilinear, padded twice).

Images and volumes are centred at ``box // 2`` (per axis). Image transforms are in ``rfft2``
layout of the centred image (``rfft2(ifftshift(image))``), so a projection from
:meth:`Projector.project` and the transform from :func:`image_transforms` compare directly.
The volume is padded (``pad`` times, zeros) before its transform, and corrected for the trilinear
kernel (gridding), so slices are accurate to Nyquist.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Complex = NDArray[np.complex64]
Real = NDArray[np.float32]


def image_transforms(images: NDArray[np.floating]) -> Complex:
    """(n, b, b) real images → (n, b, b//2+1) transforms of the centred images."""
    stack = np.asarray(images, dtype=np.float32)
    return np.fft.rfft2(np.fft.ifftshift(stack, axes=(-2, -1))).astype(np.complex64)


def images_from_transforms(transforms: NDArray[np.complexfloating], box: int) -> Real:
    """Inverse of :func:`image_transforms`."""
    real = np.fft.irfft2(transforms, s=(box, box))
    return np.fft.fftshift(real, axes=(-2, -1)).astype(np.float32)


def frequency_grid(box: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(ky, kx) integer frequency indices of the rfft2 grid, each (b, b//2+1)."""
    ky = np.fft.fftfreq(box, d=1.0 / box)[:, None]
    kx = np.arange(box // 2 + 1, dtype=np.float64)[None, :]
    ky_grid, kx_grid = np.broadcast_arrays(ky, kx)
    return np.ascontiguousarray(ky_grid), np.ascontiguousarray(kx_grid)


def shift_phases(box: int, shifts_px: NDArray[np.floating]) -> Complex:
    """Phase factors that move images by ``shifts_px`` (n, 2: x, y) pixels (rfft2 layout)."""
    ky, kx = frequency_grid(box)
    s = np.asarray(shifts_px, dtype=np.float64).reshape(-1, 2)
    phase = -2.0 * np.pi * (s[:, 0, None, None] * kx + s[:, 1, None, None] * ky) / box
    return np.asarray(np.exp(1j * phase), dtype=np.complex64)


def shell_index(box: int) -> NDArray[np.int64]:
    """Each rfft2 point's shell (rounded radius in frequency indices), (b, b//2+1)."""
    ky, kx = frequency_grid(box)
    return np.rint(np.hypot(kx, ky)).astype(np.int64)


def _sinc2(n: int, big: int) -> NDArray[np.float64]:
    """sinc² of the trilinear kernel along one axis of a ``big`` grid, for ``n`` centred samples."""
    x = (np.arange(n) - n // 2) / big
    return np.sinc(x) ** 2


def _pad_centred(volume: NDArray[np.floating], size: int) -> NDArray[np.float32]:
    box = volume.shape[0]
    out = np.zeros((size, size, size), dtype=np.float32)
    lo = size // 2 - box // 2
    out[lo : lo + box, lo : lo + box, lo : lo + box] = volume
    return out


def _crop_centred(volume: NDArray[np.floating], box: int) -> NDArray[np.float32]:
    size = volume.shape[0]
    lo = size // 2 - box // 2
    return np.asarray(volume[lo : lo + box, lo : lo + box, lo : lo + box], dtype=np.float32)


def _check_volume(volume: NDArray[np.floating]) -> int:
    if volume.ndim != 3 or len(set(volume.shape)) != 1:
        raise ValueError(f"volume: must be a cube, got shape {volume.shape}")
    box = int(volume.shape[0])
    if box < 8 or box % 2:
        raise ValueError(f"volume: box must be even and at least 8, got {box}")
    return box


def _slice_coordinates(
    rotations: NDArray[np.floating], box: int, pad: int
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Padded-grid coordinates (n, m, 3: z, y, x) of each rfft2 point inside the Nyquist sphere."""
    ky, kx = frequency_grid(box)
    inside = np.hypot(kx, ky) < box / 2
    k2 = np.stack([kx[inside], ky[inside], np.zeros(int(inside.sum()))], axis=0)  # (3, m)
    a = np.asarray(rotations, dtype=np.float64).reshape(-1, 3, 3)
    r = np.einsum("nji,jm->nmi", a, k2)  # Aᵀ k: (n, m, 3) as x, y, z
    size = pad * box
    coords = r[..., ::-1] * pad + size // 2  # z, y, x in the padded, centred grid
    return coords, inside


def _corners(
    coords: NDArray[np.float64], size: int
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Flat indices (…, 8) and trilinear weights (…, 8) of each coordinate's corners."""
    base = np.floor(coords)
    frac = coords - base
    base_i = base.astype(np.int64)
    idx = []
    wts = []
    for dz in (0, 1):
        wz = frac[..., 0] if dz else 1.0 - frac[..., 0]
        for dy in (0, 1):
            wy = frac[..., 1] if dy else 1.0 - frac[..., 1]
            for dx in (0, 1):
                wx = frac[..., 2] if dx else 1.0 - frac[..., 2]
                z = np.clip(base_i[..., 0] + dz, 0, size - 1)
                y = np.clip(base_i[..., 1] + dy, 0, size - 1)
                x = np.clip(base_i[..., 2] + dx, 0, size - 1)
                idx.append((z * size + y) * size + x)
                wts.append(wz * wy * wx)
    return np.stack(idx, axis=-1), np.stack(wts, axis=-1)


@dataclass
class Projector:
    """A volume's padded Fourier transform, from which central slices are cut.

    Parameters
    ----------
    volume : (b, b, b) float
        The map, indexed [z, y, x], centred at b//2.
    pad : int
        Padding factor (2 keeps trilinear interpolation accurate).
    """

    volume: NDArray[np.floating]
    pad: int = 2

    def __post_init__(self) -> None:
        self.box = _check_volume(self.volume)
        size = self.pad * self.box
        w = _sinc2(self.box, size)
        corrected = np.asarray(self.volume, dtype=np.float64) / (
            w[:, None, None] * w[None, :, None] * w[None, None, :]
        )
        padded = _pad_centred(corrected, size)
        self._ft = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(padded))).astype(np.complex64)
        self._flat = self._ft.reshape(-1)

    def project(
        self, rotations: NDArray[np.floating], shifts_px: NDArray[np.floating] | None = None
    ) -> Complex:
        """Slices for (n, 3, 3) RELION matrices, optionally moved by (n, 2) pixel shifts.

        Returns (n, b, b//2+1) complex64 in :func:`image_transforms` layout (zero beyond Nyquist).
        """
        a = np.asarray(rotations, dtype=np.float64).reshape(-1, 3, 3)
        n = a.shape[0]
        out = np.zeros((n, self.box, self.box // 2 + 1), dtype=np.complex64)
        chunk = max(1, 2_000_000 // (self.box * self.box))
        for lo in range(0, n, chunk):
            coords, inside = _slice_coordinates(a[lo : lo + chunk], self.box, self.pad)
            idx, wts = _corners(coords, self.pad * self.box)
            values = (self._flat[idx] * wts.astype(np.float32)).sum(axis=-1)
            out[lo : lo + chunk][:, inside] = values
        if shifts_px is not None:
            out *= shift_phases(self.box, shifts_px)
        return out


class Reconstructor:
    """Accumulates CTF-weighted image transforms into a padded 3D Fourier grid.

    ``insert`` adds Σ CTF·F and Σ CTF² (trilinear splatting); ``reconstruct`` divides, with a
    Wiener term per shell (from a given SSNR, or a small constant), and corrects the gridding.
    """

    def __init__(self, box: int, pad: int = 2) -> None:
        if box < 8 or box % 2:
            raise ValueError(f"box must be even and at least 8, got {box}")
        self.box = box
        self.pad = pad
        self.size = pad * box
        n = self.size**3
        self._data_re = np.zeros(n, dtype=np.float64)
        self._data_im = np.zeros(n, dtype=np.float64)
        self._weight = np.zeros(n, dtype=np.float64)
        self.count = 0

    def insert(
        self,
        transforms: NDArray[np.complexfloating],
        rotations: NDArray[np.floating],
        ctf: NDArray[np.floating] | None = None,
        weights: NDArray[np.floating] | None = None,
    ) -> None:
        """Add images (n, b, b//2+1, centred transforms, already un-shifted) at ``rotations``.

        ``ctf`` (n, b, b//2+1) multiplies each image (and its square the weight); ``weights``
        (n,) scales whole images (e.g. probabilities).
        """
        f = np.asarray(transforms).reshape(-1, self.box, self.box // 2 + 1)
        a = np.asarray(rotations, dtype=np.float64).reshape(-1, 3, 3)
        if f.shape[0] != a.shape[0]:
            raise ValueError(f"{f.shape[0]} images but {a.shape[0]} rotations")
        n = f.shape[0]
        w_img = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
        # the kx = 0 column holds both k and -k: half weight, as the symmetrisation adds both
        column = np.ones((self.box, self.box // 2 + 1))
        column[:, 0] = 0.5
        chunk = max(1, 1_000_000 // (self.box * self.box))
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            coords, inside = _slice_coordinates(a[lo:hi], self.box, self.pad)
            idx, wts = _corners(coords, self.size)
            c = (
                np.ones((hi - lo, self.box, self.box // 2 + 1))
                if ctf is None
                else np.asarray(ctf[lo:hi], dtype=np.float64)
            )
            scale = (w_img[lo:hi, None, None] * column)[:, inside]
            cv = c[:, inside]
            value = f[lo:hi][:, inside] * (cv * scale)
            weight = cv * cv * scale
            flat = idx.reshape(-1)
            self._data_re += np.bincount(
                flat, (wts * value.real[..., None]).reshape(-1), minlength=self._weight.size
            )
            self._data_im += np.bincount(
                flat, (wts * value.imag[..., None]).reshape(-1), minlength=self._weight.size
            )
            self._weight += np.bincount(
                flat, (wts * weight[..., None]).reshape(-1), minlength=self._weight.size
            )
        self.count += n

    def merge(self, other: Reconstructor) -> None:
        """Add another reconstructor's sums (same box and padding)."""
        if (other.box, other.pad) != (self.box, self.pad):
            raise ValueError("cannot merge reconstructors of different box or padding")
        self._data_re += other._data_re
        self._data_im += other._data_im
        self._weight += other._weight
        self.count += other.count

    def _symmetrised(self) -> tuple[NDArray[np.complex128], NDArray[np.float64]]:
        shape = (self.size,) * 3
        data = (self._data_re + 1j * self._data_im).reshape(shape)
        weight = self._weight.reshape(shape)
        # the transform of a real map is Hermitian: F(-q) = conj F(q)
        flip_d = np.roll(np.flip(data), 1, axis=(0, 1, 2))
        flip_w = np.roll(np.flip(weight), 1, axis=(0, 1, 2))
        return data + np.conj(flip_d), weight + flip_w

    def radial_shells(self) -> NDArray[np.int64]:
        """Each padded-grid voxel's shell, in the unpadded box's frequency indices."""
        c = np.arange(self.size) - self.size // 2
        r = np.sqrt(c[:, None, None] ** 2 + c[None, :, None] ** 2 + c[None, None, :] ** 2)
        return np.asarray(np.rint(r / self.pad), dtype=np.int64)

    def reconstruct(self, ssnr: NDArray[np.floating] | None = None) -> Real:
        """The map (b, b, b) float32.

        ``ssnr`` (per shell, length ≥ b//2): a Wiener filter F = ΣCF / (ΣC² + mean ΣC² / SSNR)
        per shell; without it a small constant (1e-3 of the mean weight) keeps empty voxels at 0.
        """
        data, weight = self._symmetrised()
        shells = self.radial_shells()
        nyq = self.box // 2
        inside = shells < nyq
        mean_w = float(weight[inside].mean()) if inside.any() else 1.0
        if ssnr is None:
            reg = np.full(weight.shape, 1e-3 * mean_w + 1e-12)
        else:
            s = np.asarray(ssnr, dtype=np.float64)
            per_shell = np.full(nyq + 2, 1e-12)
            counts = np.bincount(shells[inside], minlength=nyq + 2)[: nyq + 2]
            sums = np.bincount(shells[inside], weight[inside], minlength=nyq + 2)[: nyq + 2]
            shell_mean = sums / np.maximum(counts, 1)
            snr = np.zeros(nyq + 2)
            snr[: min(len(s), nyq + 2)] = np.clip(s[: nyq + 2], 0, None)
            with np.errstate(divide="ignore"):
                per_shell = np.where(snr > 0, shell_mean / np.maximum(snr, 1e-6), 1e30)
            per_shell = np.maximum(per_shell, 1e-3 * mean_w + 1e-12)
            reg = per_shell[np.minimum(shells, nyq + 1)]
        ft = np.where(inside, data / (weight + reg), 0.0)
        real = np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(ft))).real
        w = _sinc2(self.size, self.size)
        real /= w[:, None, None] * w[None, :, None] * w[None, None, :]
        return _crop_centred(real, self.box)


def fsc(map1: NDArray[np.floating], map2: NDArray[np.floating]) -> NDArray[np.float64]:
    """Fourier shell correlation per shell 0 … b//2 (shell = rounded radius in indices)."""
    box = _check_volume(np.asarray(map1))
    if np.shape(map2) != np.shape(map1):
        raise ValueError(f"maps differ in shape: {np.shape(map1)} and {np.shape(map2)}")
    f1 = np.fft.rfftn(np.asarray(map1, dtype=np.float64))
    f2 = np.fft.rfftn(np.asarray(map2, dtype=np.float64))
    kz = np.fft.fftfreq(box, d=1.0 / box)[:, None, None]
    ky = np.fft.fftfreq(box, d=1.0 / box)[None, :, None]
    kx = np.arange(box // 2 + 1)[None, None, :]
    shells = np.rint(np.sqrt(kz**2 + ky**2 + kx**2)).astype(np.int64)
    n = box // 2 + 1
    keep = shells < n
    s = shells[keep]
    cross = np.bincount(s, (f1 * np.conj(f2)).real[keep], minlength=n)
    p1 = np.bincount(s, (np.abs(f1) ** 2)[keep], minlength=n)
    p2 = np.bincount(s, (np.abs(f2) ** 2)[keep], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = cross / np.sqrt(p1 * p2)
    return np.asarray(np.nan_to_num(out, nan=0.0), dtype=np.float64)


def shell_resolution_a(box: int, pixel_size_a: float) -> NDArray[np.float64]:
    """Resolution (Å) of shells 0 … b//2 (shell 0: infinity)."""
    shells = np.arange(box // 2 + 1, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(shells > 0, box * pixel_size_a / np.maximum(shells, 1e-12), np.inf)


def resolution_at(
    curve: NDArray[np.floating], box: int, pixel_size_a: float, threshold: float
) -> float:
    """Resolution (Å) where the FSC first falls below ``threshold`` (interpolated)."""
    c = np.asarray(curve, dtype=np.float64)
    below = np.flatnonzero(c[1:] < threshold)
    if below.size == 0:
        return 2.0 * pixel_size_a
    k = int(below[0]) + 1  # first shell under the threshold
    if k <= 1:
        return float(box * pixel_size_a)
    hi, lo = c[k - 1], c[k]
    t = (hi - threshold) / (hi - lo) if hi != lo else 0.0
    shell = (k - 1) + t
    return float(box * pixel_size_a / shell)
