"""Class averages from aligned particles: two half-sets, their FRC, a Wiener filter from it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sfft

from cryolive.engines.class2d._frc import frc, resolution_at, ring_index
from cryolive.engines.class2d._geometry import transform

CHUNK = 1024


@dataclass(frozen=True)
class Averages:
    """Wiener-filtered class averages and how well their half-sets agree.

    ``averages`` (k, b, b); ``halves`` (2, k, b, b) the same of the even and odd particles
    alone (each aligned against its own half keeps the FRC honest); ``frc`` (k, b/2 + 1)
    between half-set averages; ``resolution_a`` (k,) at FRC 0.143; ``weight`` (k,) summed
    membership.
    """

    averages: NDArray[np.float32]
    halves: NDArray[np.float32]
    frc: NDArray[np.float64]
    resolution_a: NDArray[np.float64]
    weight: NDArray[np.float64]


def average_classes(
    images: NDArray[np.float32],
    ctf2_rings: NDArray[np.float32],
    *,
    n_classes: int,
    particle: NDArray[np.int64],
    klass: NDArray[np.int64],
    weight: NDArray[np.float64],
    angle_deg: NDArray[np.float64],
    shift_px: NDArray[np.float64],
    pixel_size_a: float,
    angle_bins: int = 240,
    order: int = 3,
    lowpass_floor_a: float | None = None,
) -> Averages:
    """Average CTF-multiplied particles (``images``) into classes.

    Each entry j adds particle ``particle[j]`` to class ``klass[j]`` with ``weight[j]``, after
    undoing its pose (``angle_deg``, ``shift_px`` in pixels): shifts exactly, angles to the
    nearest of ``angle_bins`` by spline interpolation of ``order``. Half-sets are the even and odd
    particle numbers. The average is Σ CTF·X / Σ CTF², filtered by SSNR/(1 + SSNR) with the
    SSNR of the whole set taken from the half-set FRC (2·FRC/(1 - FRC)). With
    ``lowpass_floor_a`` the filter is never below a Gaussian low-pass with its half-maximum at
    that resolution, so that a class whose half-sets do not agree (few or unaligned particles)
    still shows its own low-resolution average instead of a flat (black) image.
    """
    b = images.shape[-1]
    n_rings = b // 2 + 1
    # Undo each pose in two steps: shift back in Fourier space (exact), summed over entries that
    # share a half-set, class and angle; then turn each such sum back once (cubic spline).
    quantum = 360.0 / angle_bins
    angle_bin = np.rint(np.asarray(angle_deg) / quantum).astype(np.int64) % angle_bins
    group = ((particle % 2) * n_classes + klass) * angle_bins + angle_bin
    groups, member = np.unique(group, return_inverse=True)
    ky = np.fft.fftfreq(b)[:, None].astype(np.float32)
    kx = np.fft.rfftfreq(b)[None, :].astype(np.float32)
    shifted_sums = np.zeros((len(groups), b, b // 2 + 1), dtype=np.complex128)
    for start in range(0, len(particle), CHUNK):
        sl = slice(start, start + CHUNK)
        spectra = sfft.rfft2(images[particle[sl]], workers=-1)
        t = np.asarray(shift_px[sl], dtype=np.float32)
        # e^{2πi(ky·dy + kx·dx)} as the product of two small exponentials
        phase_y = np.exp(2j * np.pi * ky[None] * t[:, 0, None, None]).astype(np.complex64)
        phase_x = np.exp(2j * np.pi * kx[None] * t[:, 1, None, None]).astype(np.complex64)
        w = np.asarray(weight[sl], dtype=np.float32)[:, None, None]
        weighted = spectra * (phase_y * w) * phase_x
        by_group = np.argsort(member[sl], kind="stable")
        keys = member[sl][by_group]
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        shifted_sums[keys[starts]] += np.add.reduceat(weighted[by_group], starts, axis=0)
    unshifted = sfft.irfft2(shifted_sums, s=(b, b), workers=-1)
    sums = np.zeros((2 * n_classes, b, b), dtype=np.float64)
    for g, image in zip(groups, unshifted, strict=True):
        half_class, a_bin = divmod(int(g), angle_bins)
        sums[half_class] += transform(image, angle_deg=-a_bin * quantum, order=order)
    sums_by_half = sums.reshape(2, n_classes, b, b)
    group = (particle % 2) * n_classes + klass
    den = np.zeros((2 * n_classes, n_rings), dtype=np.float64)
    np.add.at(den, group, weight[:, None] * ctf2_rings[particle])
    den = den.reshape(2, n_classes, n_rings)
    rings = np.minimum(ring_index(b), n_rings - 1)
    numer = sfft.rfft2(sums_by_half, workers=-1)
    floor = 1e-3 * max(float(den.sum(axis=0).max()), 1e-12)
    halves = sfft.irfft2(numer / (den[..., rings] + floor), s=(b, b), workers=-1)
    raw = frc(halves[0], halves[1])
    curves = raw.copy()
    curves[:, 1:-1] = (raw[:, :-2] + raw[:, 1:-1] + raw[:, 2:]) / 3.0  # less noisy per ring
    curves[:, 0] = 1.0
    ssnr = np.clip(2.0 * curves / np.maximum(1.0 - curves, 1e-3), 0.0, None)
    total = numer.sum(axis=0) / (den.sum(axis=0)[..., rings] + floor)
    wiener = ssnr / (1.0 + ssnr)
    if lowpass_floor_a is not None:
        k_a = np.arange(n_rings) / (b * pixel_size_a)
        wiener = np.maximum(wiener, np.exp(-np.log(2.0) * (k_a * lowpass_floor_a) ** 2)[None])
    filtered = total * wiener[:, rings]
    averages = sfft.irfft2(filtered, s=(b, b), workers=-1).astype(np.float32)
    half_ssnr = np.clip(curves / np.maximum(1.0 - curves, 1e-3), 0.0, None)
    half_filter = (half_ssnr / (1.0 + half_ssnr))[:, rings]
    filtered_halves = sfft.irfft2(
        numer / (den[..., rings] + floor) * half_filter[None], s=(b, b), workers=-1
    ).astype(np.float32)
    weights = den.sum(axis=0)[:, 0]
    resolution = np.array(
        [
            resolution_at(curves[c], pixel_size_a=pixel_size_a, threshold=0.143)
            if weights[c] > 0
            else float("inf")
            for c in range(n_classes)
        ]
    )
    member = np.bincount(klass, weights=weight, minlength=n_classes).astype(np.float64)
    return Averages(
        averages=averages,
        halves=filtered_halves,
        frc=curves,
        resolution_a=resolution,
        weight=member,
    )


def centre_of_mass(image: NDArray[np.float32], mask: NDArray[np.float32]) -> tuple[float, float]:
    """Offset (dy, dx) of the positive density's centre of mass from the box centre, pixels."""
    b = image.shape[-1]
    density = np.clip(image * mask, 0.0, None)
    total = float(density.sum())
    if total <= 0:
        return 0.0, 0.0
    yy, xx = np.mgrid[0:b, 0:b]
    return (
        float((density * yy).sum() / total - b // 2),
        float((density * xx).sum() / total - b // 2),
    )
