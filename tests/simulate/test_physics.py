"""The simulator plants drift, defocus and dose; these tests recover them from the files."""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest
import tifffile
from scipy import optimize

from cryolive.simulate import MovieConfig, VisitConfig, ctf_2d, simulate_visit
from cryolive.simulate._optics import electron_wavelength_a


def _movie(truth_dir: Path, truth, index: int = 0):
    return truth.grids[0].movies[index], truth_dir / truth.grids[0].movies[index].movie


def _shift_between(ref: np.ndarray, img: np.ndarray) -> np.ndarray:
    """Sub-pixel (dy, dx) by which ``img``'s content moved from ``ref`` (Fourier CC maximum)."""
    window = np.outer(np.hanning(ref.shape[0]), np.hanning(ref.shape[1]))
    a = np.fft.fft2((ref - ref.mean()) * window)
    b = np.fft.fft2((img - img.mean()) * window)
    cross = np.conj(a) * b
    cc = np.fft.ifft2(cross).real
    peak = np.array(np.unravel_index(np.argmax(cc), cc.shape), dtype=float)
    peak = np.where(peak > np.array(cc.shape) / 2, peak - np.array(cc.shape), peak)
    ky = np.fft.fftfreq(ref.shape[0])[:, None]
    kx = np.fft.fftfreq(ref.shape[1])[None, :]

    def negative_cc(s: np.ndarray) -> float:
        return -float((cross * np.exp(2j * np.pi * (ky * s[0] + kx * s[1]))).real.sum())

    return optimize.minimize(negative_cc, peak, method="Nelder-Mead", options={"xatol": 1e-4}).x


def test_cross_correlation_recovers_planted_drift_within_0_05_px(tmp_path: Path) -> None:
    config = VisitConfig(
        movies_per_grid=1,
        format="mrc",
        movie=MovieConfig(
            n_frames=8, noiseless=True, local_motion_px=0.0, drift_total_px=6.0,
            radiation_damage=False, particle_density=0.4,
        ),
        seed=3,
    )  # fmt: skip
    truth = simulate_visit(config, tmp_path)
    movie, path = _movie(tmp_path, truth)
    with mrcfile.open(path) as mrc:
        frames = mrc.data.astype(np.float64)
    assert frames.shape == (8, 256, 256)
    planted = np.stack([movie.drift_y_px, movie.drift_x_px], axis=1)
    assert np.abs(planted[-1]).max() > 1.5, "the test needs a drift worth recovering"
    for t in range(1, 8):
        found = _shift_between(frames[0], frames[t])
        np.testing.assert_allclose(found, planted[t], atol=0.05)


def _ctf_zeros_1_per_a(
    defocus_a: float, *, voltage_kv: float, cs_mm: float, amp: float, k_max: float
) -> np.ndarray:
    lam = electron_wavelength_a(voltage_kv)
    k = np.linspace(1e-4, k_max, 200_000)
    chi = np.pi * lam * defocus_a * k**2 - 0.5 * np.pi * cs_mm * 1e7 * lam**3 * k**4
    total = chi + np.arctan(amp / np.sqrt(1 - amp * amp))
    n = np.floor(total / np.pi)
    return k[1:][np.diff(n) != 0]


def test_thon_ring_zeros_sit_where_the_planted_defocus_puts_them(tmp_path: Path) -> None:
    config = VisitConfig(
        movies_per_grid=1,
        format="tiff",
        shape_px=(512, 512),
        movie=MovieConfig(
            n_frames=2, noiseless=True, local_motion_px=0.0, drift_total_px=0.0,
            astigmatism_max_a=0.0, defocus_range_a=(12000.0, 12000.0), envelope_bfactor_a2=20.0,
        ),
        seed=5,
    )  # fmt: skip
    truth = simulate_visit(config, tmp_path)
    movie, path = _movie(tmp_path, truth)
    micrograph = tifffile.imread(path).astype(np.float64).sum(axis=0)
    power = np.abs(np.fft.fftshift(np.fft.fft2(micrograph - micrograph.mean()))) ** 2
    n = micrograph.shape[0]
    yy, xx = np.indices(power.shape) - n // 2
    radius = np.hypot(yy, xx).round().astype(int)
    profile = np.bincount(radius.ravel(), power.ravel()) / np.bincount(radius.ravel())
    k_per_bin = 1.0 / (n * movie.pixel_size_a)
    zeros = _ctf_zeros_1_per_a(
        movie.defocus_u_a, voltage_kv=movie.voltage_kv, cs_mm=movie.cs_mm,
        amp=movie.amplitude_contrast, k_max=0.4,
    )  # fmt: skip
    checked = 0
    for k0 in zeros:
        spacing = np.min(np.abs(np.diff(zeros)))
        b0 = k0 / k_per_bin
        half = max(2, int(0.4 * spacing / k_per_bin))
        if b0 - half < 8 or b0 + half >= n // 2 - 4:
            continue
        lo, hi = int(b0) - half, int(b0) + half + 1
        found = lo + int(np.argmin(profile[lo:hi]))
        assert abs(found - b0) <= 1.0, (
            f"zero at {k0:.4f} 1/Å: minimum at bin {found}, expected {b0:.1f}"
        )
        checked += 1
    assert checked >= 5
    # and a 10 % wrong defocus would put the zeros elsewhere
    wrong = _ctf_zeros_1_per_a(
        movie.defocus_u_a * 1.1, voltage_kv=300, cs_mm=2.7, amp=0.07, k_max=0.4
    )
    assert np.abs(wrong[4] - zeros[4]) / k_per_bin > 2


def test_counted_electrons_match_the_dose_within_poisson_error(tmp_path: Path) -> None:
    config = VisitConfig(
        movies_per_grid=1,
        format="tiff",
        movie=MovieConfig(
            n_frames=8, dose_e_per_a2=20.0, particle_density=0.0, gain_spread=0.0,
            hot_pixel_fraction=0.0, dead_pixel_fraction=0.0, inelastic_mean_free_path_a=1e12,
            ice_texture=0.0,
        ),
        seed=7,
    )  # fmt: skip
    truth = simulate_visit(config, tmp_path)
    movie, path = _movie(tmp_path, truth)
    counts = tifffile.imread(path)
    assert counts.dtype == np.uint8
    expected = movie.dose_per_frame_e_per_px * counts.size
    assert movie.dose_per_frame_e_per_px == pytest.approx(20.0 / 8 * 1.0**2)
    assert abs(int(counts.sum(dtype=np.int64)) - expected) < 4 * np.sqrt(expected)
    fano = counts.var(axis=0, ddof=1).mean() / counts.mean()
    assert fano == pytest.approx(1.0, abs=0.05)


def test_ctf_is_zero_at_the_first_predicted_zero() -> None:
    ctf = ctf_2d((1024, 1024), pixel_size_a=1.0, defocus_u_a=15000.0, defocus_v_a=15000.0)
    k0 = _ctf_zeros_1_per_a(15000.0, voltage_kv=300, cs_mm=2.7, amp=0.07, k_max=0.2)[0]
    column = int(np.round(k0 * 1024))
    assert abs(ctf[0, column]) < 0.1
    assert abs(ctf[0, column // 2]) > 0.5


def test_local_motion_of_a_tile_is_recovered_within_0_1_px(tmp_path: Path) -> None:
    config = VisitConfig(
        movies_per_grid=1,
        format="mrc",
        shape_px=(512, 512),
        movie=MovieConfig(
            n_frames=4, noiseless=True, local_motion_px=1.5, drift_total_px=0.0,
            radiation_damage=False, particle_density=0.4,
        ),
        seed=8,
    )  # fmt: skip
    truth = simulate_visit(config, tmp_path)
    movie, path = _movie(tmp_path, truth)
    with mrcfile.open(path) as mrc:
        frames = mrc.data.astype(np.float64)
    local = movie.local_motion
    assert local is not None and local.tile_px == 64
    planted = np.stack([np.array(local.dy_px[-1]), np.array(local.dx_px[-1])], axis=-1)
    drift = np.array([movie.drift_y_px[-1], movie.drift_x_px[-1]])
    for row, col in ((2, 2), (2, 5), (5, 3)):
        expected = planted[row, col] + drift
        tile = (slice(row * 64, row * 64 + 64), slice(col * 64, col * 64 + 64))
        found = _shift_between(frames[0][tile], frames[-1][tile])
        np.testing.assert_allclose(found, expected, atol=0.1)
    spread = np.abs(planted[2, 2] - planted[5, 3]).max()
    assert spread > 0.3, "the tiles should move differently"
