"""CTF benchmark: seconds per 4096² micrograph and accuracy against planted truth.

Micrographs: 1 Å/px, 300 kV, Cs 2.7 mm, 7 % amplitude contrast, 40 e/px, a weak-phase
white-noise object through an astigmatic CTF (defocus 0.5-3.5 µm, astigmatism 0-1000 Å, any
angle), B-factor 50 Å², Poisson counting; contrast levels good / low / very low. Run:

    OMP_NUM_THREADS=1 .venv/bin/python bench/ctf.py [--per-level 9] [--size 4096] [--threads 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import time
from pathlib import Path

import numpy as np
import scipy.fft
from scipy.stats import spearmanr

from cryolive.engines.ctf import CtfFitError, CtfSearch, Optics, estimate_ctf
from cryolive.engines.ice import estimate_ice_thickness

LEVELS = {"good": 0.1, "low": 0.05, "very low": 0.025}
FAILED_ERROR_A = 500.0


def _truth_module():
    path = Path(__file__).resolve().parents[1] / "tests" / "engines" / "ctf_truth.py"
    spec = importlib.util.spec_from_file_location("ctf_truth", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _angle_error(a: float, b: float) -> float:
    d = abs(a - b) % 180.0
    return min(d, 180.0 - d)


def _median(xs: list[float]) -> str:
    return f"{statistics.median(xs):.1f}" if xs else "n/a"


def _ice_map(truth: object, rng: np.random.Generator, size: int) -> np.ndarray:
    """t/Λ: a per-micrograph mean in [0.05, 0.6] plus a smooth +-0.05 field (made coarse, then
    enlarged, to keep the benchmark's own cost down)."""
    coarse = truth.smooth_map(rng, (size // 8, size // 8), 25.0)  # type: ignore[attr-defined]
    return rng.uniform(0.05, 0.6) + 0.05 * np.kron(coarse, np.ones((8, 8)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-level", type=int, default=9)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    truth = _truth_module()
    rng = np.random.default_rng(args.seed)
    optics = Optics(pixel_size_a=1.0, voltage_kv=300.0, cs_mm=2.7, amplitude_contrast=0.07)
    print(f"load before: {os.getloadavg()}")
    rows = []
    ice_truth, ice_found, ice_seconds = [], [], []
    for level, contrast in LEVELS.items():
        seconds, cpu, mean_err, uv_err, angle_err, failed = [], [], [], [], [], 0
        for _ in range(args.per_level):
            u = rng.uniform(5000, 35000)
            astig = rng.uniform(0, 1000)
            angle = rng.uniform(0, 180)
            ice = _ice_map(truth, rng, args.size)
            image = truth.micrograph(
                rng,
                shape=(args.size, args.size),
                pixel_size_a=1.0,
                defocus_u_a=u,
                defocus_v_a=u - astig,
                angle_deg=angle,
                contrast=contrast,
                dose_e_per_px=40.0,
                ice=ice,
            )
            start = time.perf_counter()
            thickness = estimate_ice_thickness(image, incident_e_per_px=40.0, pixel_size_a=1.0)
            ice_seconds.append(time.perf_counter() - start)
            ice_truth.append(float(np.median(ice)))
            ice_found.append(thickness.median)
            start, start_cpu = time.perf_counter(), time.process_time()
            try:
                with scipy.fft.set_workers(args.threads):
                    fit = estimate_ctf(image, optics=optics, search=CtfSearch())
            except CtfFitError as exc:
                seconds.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
                failed += 1
                print(f"{level}: failed ({exc})")
                continue
            seconds.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
            r = fit.result
            err = abs(r.defocus_a - (u - astig / 2))
            mean_err.append(err)
            uv_err += [abs(r.defocus_u_a - u), abs(r.defocus_v_a - (u - astig))]
            if astig >= 200:
                angle_err.append(_angle_error(r.astigmatism_angle_deg, angle))
            failed += err > FAILED_ERROR_A
            print(
                f"{level}: U {u:.0f} V {u - astig:.0f} angle {angle:.1f} -> "
                f"U {r.defocus_u_a:.0f} V {r.defocus_v_a:.0f} angle "
                f"{r.astigmatism_angle_deg:.1f} cc {r.cc:.3f} res {r.fit_resolution_a:.2f} Å "
                f"({seconds[-1]:.2f} s, {cpu[-1]:.2f} s CPU)"
            )
        rows.append((level, contrast, seconds, cpu, mean_err, uv_err, angle_err, failed))
    print(f"load after: {os.getloadavg()}")
    print(
        "| contrast | n | s/micrograph wall (median) | CPU s (median) | median |Δ mean defocus| Å "
        "| median |Δ U,V| Å | median angle error ° (astig ≥ 200 Å) | failed |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for level, contrast, seconds, cpu, mean_err, uv_err, angle_err, failed in rows:
        print(
            f"| {level} ({contrast}) | {len(seconds)} | {statistics.median(seconds):.3f} | "
            f"{statistics.median(cpu):.3f} | "
            f"{_median(mean_err)} | {_median(uv_err)} | {_median(angle_err)} | "
            f"{failed} of {len(seconds)} |"
        )
    rho = spearmanr(ice_truth, ice_found).statistic
    worst = max(abs(a - b) for a, b in zip(ice_truth, ice_found, strict=True))
    print(
        f"ice: {len(ice_truth)} micrographs, Spearman(median, truth) {rho:.3f}, "
        f"max |Δ median| {worst:.4f}, {statistics.median(ice_seconds):.3f} s/micrograph"
    )


if __name__ == "__main__":
    main()
