"""2D classification benchmark: cryolive's ``classify_2d`` against ``relion_refine`` (2D, VDAM
off, EM) on the same simulated particles, in one run, both scored against the truth.

Particles (``cryolive.simulate.simulate_particles``): the simulator's procedural 165 kDa
particle (largest diameter 90 Å) in 10 views spread over a hemisphere, each particle turned
in-plane at random and shifted up to 6 Å, 300 kV, defocus 0.8-2.5 µm per particle, 40 e/Å²,
Poisson counts, normalised and inverted by the pipeline's own extraction; plus 10 % junk
(empty ice, contamination lumps, carbon edges, a third each). The pixel is 2 Å: a 64-pixel box
is then 128 Å, about 1.4 particle diameters (room for the shifts and the CTF's
delocalisation at these defoci while staying small), and its 4 Å Nyquist lies well beyond the
~8-15 Å that classes of a few hundred particles reach, so the pixel does not limit the score.
Both engines read the same ``particles.star`` and stack from disk; times include reading.

Per engine: wall and CPU seconds (CPU includes RELION's child processes), the median over
classes holding mostly true particles of the FRC-0.5 resolution of each class against its
best-matching true projection (unweighted), the fraction of true particles in a class whose
best view is their own, the fraction of junk in classes not selected, and the fraction of true
particles in selected classes (``cryolive.engines.class2d.evaluate_classes``). A first row
scores the classes a perfect classifier would give (each view's particles phase-flipped and
aligned with their true psi and shift): the best these particles allow.

    .venv/bin/python bench/class2d.py [--n 2000] [--box 64] [--classes 10] [--iterations 5]
        [--cryolive-iterations N] [--no-relion] [--threads 2] [--cache DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cryolive.engines.class2d import Class2DQuality, Class2DResult, evaluate_classes
from cryolive.io.particle_files import read_particles_star
from cryolive.simulate import (
    ParticleTruth,
    procedural_specimen,
    read_particle_truth,
    simulate_particles,
    write_simulated_particles,
)

PIXEL_SIZE_A = 2.0
N_VIEWS = 10
JUNK = {"empty": 0.1 / 3, "ice": 0.1 / 3, "carbon": 0.1 / 3}
MASK_DIAMETER_A = 110.0  # the particle's 90 Å and room for its shifts


@dataclass(frozen=True)
class Prepared:
    star: Path
    truth: ParticleTruth


@dataclass(frozen=True)
class Row:
    engine: str
    wall_s: float
    cpu_s: float
    quality: Class2DQuality
    result: Class2DResult


def prepare(cache: Path, *, n: int, box: int, seed: int = 0) -> Prepared:
    """Simulate (or reuse from ``cache``) n particles of box ``box`` and write them to disk."""
    folder = cache / f"n{n}-box{box}-px{PIXEL_SIZE_A:g}-seed{seed}"
    if not (folder / "truth.json").exists():
        sim = simulate_particles(
            procedural_specimen(seed=1), n_particles=n, n_views=N_VIEWS, box_px=box,
            pixel_size_a=PIXEL_SIZE_A, junk_fraction=JUNK, seed=seed,
        )  # fmt: skip
        write_simulated_particles(sim, folder)
    return Prepared(star=folder / "particles.star", truth=read_particle_truth(folder))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def score(
    engine: str, result: Class2DResult, truth: ParticleTruth, *, wall_s: float, cpu_s: float
) -> Row:
    """Score one engine's classes against the truth."""
    quality = evaluate_classes(
        result, truth, truth_pixel_size_a=truth.pixel_size_a, particle_diameter_a=MASK_DIAMETER_A
    )
    return Row(engine, wall_s, cpu_s, quality, result)


def run_cryolive(data: Prepared, settings: object) -> Row:
    from cryolive.engines.class2d import classify_2d

    start, cpu = time.perf_counter(), time.process_time()
    particles = read_particles_star(data.star)
    result = classify_2d(particles, settings)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return score("cryolive classify_2d", result, data.truth, wall_s=wall, cpu_s=cpu)


def run_relion(data: Prepared, settings: object, *, threads: int) -> Row:
    from cryolive.adapters.relion_class2d import run_relion_class2d

    out = data.star.parent / "relion"
    shutil.rmtree(out, ignore_errors=True)
    start, cpu = time.perf_counter(), _children_cpu() + time.process_time()
    result = run_relion_class2d(data.star, out, settings=settings, threads=threads)
    wall = time.perf_counter() - start
    cpu = _children_cpu() + time.process_time() - cpu
    return score(f"relion_refine --j {threads}", result, data.truth, wall_s=wall, cpu_s=cpu)


def oracle(data: Prepared) -> Row:
    """Classes a perfect classifier would give: each view's particles phase-flipped, turned
    back and recentred with their true psi and shift, averaged; junk in one class, not
    selected. The reference the engines are measured against (time: this average's)."""
    from scipy import ndimage

    from cryolive.engines.ctf import Optics, ctf_2d

    start, cpu = time.perf_counter(), time.process_time()
    ps, truth = read_particles_star(data.star), data.truth
    b, p = ps.box_px, ps.pixel_size_a
    optics = Optics(
        pixel_size_a=p, voltage_kv=ps.voltage_kv, cs_mm=ps.cs_mm,
        amplitude_contrast=ps.amplitude_contrast,
    )  # fmt: skip
    yy, xx = np.mgrid[0:b, 0:b].astype(np.float64) - b // 2
    sums = np.zeros((truth.n_views + 1, b, b))
    for i in range(len(ps)):
        ctf = ctf_2d(
            (b, b), optics=optics, defocus_u_a=ps.defocus_u_a[i], defocus_v_a=ps.defocus_v_a[i],
            astigmatism_angle_deg=ps.astigmatism_angle_deg[i],
        )  # fmt: skip
        flipped = np.real(np.fft.ifft2(np.fft.fft2(ps.images[i]) * np.sign(-ctf)))
        v = truth.view[i] if truth.view[i] >= 0 else truth.n_views
        c, s = np.cos(np.deg2rad(truth.psi_deg[i])), np.sin(np.deg2rad(truth.psi_deg[i]))
        dy, dx = truth.shift_a[i] / p
        src = [s * xx + c * yy + b // 2 + dy, c * xx - s * yy + b // 2 + dx]
        sums[v] += ndimage.map_coordinates(flipped, src, order=3, mode="constant")
    assignment = np.where(truth.view >= 0, truth.view, truth.n_views)
    k = truth.n_views + 1
    counts = np.bincount(assignment, minlength=k)
    result = Class2DResult(
        averages=(sums / np.maximum(counts, 1)[:, None, None]).astype(np.float32),
        pixel_size_a=p, assignment=assignment, psi_deg=truth.psi_deg, shift_a=truth.shift_a,
        probability=np.ones(len(ps)), particles_per_class=counts,
        resolution_a=np.full(k, np.inf), score=(np.arange(k) < truth.n_views).astype(float),
        selected=np.arange(k) < truth.n_views, engine="truth",
    )  # fmt: skip
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return score("truth-aligned averages (oracle)", result, truth, wall_s=wall, cpu_s=cpu)


def table(rows: list[Row]) -> str:
    """The summary table (markdown) and, per engine, its classes."""
    lines = [
        "| engine | wall s | CPU s | median class FRC-0.5 (Å) | in true-view class "
        "| junk rejected | selected good |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        q = r.quality
        lines.append(
            f"| {r.engine} | {r.wall_s:.1f} | {r.cpu_s:.1f} | {q.median_resolution_a:.1f} | "
            f"{q.true_view_fraction:.3f} | {q.junk_rejected:.3f} | {q.selected_good:.3f} |"
        )
    for r in rows:
        q = r.quality
        lines += [
            "",
            f"{r.engine}: classes (by size)",
            "| class | particles | best view | FRC-0.5 Å | correlation | junk | selected |",
            "|---|---|---|---|---|---|---|",
        ]
        counts = np.bincount(r.result.assignment, minlength=r.result.n_classes)
        for c in np.argsort(-counts):
            if counts[c] == 0:
                continue
            lines.append(
                f"| {c} | {counts[c]} | {q.best_view[c]} | {q.resolution_a[c]:.1f} | "
                f"{q.correlation[c]:.2f} | {q.junk_fraction[c]:.2f} | "
                f"{'yes' if r.result.selected[c] else 'no'} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000, help="particles, junk included")
    parser.add_argument("--box", type=int, default=64, help="box, pixels (2 Å each)")
    parser.add_argument("--classes", type=int, default=10, help="classes K of both engines")
    parser.add_argument("--iterations", type=int, default=5, help="relion_refine --iter")
    parser.add_argument(
        "--cryolive-iterations", type=int, default=None, help="default: Class2DSettings'"
    )
    parser.add_argument("--no-relion", action="store_true", help="cryolive only (large --n)")
    parser.add_argument("--threads", type=int, default=2, help="relion_refine --j")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/cryolive-bench-class2d"))
    args = parser.parse_args()

    from cryolive.engines.class2d import Class2DSettings

    start = time.perf_counter()
    data = prepare(args.cache, n=args.n, box=args.box, seed=args.seed)
    print(f"particles: {data.star} ({time.perf_counter() - start:.1f} s to prepare)")
    print(f"load before: {os.getloadavg()[0]:.2f} (1-min average), {os.cpu_count()} cores")
    common = {"n_classes": args.classes, "particle_diameter_a": MASK_DIAMETER_A, "seed": args.seed}
    ours = Class2DSettings(
        **common,
        **({"iterations": args.cryolive_iterations} if args.cryolive_iterations else {}),
    )
    rows = [oracle(data), run_cryolive(data, ours)]
    if not args.no_relion:
        if shutil.which("relion_refine"):
            theirs = Class2DSettings(**common, iterations=args.iterations)
            rows.append(run_relion(data, theirs, threads=args.threads))
        else:
            print("relion_refine not on PATH: RELION skipped")
    print(f"load after: {os.getloadavg()[0]:.2f}")
    print(table(rows))


if __name__ == "__main__":
    main()
