"""Picking benchmark: cryolive's LoG picker against ``relion_autopick --LoG`` on the same
simulated 4096² motion-corrected micrographs, in one run: precision, recall, F1 (a pick counts
within half a diameter of a planted particle, matched one to one) and seconds per micrograph.

Micrographs (``tests/engines/picking_truth.py``): the simulator's procedural 165 kDa particle
(largest diameter 90 Å), 1 Å/px, 300 kV, Poisson counts; defocus, ice thickness and
density cycle over 0.8-2.5 µm, 250-900 Å and 0.15-0.40 of the area, the dose over 40 and
20 e/Å²; three of eight have a carbon edge and ice contamination. Both pickers are pinned to
one core (RELION's autopick without MPI uses one) and read the same MRC files; times include
reading. Wall and CPU seconds are both given: on a loaded machine the CPU time is the
steadier figure.

``--topaz`` adds Topaz's pretrained resnet16 (``pick_topaz``, the optional ``topaz`` extra) at
its default threshold (logit 0), PyTorch on one thread on the same core. ``--small`` plants a
small particle instead: 500 residues (~55 kDa) in an ellipsoid of largest semi-axis 30 Å
(diameters 33-60 Å), picked over 40-60 Å and matched within 30 px.

    .venv/bin/python bench/picking.py [--n 8] [--size 4096] [--cache DIR] [--topaz] [--small]
                                      [--preset realistic|easy]

The micrographs follow the simulator's realistic default (issue 23: particles at their contrast
against the ice, 3 % ice texture) unless ``--preset easy`` (the simulator before it).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import mrcfile
import numpy as np
import starfile

from cryolive.engines.picking import PickScore, pick_log, pick_topaz, score_picks
from cryolive.io.micrograph import read_micrograph

DIAMETER_MIN_A, DIAMETER_MAX_A, MATCH_A = 60.0, 100.0, 45.0
SMALL = {"n_residues": 500, "radius_a": 30.0}  # ~55 kDa
SMALL_DIAMETER_MIN_A, SMALL_DIAMETER_MAX_A, SMALL_MATCH_A = 40.0, 60.0, 30.0
CONDITIONS = [  # defocus Å, ice Å, density, carbon and contamination, dose e/Å²
    (8000.0, 250.0, 0.15, False, 40.0),
    (15000.0, 500.0, 0.30, False, 40.0),
    (25000.0, 700.0, 0.25, True, 40.0),
    (12000.0, 700.0, 0.35, False, 40.0),
    (20000.0, 250.0, 0.20, False, 40.0),
    (10000.0, 450.0, 0.30, True, 40.0),
    (15000.0, 900.0, 0.30, False, 20.0),
    (9000.0, 900.0, 0.40, True, 20.0),
]


def _truth_module():  # type: ignore[no-untyped-def]
    path = Path(__file__).resolve().parents[1] / "tests" / "engines" / "picking_truth.py"
    spec = importlib.util.spec_from_file_location("picking_truth", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _make(
    folder: Path, n: int, size: int, particle: dict[str, float | str]
) -> list[tuple[Path, np.ndarray, str]]:
    """Write (or reuse) n micrographs and their truth; return (path, truth xy, label)."""
    truth_module = _truth_module()
    (folder / "mics").mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        defocus, ice, density, bad, dose = CONDITIONS[i % len(CONDITIONS)]
        label = f"{defocus / 1e4:.1f}µm {ice:.0f}Å {density:.2f} {dose:.0f}e/Å²"
        label += " carbon+contam" if bad else ""
        path = folder / "mics" / f"mic{i:03d}.mrc"
        truth_path = path.with_suffix(".json")
        if not truth_path.exists():
            planted = truth_module.planted_micrograph(
                np.random.default_rng(1000 + i), shape=(size, size), defocus_a=defocus,
                ice_a=ice, density=density, carbon=bad, contamination=4 * bad,
                dose_e_per_a2=dose, **particle,
            )  # fmt: skip
            with mrcfile.new(path, overwrite=True) as mrc:
                mrc.set_data(planted.micrograph)
                mrc.voxel_size = 1.0
            truth_path.write_text(json.dumps(planted.positions_px[:, ::-1].tolist()))
        out.append((path, np.asarray(json.loads(truth_path.read_text())), label))
    return out


def _cryolive(path: Path, dmin: float, dmax: float) -> tuple[np.ndarray, float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    image, size = read_micrograph(path)
    picks = pick_log(image, pixel_size_a=size or 1.0, diameter_min_a=dmin, diameter_max_a=dmax)
    xy = np.stack([picks.x_px, picks.y_px], axis=1)
    return xy, time.perf_counter() - start, time.process_time() - cpu


def _topaz(path: Path, dmin: float, dmax: float) -> tuple[np.ndarray, float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    image, size = read_micrograph(path)
    picks = pick_topaz(image, pixel_size_a=size or 1.0, diameter_a=0.5 * (dmin + dmax))
    xy = np.stack([picks.x_px, picks.y_px], axis=1)
    return xy, time.perf_counter() - start, time.process_time() - cpu


def _relion(
    folder: Path, mics: list[Path], dmin: float, dmax: float
) -> tuple[list[np.ndarray], float, float]:
    odir = folder / "AutoPick"
    shutil.rmtree(odir, ignore_errors=True)
    command = [
        "taskset", "-c", "0", "relion_autopick", "--i", "mics/*.mrc", "--odir", "AutoPick/",
        "--pickname", "autopick", "--LoG", "--LoG_diam_min", str(dmin),
        "--LoG_diam_max", str(dmax), "--shrink", "0.5", "--lowpass", "20",
        "--angpix", "1",
    ]  # fmt: skip
    start, cpu = time.perf_counter(), _children_cpu()
    subprocess.run(command, cwd=folder, check=True, capture_output=True)
    seconds = (time.perf_counter() - start) / len(mics)
    cpu_seconds = (_children_cpu() - cpu) / len(mics)
    found = []
    for mic in mics:
        table = starfile.read(odir / "mics" / f"{mic.stem}_autopick.star")
        found.append(table[["rlnCoordinateX", "rlnCoordinateY"]].to_numpy(dtype=np.float64))
    return found, seconds, cpu_seconds


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _total(scores: list[PickScore]) -> PickScore:
    return PickScore(
        true_positives=sum(s.true_positives for s in scores),
        false_positives=sum(s.false_positives for s in scores),
        false_negatives=sum(s.false_negatives for s in scores),
    )


def _run(
    picker: Callable[[Path, float, float], tuple[np.ndarray, float, float]],
    data: list[tuple[Path, np.ndarray, str]],
    dmin: float,
    dmax: float,
    match: float,
) -> tuple[list[PickScore], float, float]:
    scores, wall, cpu = [], [], []
    for path, truth, _ in data:
        xy, seconds, cpu_seconds = picker(path, dmin, dmax)
        scores.append(score_picks(xy, truth, max_distance_px=match))
        wall.append(seconds)
        cpu.append(cpu_seconds)
    return scores, float(np.mean(wall)), float(np.mean(cpu))


def _cell(scores: list[PickScore], k: int) -> str:
    if not scores:
        return "-"
    s = scores[k]
    return f"{s.precision:.3f} / {s.recall:.3f} / {s.f1:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/cryolive-bench-picking"))
    parser.add_argument("--topaz", action="store_true", help="also Topaz's resnet16")
    parser.add_argument("--small", action="store_true", help="a ~55 kDa particle")
    parser.add_argument("--preset", default="realistic", help="the simulator's: or easy")
    args = parser.parse_args()
    if args.small:
        particle: dict[str, float | str] = dict(SMALL)
        dmin, dmax, match = SMALL_DIAMETER_MIN_A, SMALL_DIAMETER_MAX_A, SMALL_MATCH_A
        folder = args.cache / f"small{args.size}_{args.preset}"
    else:
        particle, dmin, dmax, match = {}, DIAMETER_MIN_A, DIAMETER_MAX_A, MATCH_A
        folder = args.cache / f"{args.size}_{args.preset}"
    particle["preset"] = args.preset
    data = _make(folder, args.n, args.size, particle)
    print(f"load before: {os.getloadavg()[0]:.2f} (1-min average), {os.cpu_count()} cores")
    os.sched_setaffinity(0, {0})  # one core, as relion_autopick without MPI
    rows: list[tuple[str, list[PickScore], float, float]] = []
    ours, seconds, cpu = _run(_cryolive, data, dmin, dmax, match)
    rows.append(("cryolive pick_log", ours, seconds, cpu))
    if args.topaz:
        importlib.import_module("torch").set_num_threads(1)  # one core: one thread
        topaz, seconds, cpu = _run(_topaz, data, dmin, dmax, match)
        rows.append(("topaz resnet16 (pick_topaz)", topaz, seconds, cpu))
    if shutil.which("relion_autopick"):
        found, seconds, cpu = _relion(folder, [p for p, _, _ in data], dmin, dmax)
        theirs = [
            score_picks(xy, truth, max_distance_px=match)
            for xy, (_, truth, _) in zip(found, data, strict=True)
        ]
        rows.append(("relion_autopick --LoG --shrink 0.5", theirs, seconds, cpu))
    print(f"load after: {os.getloadavg()[0]:.2f}")
    print("| micrograph | particles | " + " | ".join(f"{r[0]} P / R / F1" for r in rows) + " |")
    print("|---|---|" + "---|" * len(rows))
    for k, (_, truth, label) in enumerate(data):
        cells = " | ".join(_cell(r[1], k) for r in rows)
        print(f"| {label} | {len(truth)} | {cells} |")
    print("\n| picker | precision | recall | F1 | wall s / micrograph | CPU s / micrograph |")
    print("|---|---|---|---|---|---|")
    for name, scores, seconds, cpu in rows:
        t = _total(scores)
        print(f"| {name} | {t.precision:.3f} | {t.recall:.3f} | {t.f1:.3f} | {seconds:.2f} | "
              f"{cpu:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
