"""Motion correction accuracy on movies cryolive did not make: cryolive beside RELION 3.1's
own implementation (``relion_run_motioncorr --use_own``) on the same movies.

The movies come from the independent generator of the tests
(tests/engines/motion/independent_movies.py: exponential settle + linear creep + wobble,
Poisson counts at ``--dose`` e/px per frame, weak-phase CTF of random particles on
low-frequency ice), not from ``cryolive.simulate``. Drift RMSE is the RMS distance (px)
between the found and the planted whole-frame trajectory after removing the mean offset.
Both engines get the same patch grid and run one after the other with ``--threads``.

    .venv/bin/python bench/motion_accuracy.py --size 1024 --frames 24 --movies 6
    .venv/bin/python bench/motion_accuracy.py --size 4096 --frames 40 --movies 3 --cache /tmp/m4k

``--source simulator`` takes the movies from ``cryolive.simulate`` instead, at its realistic
default (``--preset easy`` for the old one) with an ideal detector (no gain spread, hot or dead
pixels, so that both engines get the same counts without a gain file); the planted drift is
the truth's whole-frame drift (the default's 0.4 px of local motion stays in the movie).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import tifffile

from cryolive.adapters.relion_motioncorr import find_relion_motioncorr, run_relion_motioncorr
from cryolive.engines.motion import correct_motion

_GENERATOR = Path(__file__).parents[1] / "tests" / "engines" / "motion" / "independent_movies.py"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("independent_movies", _GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _movie(gen: ModuleType, seed: int, args: argparse.Namespace, cache: Path) -> tuple:
    frames_path = cache / f"frames_{args.size}_{args.frames}_{seed}.npy"
    drift_path = cache / f"drift_{args.size}_{args.frames}_{seed}.npy"
    if frames_path.exists() and drift_path.exists():
        return np.load(frames_path), np.load(drift_path)
    movie = gen.independent_movie(seed, shape=(args.size, args.size), n_frames=args.frames,
                                  dose_per_px=args.dose, workers=args.threads)  # fmt: skip
    np.save(frames_path, movie.frames)
    np.save(drift_path, movie.drift_px)
    return movie.frames, movie.drift_px


def _simulated(seed: int, args: argparse.Namespace, cache: Path) -> tuple:
    from cryolive.io.movies import read_movie
    from cryolive.simulate import MovieConfig, VisitConfig, simulate_visit

    movie = MovieConfig.preset(
        args.preset, n_frames=args.frames, dose_e_per_a2=args.dose * args.frames,
        gain_spread=0.0, hot_pixel_fraction=0.0, dead_pixel_fraction=0.0,
    )  # fmt: skip
    config = VisitConfig(movies_per_grid=1, detector="1k", shape_px=(args.size, args.size),
                         format="tiff", seed=seed, movie=movie)  # fmt: skip
    folder = cache / f"sim_{args.preset}_{args.size}_{args.frames}_{seed}"
    truth = simulate_visit(config, folder).grids[0].movies[0]
    frames = read_movie(folder / truth.movie)
    return frames, np.stack([truth.drift_y_px, truth.drift_x_px], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--movies", type=int, default=6)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--dose", type=float, default=1.0, help="e/px per frame")
    parser.add_argument("--patches", type=int, nargs=2, default=(5, 5))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=None, help="keep generated movies here")
    parser.add_argument("--skip-relion", action="store_true")
    parser.add_argument("--source", choices=("independent", "simulator"), default="independent")
    parser.add_argument("--preset", default="realistic", help="with --source simulator")
    args = parser.parse_args()
    gen = _generator()
    run_relion = not args.skip_relion and find_relion_motioncorr() is not None
    rows = []
    with tempfile.TemporaryDirectory(prefix="motion_accuracy_") as tmp:
        cache = args.cache or Path(tmp)
        cache.mkdir(parents=True, exist_ok=True)
        header = f"{'movie':>5} {'planted':>8} {'cryolive':>9} {'iter':>4} {'patches':>7} "
        header += f"{'s':>6} {'RELION':>8} {'s':>6}"
        print(header, flush=True)
        for seed in range(args.first_seed, args.first_seed + args.movies):
            if args.source == "simulator":
                frames, planted = _simulated(seed, args, cache)
            else:
                frames, planted = _movie(gen, seed, args, cache)
            start = time.perf_counter()
            found = correct_motion(frames, pixel_size_a=1.0, dose_per_frame_e_per_a2=args.dose,
                                   patches=tuple(args.patches), workers=args.threads)  # fmt: skip
            ours_s = time.perf_counter() - start
            row = {
                "seed": seed,
                "planted_rmse_px": gen.drift_rmse(np.zeros_like(planted), planted),
                "cryolive_rmse_px": gen.drift_rmse(found.shifts_px, planted),
                "cryolive_iterations": found.iterations,
                "cryolive_converged": found.converged,
                "cryolive_patches": found.patches_used,
                "cryolive_s": ours_s,
                "relion_rmse_px": None,
                "relion_s": None,
            }
            if run_relion:
                movie = Path(tmp) / f"movie{seed}.tiff"
                tifffile.imwrite(movie, frames)
                theirs = run_relion_motioncorr(
                    movie, Path(tmp) / f"relion{seed}", pixel_size_a=1.0,
                    dose_per_frame_e_per_a2=args.dose, patches=tuple(args.patches),
                    threads=args.threads,
                )  # fmt: skip
                movie.unlink()
                row["relion_rmse_px"] = gen.drift_rmse(theirs.shifts_px, planted)
                row["relion_s"] = theirs.seconds
            rows.append(row)
            patches = "x".join(map(str, found.patches_used)) if found.patches_used else "none"
            relion = "-" if row["relion_rmse_px"] is None else f"{row['relion_rmse_px']:.3f}"
            relion_s = "-" if row["relion_s"] is None else f"{row['relion_s']:.1f}"
            print(f"{seed:>5} {row['planted_rmse_px']:>8.3f} {row['cryolive_rmse_px']:>9.3f} "
                  f"{found.iterations:>4} {patches:>7} {ours_s:>6.1f} {relion:>8} "
                  f"{relion_s:>6}", flush=True)  # fmt: skip
    ours = [r["cryolive_rmse_px"] for r in rows]
    print(f"cryolive drift RMSE: mean {np.mean(ours):.3f} px, "
          f"range {min(ours):.3f}-{max(ours):.3f}")  # fmt: skip
    if run_relion:
        theirs = [r["relion_rmse_px"] for r in rows]
        print(f"RELION   drift RMSE: mean {np.mean(theirs):.3f} px, "
              f"range {min(theirs):.3f}-{max(theirs):.3f}")  # fmt: skip
    print(json.dumps({"source": args.source, "preset": args.preset, "size": args.size,
                      "frames": args.frames, "dose_per_px": args.dose,
                      "patches": args.patches, "rows": rows}))  # fmt: skip


if __name__ == "__main__":
    main()
