"""Initial model and 3D classification benchmark: cryolive's engines on particles of known
Gaussian-blob maps (exact projections, RELION-sign CTF, white noise, known origins; the
simulator of ``tests/engines/initmodel/sim3d.py``), scored against the truth.

Rows: the de novo initial model of one map (real-space correlation with the truth after the
rotation, and for the other hand the mirror, that best explains the particle angles, both
low-passed to 20 Å) and the 3D classification of two maps mixed 50/50 from their average
(accuracy after matching labels to the truth by the better permutation). Wall seconds and the
process's peak memory after each row.

    .venv/bin/python bench/initmodel.py [--n 2000] [--box 48] [--pixel 3.0] [--snr 0.1]
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np


def _sim3d() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "tests" / "engines" / "initmodel" / "sim3d.py"
    spec = importlib.util.spec_from_file_location("cryolive_bench_sim3d", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    from cryolive.engines.class3d import classify3d
    from cryolive.engines.initial_model import initial_model
    from cryolive.engines.recon3d import euler_to_matrix

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="particles per run")
    parser.add_argument("--box", type=int, default=48)
    parser.add_argument("--pixel", type=float, default=3.0, help="Å")
    parser.add_argument("--snr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sim3d = _sim3d()
    rng = np.random.default_rng(args.seed)
    radius = 0.3 * args.box
    rows = []

    a = sim3d.blobs(rng, count=40, radius_px=radius)
    sim, _ = sim3d.simulate(
        [a], [args.n], rng, box=args.box, pixel_size_a=args.pixel, snr=args.snr
    )  # fmt: skip
    start = time.perf_counter()
    im = initial_model(sim.stack, rng=rng)
    wall = time.perf_counter() - start
    corr = sim3d.aligned_correlation(
        im.maps[0], a.volume(args.box), euler_to_matrix(im.angles_deg), sim.rotations,
        args.box * args.pixel / 20.0,
    )  # fmt: skip
    rows.append(("initial model", args.n, wall, f"correlation at 20 Å {corr:.3f}"))

    a, b = (
        sim3d.blobs(rng, count=40, radius_px=radius),
        sim3d.blobs(rng, count=40, radius_px=radius),
    )
    half = args.n // 2
    sim, labels = sim3d.simulate(
        [a, b], [half, half], rng, box=args.box, pixel_size_a=args.pixel, snr=args.snr
    )  # fmt: skip
    reference = 0.5 * (a.volume(args.box) + b.volume(args.box))
    start = time.perf_counter()
    res = classify3d(sim.stack, reference, classes=2, rng=rng)
    wall = time.perf_counter() - start
    acc = max(np.mean(res.classes == labels), np.mean(res.classes == 1 - labels))
    resolution = ", ".join(f"{r:.1f}" for r in res.resolution_a)
    rows.append(("class3d (K=2)", 2 * half, wall, f"accuracy {acc:.3f}; {resolution} Å"))

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"box {args.box} at {args.pixel} Å, SNR {args.snr}, peak memory {peak_mb:.0f} MB")
    print(f"{'stage':<16}{'particles':>10}{'wall s':>9}  result")
    for stage, n, wall, result in rows:
        print(f"{stage:<16}{n:>10}{wall:>9.1f}  {result}")


if __name__ == "__main__":
    main()
