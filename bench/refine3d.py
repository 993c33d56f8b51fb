"""3D refinement benchmark: ``cryolive refine3d`` against RELION 3.1.3 ``relion_refine
--auto_refine --split_random_halves`` on the same simulated particles, from the same reference.

Particles (``cryolive.simulate.particles3d``): the asymmetric test phantom (Gaussian blobs,
``cryolive.engines.recon3d.phantom``) projected at uniformly random orientations (Fourier slices
of the map padded 4x), moved by origins within ±3 px, per-particle CTF (300 kV, defocus
0.8-2.5 µm, astigmatism ±150 Å), white Gaussian noise at the given SNR. Both programs start from
the truth low-passed to 25 Å (``--lowpass``; RELION gets ``--ini_high`` the same and
``--firstiter_cc``), C1, the same first sampling (15°: RELION ``--healpix_order 1``, local
searches from ``--auto_local_healpix_order 2``, 7.5°; translations ±3 px in 1.5 px steps),
the same half sets (rlnRandomSubset), mask diameter 90 % of the box. Before that, cryolive's
de novo initial model of the same particles (``cryolive initial-model``, defaults: 30 → 15 Å):
its own half-set estimate and its correlation with the truth at 20 Å after the rotation and
hand that best explain the particles' angles. RELION's initial model (``--denovo_3dref --sgd``,
300 iterations by default) is not run: on this machine its default schedule would outlast the
refinement several times over. Then each program
post-processes its own half maps with the same soft spherical mask and no sharpening B-factor
(``cryolive postprocess --mask --bfactor 0``; ``relion_postprocess --mask``, which does not
sharpen without ``--auto_bfac``/``--adhoc_bfac``): the corrected, masked FSC 0.143 and the
FSC 0.5 of the post-processed map against the truth.

Why local searches from 7.5° (order 2) and not RELION's default 1.8° (order 4): from a 15°
start, order 4 leaves orders 2 and 3 as global searches, and auto-refine halves the offset
step with each order, so at a small pixel the translations multiply with the orientations (x8
per order): at 600 particles, box 32, one order-2 iteration took 137 s against 12 s at order
1, its estimated accuracy stalled at ~9° with the resolution stuck at 19.2 Å, and the run had
not converged after 25 minutes. The particles need no finer global search: at ~15 Å and a
86 Å particle, 360·d/(π·D) ≈ 20°, so 15° global and then local searches suffice, as a user
choosing "local searches from 7.5°" in RELION's GUI for a small, low-resolution particle
would; RELION then converges by its own criteria (``Refinement has converged``).
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
        [--ranks 2] [--threads 1] [--nice 5] [--no-relion] [--relion-timeout S] [--work DIR]
        [--relion-done DIR] [--device cuda] [--no-initial]

``--device D`` adds a row: the same ``cryolive refine3d`` with ``--device D`` (its searches'
products in PyTorch, on a GPU with ``cuda``), run right after the NumPy row on the same
particles, so the two compare in one run; for a lent GPU, in one command:
``python bench/refine3d.py --no-relion --no-initial --device cuda``. ``--no-initial`` skips the
initial model. Without ``/usr/bin/time`` (a bare GPU machine) CPU seconds come from the
children's rusage and peak memory is not measured.

``--relion-done DIR`` scores a RELION run already made with this script's RELION command on
the same particles (same ``--count --box --pixel --snr``: the simulation is seeded), its
``/usr/bin/time -v`` report in ``DIR/time.txt``: the long RELION run can go first, nice'd,
in the background.

RELION needs MPI to split random halves: ``mpirun -n ranks+1 relion_refine_mpi --j threads``
(the leader only coordinates, so 2 workers x 1 thread use this machine's 2 cores; peak memory
is then the largest single process's).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import resource
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


def _usage(report: str) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) from a ``/usr/bin/time -v`` report."""
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", report)
    cpu = sum(
        float(m.group(1))
        for m in re.finditer(r"(?:User|System) time \(seconds\): ([\d.]+)", report)
    )
    wall = float("nan")
    clock = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", report)
    if clock:
        wall = sum(float(p) * 60**k for k, p in enumerate(reversed(clock.group(1).split(":"))))
    peak_mb = int(peak.group(1)) / 1024 if peak else float("nan")
    return wall, cpu, peak_mb


def _timed(
    cmd: list[str], cwd: Path, timeout: float | None = None, nice: int = 0
) -> tuple[float, float, float, str]:
    """Run ``cmd`` under /usr/bin/time -v (and ``nice -n``): (wall s, CPU s, peak RSS MB,
    output). Past ``timeout`` s the run is stopped: (wall, nan, nan, "timeout")."""
    start = time.perf_counter()
    prefix = ["nice", "-n", str(nice)] if nice else []
    timer = ["/usr/bin/time", "-v"] if Path("/usr/bin/time").is_file() else []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        done = subprocess.run(
            [*prefix, *timer, *cmd], cwd=cwd, capture_output=True, text=True,
            check=False, timeout=timeout,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return time.perf_counter() - start, float("nan"), float("nan"), "timeout"
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{cmd[0]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    if timer:
        _, cpu, peak_mb = _usage(done.stderr)
    else:
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        peak_mb = float("nan")
    return wall, cpu, peak_mb, done.stdout + done.stderr


def relion_command(star: Path, ref: Path, out: Path, args: argparse.Namespace) -> list[str]:
    """The RELION 3.1.3 auto-refine this benchmark runs (see the module's notes)."""
    box, pixel = args.box, args.pixel
    return [
        "mpirun", "--allow-run-as-root", "--oversubscribe", "-n", str(args.ranks + 1),
        "relion_refine_mpi", "--i", star.name, "--ref", ref.name, "--o", str(out / "run"),
        "--auto_refine", "--split_random_halves", "--ini_high", str(args.lowpass),
        "--firstiter_cc", "--ctf", "--sym", "C1",
        "--particle_diameter", f"{0.9 * box * pixel:g}", "--zero_mask", "--flatten_solvent",
        "--healpix_order", "1", "--auto_local_healpix_order", "2",
        "--offset_range", "3", "--offset_step", "1.5", "--low_resol_join_halves", "40",
        "--pad", "2", "--j", str(args.threads), "--dont_combine_weights_via_disc",
        "--pool", "30",
    ]  # fmt: skip


def _postprocess(
    half1: Path, half2: Path, mask: Path, out: Path, pixel: float, relion: bool
) -> tuple[float, float, float, float, Path]:
    """Post-process two half maps with ``mask`` and no sharpening, by cryolive or RELION:
    (wall s, CPU s, peak MB, FSC 0.143 corrected Å, the post-processed map)."""
    out.mkdir(parents=True, exist_ok=True)
    if relion:
        cmd = ["relion_postprocess", "--i", str(half1), "--i2", str(half2), "--mask", str(mask),
               "--angpix", str(pixel), "--o", str(out / "postprocess")]  # fmt: skip
    else:
        cmd = [sys.executable, "-m", "cryolive.cli", "postprocess", str(half1), str(half2),
               "--out", str(out), "--mask", str(mask), "--bfactor", "0"]  # fmt: skip
    wall, cpu, peak, _ = _timed(cmd, out)
    general = starfile.read(out / "postprocess.star", always_dict=True)["general"]
    return wall, cpu, peak, float(general["rlnFinalResolution"]), out / "postprocess.mrc"


def _aligned_correlation(
    model: np.ndarray, truth: np.ndarray, found_deg: np.ndarray, true_deg: np.ndarray, shell: float
) -> float:
    """Correlation of a de novo map with the truth (both low-passed to ``shell``) after the
    rotation, and for the other hand the mirror, that best explains the particles' angles (the
    tests' ``aligned_correlation``)."""
    path = Path(__file__).resolve().parents[1] / "tests" / "engines" / "initmodel" / "sim3d.py"
    spec = importlib.util.spec_from_file_location("cryolive_bench_sim3d", path)
    assert spec is not None and spec.loader is not None
    sim3d = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = sim3d
    spec.loader.exec_module(sim3d)
    return float(
        sim3d.aligned_correlation(
            model, truth, euler_to_matrix(found_deg), euler_to_matrix(true_deg), shell
        )
    )


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
    ap.add_argument("--nice", type=int, default=5, help="RELION's niceness")
    ap.add_argument("--no-relion", action="store_true")
    ap.add_argument("--relion-done", type=Path, default=None, help="score this RELION run")
    ap.add_argument("--relion-timeout", type=float, default=None, help="s, then score its last")
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--device", default=None, help="also run cryolive with --device (cuda, cpu)")
    ap.add_argument("--no-initial", action="store_true", help="skip the initial model")
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

    initial = work / "cryolive_initial"
    iw = ic = ip = estimate = im_corr = nan
    if not args.no_initial:
        iw, ic, ip, _ = _timed(
            [sys.executable, "-m", "cryolive.cli", "initial-model", str(star), "--out",
             str(initial)],
            work,
        )  # fmt: skip
        classes = starfile.read(initial / "run_model.star", always_dict=True)["model_classes"]
        estimate = float(classes["rlnEstimatedResolution"].iloc[0])
        found = starfile.read(initial / "run_data.star", always_dict=True)["particles"]
        found_deg = found[["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]].to_numpy(np.float64)
        im_corr = _aligned_correlation(
            read_map(initial / "initial_model.mrc")[0], truth, found_deg, stack.angles_deg,
            box * pixel / 20.0,
        )  # fmt: skip

    out = work / "cryolive"
    devices: list[str | None] = [None] if args.device is None else [None, args.device]
    for device in devices:  # NumPy first, then the same run on the device (the peer)
        where = out if device is None else work / f"cryolive_{device.replace(':', '_')}"
        extra = [] if device is None else ["--device", device]
        wall, cpu, peak, _text = _timed(
            [sys.executable, "-m", "cryolive.cli", "refine3d", str(star), "--ref", str(ref),
             "--out", str(where), "--lowpass", str(args.lowpass), "--iterations", "15", *extra],
            work,
        )  # fmt: skip
        general = starfile.read(where / "fsc.star", always_dict=True)["general"]
        gold = float(general["rlnFinalResolution"])
        iters = int(general["rlnCurrentIteration"])
        refined, _ = read_map(where / "refined.mrc")
        name = "cryolive refine3d" + ("" if device is None else f" --device {device}")
        rows.append((name, wall, cpu, peak, str(iters), gold, *_vs_truth(refined, truth, pixel)))
    mask = write_map(work / "sim" / "mask.mrc", soft_sphere(box, 0.45 * box - 3.0),
                     pixel_size_a=pixel)  # fmt: skip
    post: list[tuple[str, float, float, float, float, float]] = []
    pw, pc, pp, pres, pmap = _postprocess(
        out / "half1.mrc", out / "half2.mrc", mask, work / "cryolive_post", pixel, relion=False
    )
    post.append(("cryolive postprocess", pw, pc, pp, pres, _vs_truth(read_map(pmap)[0], truth,
                                                                     pixel)[0]))  # fmt: skip

    if not args.no_relion:
        rel = args.relion_done or work / "relion"
        if args.relion_done is not None:
            report = (rel / "time.txt").read_text()
            wall, cpu, peak = _usage(report)
            text = "" if (rel / "run_model.star").is_file() else "timeout"
        else:
            rel.mkdir(exist_ok=True)
            wall, cpu, peak, text = _timed(
                relion_command(star, ref, rel, args),
                star.parent,  # RELION finds the stack named in rlnImageName from here
                timeout=args.relion_timeout, nice=args.nice,
            )  # fmt: skip
        iters = len(list(rel.glob("run_it*_half1_model.star"))) - 1  # it000 is the start
        if text == "timeout":  # not converged: score the last iteration's two half maps
            name = f"RELION 3.1.3 auto-refine, stopped at {wall:.0f} s"
            model = starfile.read(rel / f"run_it{iters:03d}_half1_model.star", always_dict=True)
            halves = (rel / f"run_it{iters:03d}_half1_class001.mrc",
                      rel / f"run_it{iters:03d}_half2_class001.mrc")  # fmt: skip
            final = (read_map(halves[0])[0] + read_map(halves[1])[0]) / 2
        else:
            name = "RELION 3.1.3 auto-refine"
            model = starfile.read(rel / "run_model.star", always_dict=True)
            final, _ = read_map(rel / "run_class001.mrc")
            halves = (rel / "run_half1_class001_unfil.mrc", rel / "run_half2_class001_unfil.mrc")
        res = float(model["model_general"]["rlnCurrentResolution"])
        rows.append((name, wall, cpu, peak, str(iters), res, *_vs_truth(final, truth, pixel)))
        pw, pc, pp, pres, pmap = _postprocess(
            halves[0], halves[1], mask, work / "relion_post", pixel, relion=True
        )
        post.append(("relion_postprocess", pw, pc, pp, pres,
                     _vs_truth(read_map(pmap)[0], truth, pixel)[0]))  # fmt: skip

    print(f"\n{args.count} particles, box {box}, {pixel} Å/px, SNR {args.snr}, "
          f"start {args.lowpass} Å; work {work}\n")  # fmt: skip
    print("| run | wall s | CPU s | peak MB | iterations | FSC 0.143 gold (Å) "
          "| FSC 0.5 vs truth (Å) | same, masked (Å) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, w, c, p, it, g, t, tm in rows:
        ws, cs, ps = ("-" if np.isnan(v) else f"{v:.0f}" for v in (w, c, p))
        print(f"| {name} | {ws} | {cs} | {ps} | {it} | {g:.2f} | {t:.2f} | {tm:.2f} |")
    if not args.no_initial:
        print("\n| initial model (de novo, no reference) | wall s | CPU s | peak MB "
              "| own estimate (Å) | correlation with the truth at 20 Å |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---:|")
        print(f"| cryolive initial-model | {iw:.0f} | {ic:.0f} | {ip:.0f} | {estimate:.2f} "
              f"| {im_corr:.3f} |")  # fmt: skip
    print("\n| post-processing (same mask, no sharpening) | wall s | CPU s | peak MB "
          "| FSC 0.143 corrected (Å) | FSC 0.5 vs truth (Å) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|")
    for name, w, c, p, g, t in post:
        print(f"| {name} | {w:.1f} | {c:.1f} | {p:.0f} | {g:.2f} | {t:.2f} |")


if __name__ == "__main__":
    main()
