"""Accuracy on data made by cryojax (tests/engines/independent/cryojax_data.py): cryolive
beside RELION 3.1 on the same micrographs and movies, in one run.

- motion: drift RMSE (px, mean offset removed) of cryolive's ``correct_motion`` and of
  ``relion_run_motioncorr --use_own`` (through cryolive's adapter), 5 x 5 patches asked of both;
- picking: precision / recall / F1 (a pick counts within 15 Å, one to one) of cryolive's LoG
  at default settings and ``relion_autopick --LoG`` (``--shrink 0.5 --lowpass 10``) at each
  ``--LoG_adjust_threshold`` given, 1 Å/px: 30 Å particles picked over 25-35 Å and 50 Å
  particles over 40-60 Å;
- CTF: defocus U / V error (Å) and astigmatism angle error (°) of cryolive's ``estimate_ctf``
  against the values given to cryojax (mapped to cryolive's conventions). CTFFIND is not
  installed here: no peer column.

    .venv/bin/python bench/independent.py [--size 1024 --frames 24 --movies 3] [--skip-relion]
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import mrcfile
import numpy as np
import pandas as pd
import starfile
import tifffile

from cryolive.adapters.relion_motioncorr import find_relion_motioncorr, run_relion_motioncorr
from cryolive.engines.ctf import CtfFitError, CtfSearch, Optics, estimate_ctf
from cryolive.engines.motion import correct_motion
from cryolive.engines.picking import PickScore, pick_log, score_picks

_DATA = Path(__file__).resolve().parents[1] / "tests/engines/independent/cryojax_data.py"
PICKING = [(2, 12000.0), (3, 18000.0), (5, 15000.0), (6, 10000.0)]  # seed, defocus Å
# a second particle size: 50 Å, 80 per micrograph, picked over 40-60 Å, matched within 25 Å
PICKING_50 = [(21, 12000.0), (22, 18000.0), (23, 15000.0), (24, 10000.0)]
CTF = [  # seed, defocus Å, astigmatism Å, cryojax angle °
    (1, 15000.0, 800.0, 30.0),
    (11, 8000.0, 400.0, 100.0),
    (12, 22000.0, 1500.0, 160.0),
    (13, 12000.0, 0.0, 0.0),
]


def _cryojax_data() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cryolive_bench_cryojax_data", _DATA)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _total(scores: list[PickScore]) -> PickScore:
    return PickScore(
        true_positives=sum(s.true_positives for s in scores),
        false_positives=sum(s.false_positives for s in scores),
        false_negatives=sum(s.false_negatives for s in scores),
    )


def motion(cj: ModuleType, args: argparse.Namespace, tmp: Path) -> None:
    relion = not args.skip_relion and find_relion_motioncorr() is not None
    print(f"\n## motion, {args.size}² x {args.frames}, 1 e/px/frame, 5 x 5 asked")
    print("| movie | planted | cryolive | iterations | patches | s | RELION own | s |")
    print("|---|---|---|---|---|---|---|---|")
    ours, theirs = [], []
    for seed in range(100, 100 + args.movies):
        mv = cj.movie(np.random.default_rng(seed), shape=(args.size, args.size),
                      n_frames=args.frames)  # fmt: skip
        start = time.perf_counter()
        found = correct_motion(mv.frames, pixel_size_a=1.0, dose_per_frame_e_per_a2=1.0,
                               patches=(5, 5), workers=args.threads)  # fmt: skip
        s = time.perf_counter() - start
        ours.append(cj.drift_rmse(found.shifts_px, mv.drift_px))
        cells = ["-", "-"]
        if relion:
            path = tmp / f"movie{seed}.tiff"
            tifffile.imwrite(path, mv.frames)
            result = run_relion_motioncorr(path, tmp / f"relion{seed}", pixel_size_a=1.0,
                                           dose_per_frame_e_per_a2=1.0, patches=(5, 5),
                                           threads=args.threads)  # fmt: skip
            path.unlink()
            theirs.append(cj.drift_rmse(result.shifts_px, mv.drift_px))
            cells = [f"{theirs[-1]:.3f}", f"{result.seconds:.1f}"]
        patches = "x".join(map(str, found.patches_used)) if found.patches_used else "none"
        planted = cj.drift_rmse(np.zeros_like(mv.drift_px), mv.drift_px)
        print(f"| {seed} | {planted:.3f} | {ours[-1]:.3f} | {found.iterations} | {patches} | "
              f"{s:.1f} | {cells[0]} | {cells[1]} |", flush=True)  # fmt: skip
    print(f"cryolive mean {np.mean(ours):.3f} px" +
          (f"; RELION mean {np.mean(theirs):.3f} px" if theirs else ""))  # fmt: skip


def _relion_picks(
    folder: Path, paths: list[Path], adjust: float, diameters: tuple[float, float]
) -> list[np.ndarray]:
    odir = folder / "AutoPick"
    shutil.rmtree(odir, ignore_errors=True)
    command = [
        "relion_autopick", "--i", "mics/*.mrc", "--odir", "AutoPick/", "--pickname", "autopick",
        "--LoG", "--LoG_diam_min", f"{diameters[0]:g}", "--LoG_diam_max", f"{diameters[1]:g}",
        "--shrink", "0.5",
        "--lowpass", "10", "--angpix", "1", "--LoG_adjust_threshold", str(adjust),
    ]  # fmt: skip
    subprocess.run(command, cwd=folder, check=True, capture_output=True)
    out = []
    for path in paths:
        star = odir / "mics" / f"{path.stem}_autopick.star"
        table = starfile.read(star) if star.exists() else None
        ok = isinstance(table, pd.DataFrame) and len(table)
        xy = table[["rlnCoordinateX", "rlnCoordinateY"]].to_numpy(float) if ok else None
        out.append(xy if xy is not None else np.zeros((0, 2)))
    return out


def picking(cj: ModuleType, args: argparse.Namespace, tmp: Path, size_a: float) -> None:
    small = size_a == 30.0
    conditions = PICKING if small else PICKING_50
    diameters, match = ((25.0, 35.0), 15.0) if small else ((40.0, 60.0), 25.0)
    folder = tmp / f"picking{size_a:g}"
    (folder / "mics").mkdir(parents=True)
    paths, truths, rows = [], [], {"cryolive pick_log, default": []}
    thresholds = []
    for seed, defocus in conditions:
        kwargs = {} if small else {"n_particles": 80, "particle_diameter_a": size_a}
        m = cj.micrograph(np.random.default_rng(seed), defocus_a=defocus, **kwargs)
        path = folder / "mics" / f"cj_{seed:02d}.mrc"
        with mrcfile.new(path) as mrc:
            mrc.set_data(m.image)
            mrc.voxel_size = 1.0
        paths.append(path)
        truths.append(m.centres_yx[:, ::-1].copy())
        picks = pick_log(m.image, pixel_size_a=1.0, diameter_min_a=diameters[0],
                         diameter_max_a=diameters[1])  # fmt: skip
        thresholds.append(picks.threshold)
        xy = np.stack([picks.x_px, picks.y_px], axis=1)
        ours = score_picks(xy, truths[-1], max_distance_px=match)
        rows["cryolive pick_log, default"].append(ours)
    if not args.skip_relion and shutil.which("relion_autopick"):
        for adjust in args.adjust:
            found = _relion_picks(folder, paths, adjust, diameters)
            rows[f"relion_autopick --LoG, adjust {adjust:g}"] = [
                score_picks(xy, t, max_distance_px=match)
                for xy, t in zip(found, truths, strict=True)
            ]
    print(f"\n## picking, 1024² at 1 Å/px, {size_a:g} Å particles picked over "
          f"{diameters[0]:g}-{diameters[1]:g} Å, 30 e/px; cryolive thresholds "
          + ", ".join(f"{t:.2f}" for t in thresholds))  # fmt: skip
    print("| picker | " + " | ".join(f"{d / 1e4:.1f} µm P/R/F1" for _, d in conditions) +
          " | all: precision | recall | F1 |")  # fmt: skip
    print("|---|" + "---|" * (len(conditions) + 3))
    for name, scores in rows.items():
        t = _total(scores)
        cells = " | ".join(f"{s.precision:.2f}/{s.recall:.2f}/{s.f1:.2f}" for s in scores)
        print(f"| {name} | {cells} | {t.precision:.3f} | {t.recall:.3f} | {t.f1:.3f} |")


def ctf(cj: ModuleType) -> None:
    print("\n## CTF, 1024² at 2 Å/px, 40 e/px (CTFFIND not installed)")
    print("| defocus | astig | angle (cryolive) | U error Å | V error Å | angle error ° | s |")
    print("|---|---|---|---|---|---|---|")
    optics = Optics(pixel_size_a=2.0, amplitude_contrast=0.07)
    for seed, defocus, astig, angle in CTF:
        m = cj.micrograph(np.random.default_rng(seed), pixel_size_a=2.0, n_particles=60,
                          defocus_a=defocus, astigmatism_a=astig, cryojax_angle_deg=angle,
                          dose_per_px=40.0, amorphous_phase=0.1)  # fmt: skip
        start = time.perf_counter()
        try:
            r = estimate_ctf(m.image, optics=optics, search=CtfSearch(box_px=256)).result
        except CtfFitError as error:
            print(f"| {defocus:.0f} | {astig:.0f} | {m.angle_deg:.0f} | refused: {error} |||")
            continue
        s = time.perf_counter() - start
        d = abs(r.astigmatism_angle_deg - m.angle_deg) % 180.0
        angle_error = "-" if astig == 0 else f"{min(d, 180.0 - d):.2f}"
        print(f"| {defocus:.0f} | {astig:.0f} | {m.angle_deg:.0f} | "
              f"{r.defocus_u_a - m.defocus_u_a:+.0f} | {r.defocus_v_a - m.defocus_v_a:+.0f} | "
              f"{angle_error} | {s:.2f} |", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--movies", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--adjust", type=float, nargs="*", default=[0.0, 1.0, 2.0])
    parser.add_argument("--only", choices=["motion", "picking", "ctf"], default=None)
    parser.add_argument("--skip-relion", action="store_true")
    args = parser.parse_args()
    cj = _cryojax_data()
    with tempfile.TemporaryDirectory(prefix="independent_") as tmp:
        if args.only in (None, "ctf"):
            ctf(cj)
        if args.only in (None, "picking"):
            picking(cj, args, Path(tmp), 30.0)
            picking(cj, args, Path(tmp), 50.0)
        if args.only in (None, "motion"):
            motion(cj, args, Path(tmp))


if __name__ == "__main__":
    main()
