"""3D refinement benchmark: ``cryolive refine3d`` against RELION 3.1.3 ``relion_refine
--auto_refine --split_random_halves`` on the same simulated particles, from the same reference.

Particles (``cryolive.simulate.particles3d``): the asymmetric test phantom (Gaussian blobs,
``cryolive.engines.recon3d.phantom``) projected at uniformly random orientations (Fourier slices
of the map padded 4x), moved by origins within ±3 px, per-particle CTF (300 kV, defocus
0.8-2.5 µm, astigmatism ±150 Å), white Gaussian noise at the given SNR. Both programs start from
the truth low-passed to 25 Å (``--lowpass``; RELION gets ``--ini_high`` the same and
``--firstiter_cc``), C1, the same first sampling (15°: RELION ``--healpix_order 1``, local
searches from ``--auto_local_healpix_order 4``, 1.8°; translations ±3 px in 1.5 px steps),
the same half sets (rlnRandomSubset), mask diameter 90 % of the box.
Each runs as its own process (times include reading and writing files); peak memory is that
process's maximum resident set and CPU seconds are user + system of the whole process tree
(``/usr/bin/time -v``; CPU time is the fairer figure on a shared, loaded machine).

Scores: gold-standard FSC 0.143 between each program's half maps (its own estimate) and FSC 0.5
of its final map against the true map, unmasked and under a soft sphere of 90 % of the box
(RELION flattens its solvent; the sphere puts both on the same footing); a first row
reconstructs with the TRUE angles and origins (the best those images allow). With
``--relion-timeout`` a RELION run still going is stopped and its last iteration's two half maps
are scored (marked "stopped").

    .venv/bin/python bench/refine3d.py [--count 5000] [--box 64] [--pixel 2.5] [--snr 0.1]
        [--ranks 2] [--threads 1] [--no-relion] [--relion-timeout S] [--work DIR]

RELION needs MPI to split random halves: ``mpirun -n ranks+1 relion_refine_mpi --j threads``
(the leader only coordinates, so 2 workers x 1 thread use this machine's 2 cores; peak memory
is then the largest single process's).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import starfile

from cryolive.engines.recon3d import euler_to_matrix, fsc, phantom, resolution_at
from cryolive.engines.refine3d import lowpass, reconstruct_halves, soft_sphere
from cryolive.io.maps import read_map, write_map
from cryolive.simulate.particles3d import simulate_particles_3d, write_particles_3d_sim


def _timed(
    cmd: list[str], cwd: Path, timeout: float | None = None
) -> tuple[float, float, float, str]:
    """Run ``cmd`` under /usr/bin/time -v: (wall s, CPU s, peak RSS MB, output).

    Past ``timeout`` s the run is stopped: (wall, nan, nan, "timeout")."""
    start = time.perf_counter()
    try:
        done = subprocess.run(
            ["/usr/bin/time", "-v", *cmd], cwd=cwd, capture_output=True, text=True,
            check=False, timeout=timeout,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return time.perf_counter() - start, float("nan"), float("nan"), "timeout"
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{cmd[0]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    cpu = sum(
        float(m.group(1))
        for m in re.finditer(r"(?:User|System) time \(seconds\): ([\d.]+)", done.stderr)
    )
    peak_mb = int(peak.group(1)) / 1024 if peak else float("nan")
    return wall, cpu, peak_mb, done.stdout + done.stderr


def _vs_truth(volume: np.ndarray, truth: np.ndarray, pixel: float) -> tuple[float, float]:
    """FSC-0.5 resolution (Å) against the truth: unmasked, and with the map under a soft sphere
    of 90 % of the box (as RELION's solvent flattening treats its own maps)."""
    box = truth.shape[0]
    mask = soft_sphere(box, 0.45 * box - 3.0)
    return (
        resolution_at(fsc(volume, truth), box, pixel, 0.5),
        resolution_at(fsc(volume * mask, truth), box, pixel, 0.5),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--box", type=int, default=64)
    ap.add_argument("--pixel", type=float, default=2.5)
    ap.add_argument("--snr", type=float, default=0.1)
    ap.add_argument("--lowpass", type=float, default=25.0)
    ap.add_argument("--ranks", type=int, default=2, help="RELION MPI workers (plus a leader)")
    ap.add_argument("--threads", type=int, default=1, help="RELION --j per worker")
    ap.add_argument("--no-relion", action="store_true")
    ap.add_argument("--relion-timeout", type=float, default=None, help="s, then score its last")
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_refine3d_"))
    box, pixel = args.box, args.pixel
    truth = phantom(box, np.random.default_rng(1))
    stack = simulate_particles_3d(
        truth, count=args.count, pixel_size_a=pixel, rng=np.random.default_rng(2), snr=args.snr,
        projection="fourier",
    )  # fmt: skip
    star = write_particles_3d_sim(stack, truth, work / "sim")
    ref = write_map(work / "sim" / "reference.mrc", lowpass(truth, box * pixel / args.lowpass),
                    pixel_size_a=pixel)  # fmt: skip
    assert stack.angles_deg is not None and stack.origins_a is not None
    assert stack.subset is not None
    rows: list[tuple[str, float, float, float, str, float, float, float]] = []
    best = reconstruct_halves(
        stack, euler_to_matrix(stack.angles_deg), stack.origins_a / pixel, stack.subset
    )
    nan = float("nan")
    rows.append(("true angles (best possible)", nan, nan, nan, "-",
                 resolution_at(best.fsc, box, pixel, 0.143),
                 *_vs_truth(best.full, truth, pixel)))  # fmt: skip

    out = work / "cryolive"
    wall, cpu, peak, _text = _timed(
        [sys.executable, "-m", "cryolive.cli", "refine3d", str(star), "--ref", str(ref),
         "--out", str(out), "--lowpass", str(args.lowpass), "--iterations", "15"],
        work,
    )  # fmt: skip
    gold = float(starfile.read(out / "fsc.star", always_dict=True)["general"]["rlnFinalResolution"])
    iters = int(starfile.read(out / "fsc.star", always_dict=True)["general"]["rlnCurrentIteration"])
    refined, _ = read_map(out / "refined.mrc")
    rows.append(("cryolive refine3d", wall, cpu, peak, str(iters), gold,
                 *_vs_truth(refined, truth, pixel)))  # fmt: skip

    if not args.no_relion:
        rel = work / "relion"
        rel.mkdir(exist_ok=True)
        wall, cpu, peak, text = _timed(
            ["mpirun", "--allow-run-as-root", "--oversubscribe", "-n", str(args.ranks + 1),
             "relion_refine_mpi", "--i", star.name, "--ref", ref.name, "--o", str(rel / "run"),
             "--auto_refine", "--split_random_halves", "--ini_high", str(args.lowpass),
             "--firstiter_cc", "--ctf", "--sym", "C1",
             "--particle_diameter", str(0.9 * box * pixel), "--zero_mask", "--flatten_solvent",
             "--healpix_order", "1", "--auto_local_healpix_order", "4",
             "--offset_range", "3", "--offset_step", "1.5", "--low_resol_join_halves", "40",
             "--pad", "2", "--j", str(args.threads), "--dont_combine_weights_via_disc",
             "--pool", "30"],
            star.parent,  # RELION finds the stack named in rlnImageName from here
            timeout=args.relion_timeout,
        )  # fmt: skip
        iters = len(list(rel.glob("run_it*_half1_model.star"))) - 1  # it000 is the start
        if text == "timeout":  # not converged: score the last iteration's two half maps
            name = f"RELION 3.1.3 auto-refine, stopped at {wall:.0f} s"
            model = starfile.read(rel / f"run_it{iters:03d}_half1_model.star", always_dict=True)
            h1, _ = read_map(rel / f"run_it{iters:03d}_half1_class001.mrc")
            h2, _ = read_map(rel / f"run_it{iters:03d}_half2_class001.mrc")
            final = (h1 + h2) / 2
        else:
            name = "RELION 3.1.3 auto-refine"
            model = starfile.read(rel / "run_model.star", always_dict=True)
            final, _ = read_map(rel / "run_class001.mrc")
        res = float(model["model_general"]["rlnCurrentResolution"])
        rows.append((name, wall, cpu, peak, str(iters), res, *_vs_truth(final, truth, pixel)))

    print(f"\n{args.count} particles, box {box}, {pixel} Å/px, SNR {args.snr}, "
          f"start {args.lowpass} Å; work {work}\n")  # fmt: skip
    print("| run | wall s | CPU s | peak MB | iterations | FSC 0.143 gold (Å) "
          "| FSC 0.5 vs truth (Å) | same, masked (Å) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, w, c, p, it, g, t, tm in rows:
        ws, cs, ps = ("-" if np.isnan(v) else f"{v:.0f}" for v in (w, c, p))
        print(f"| {name} | {ws} | {cs} | {ps} | {it} | {g:.2f} | {t:.2f} | {tm:.2f} |")


if __name__ == "__main__":
    main()
