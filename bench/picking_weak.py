"""Picking benchmark on weak particles cryolive's simulator did not make: cryolive's LoG at
default settings beside ``relion_autopick --LoG`` at its default threshold and with the
threshold adjusted, on the same micrographs, in one run.

Micrographs: ``tests/engines/weak_particles.py`` (an independent generator: lumpy weak-phase
globules 25-35 Å across at 0.003 rad/Å, CTF with positive underfocus, Poisson counts at
1 e/px/frame summed over 30 frames, 4 % low-frequency ice texture), 1024² at 1 Å/px, written
as MRC. Defocus cycles over 0.8-2.0 µm and the particle count over 30-300. Both pickers get
the diameter range 25-35 Å; a pick counts within 15 Å of a particle (one to one). RELION runs
with ``--shrink 0.5 --lowpass 10 --angpix 1`` and each ``--LoG_adjust_threshold`` given
(its default is 0; lower picks more). Precision, recall and F1 are over all micrographs.

    .venv/bin/python bench/picking_weak.py [--n 8] [--adjust 0 1 2 3] [--cache DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import mrcfile
import numpy as np
import pandas as pd
import starfile

from cryolive.engines.picking import PickScore, pick_log, score_picks

DMIN_A, DMAX_A, MATCH_PX = 25.0, 35.0, 15.0
CONDITIONS = [  # seed, defocus Å, particles
    (2, 12000.0, 120),
    (3, 16000.0, 120),
    (4, 20000.0, 300),
    (5, 14000.0, 30),
    (6, 10000.0, 200),
    (1, 8000.0, 120),
    (7, 18000.0, 80),
    (9, 13000.0, 160),
]


def _generator() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "tests" / "engines" / "weak_particles.py"
    spec = importlib.util.spec_from_file_location("cryolive_bench_weak_particles", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _make(folder: Path, n: int) -> list[tuple[Path, np.ndarray, str]]:
    weak = _generator()
    mics = folder / "mics"
    mics.mkdir(parents=True, exist_ok=True)
    out = []
    for seed, defocus, count in CONDITIONS[:n]:
        m = weak.weak_micrograph(np.random.default_rng(seed), defocus_a=defocus, n_particles=count)
        path = mics / f"weak_{seed:02d}.mrc"
        with mrcfile.new(path, overwrite=True) as mrc:
            mrc.set_data(m.image)
            mrc.voxel_size = 1.0
        label = f"{defocus / 1e4:.1f} µm, seed {seed}"
        out.append((path, m.centres_yx[:, ::-1].copy(), label))
    return out


def _total(scores: list[PickScore]) -> PickScore:
    return PickScore(
        true_positives=sum(s.true_positives for s in scores),
        false_positives=sum(s.false_positives for s in scores),
        false_negatives=sum(s.false_negatives for s in scores),
    )


def _relion(
    folder: Path, data: list[tuple[Path, np.ndarray, str]], adjust: float
) -> list[PickScore]:
    odir = folder / "AutoPick"
    shutil.rmtree(odir, ignore_errors=True)
    command = [
        "relion_autopick", "--i", "mics/*.mrc", "--odir", "AutoPick/", "--pickname", "autopick",
        "--LoG", "--LoG_diam_min", str(DMIN_A), "--LoG_diam_max", str(DMAX_A),
        "--shrink", "0.5", "--lowpass", "10", "--angpix", "1",
        "--LoG_adjust_threshold", str(adjust),
    ]  # fmt: skip
    subprocess.run(command, cwd=folder, check=True, capture_output=True)
    scores = []
    for path, truth, _ in data:
        star = odir / "mics" / f"{path.stem}_autopick.star"
        table = starfile.read(star) if star.exists() else None
        xy = (
            table[["rlnCoordinateX", "rlnCoordinateY"]].to_numpy(dtype=np.float64)
            if isinstance(table, pd.DataFrame) and len(table)
            else np.zeros((0, 2))  # no picks: RELION writes an empty table
        )
        scores.append(score_picks(xy, truth, max_distance_px=MATCH_PX))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--adjust", type=float, nargs="*", default=[0.0, 1.0, 2.0, 3.0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/cryolive-bench-picking-weak"))
    args = parser.parse_args()
    data = _make(args.cache, args.n)
    print(f"load before: {os.getloadavg()[0]:.2f} (1-min average), {os.cpu_count()} cores")
    rows: list[tuple[str, list[PickScore]]] = []
    ours, thresholds, start = [], [], time.perf_counter()
    for path, truth, _ in data:
        with mrcfile.open(path, permissive=True) as mrc:
            image = np.asarray(mrc.data, dtype=np.float32)
        picks = pick_log(image, pixel_size_a=1.0, diameter_min_a=DMIN_A, diameter_max_a=DMAX_A)
        xy = np.stack([picks.x_px, picks.y_px], axis=1)
        ours.append(score_picks(xy, truth, max_distance_px=MATCH_PX))
        thresholds.append(picks.threshold)
    seconds = (time.perf_counter() - start) / len(data)
    rows.append(("cryolive pick_log, default", ours))
    fixed = []
    for path, truth, _ in data:
        with mrcfile.open(path, permissive=True) as mrc:
            image = np.asarray(mrc.data, dtype=np.float32)
        picks = pick_log(
            image, pixel_size_a=1.0, diameter_min_a=DMIN_A, diameter_max_a=DMAX_A, threshold=5.0
        )
        xy = np.stack([picks.x_px, picks.y_px], axis=1)
        fixed.append(score_picks(xy, truth, max_distance_px=MATCH_PX))
    rows.append(("cryolive pick_log, fixed 5 SD (the old default)", fixed))
    if shutil.which("relion_autopick"):
        for adjust in args.adjust:
            rows.append(
                (f"relion_autopick --LoG, adjust {adjust:g}", _relion(args.cache, data, adjust))
            )
    print(f"load after: {os.getloadavg()[0]:.2f}; cryolive {seconds:.2f} s per micrograph")
    print(
        "| micrograph | particles | cryolive threshold | "
        + " | ".join(f"{r[0]} P / R / F1" for r in rows)
        + " |"
    )
    print("|---|---|---|" + "---|" * len(rows))
    for k, (_, truth, label) in enumerate(data):
        cells = " | ".join(
            f"{r[1][k].precision:.2f} / {r[1][k].recall:.2f} / {r[1][k].f1:.2f}" for r in rows
        )
        print(f"| {label} | {len(truth)} | {thresholds[k]:.2f} | {cells} |")
    print("\n| picker | precision | recall | F1 |")
    print("|---|---|---|---|")
    for name, scores in rows:
        t = _total(scores)
        print(f"| {name} | {t.precision:.3f} | {t.recall:.3f} | {t.f1:.3f} |")


if __name__ == "__main__":
    main()
