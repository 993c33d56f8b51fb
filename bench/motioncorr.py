"""Motion correction: cryolive against RELION 3.1's own implementation, on the same simulated
4096 x 4096 x 40-frame movies (1 Å/px, 1 e/Å² per frame, drift plus local motion), 5 x 5
patches, dose weighting, in one run.

Both run as two processes at once, one thread each, one movie each (the two cores of the
machine), so throughput is movies per second of wall time; on a shared machine the CPU
time (user + system, of the process and of what it started) per movie is the steadier
measure. Each process's peak memory is its
maximum resident set (``getrusage``); drift RMSE is against the simulator's planted whole-frame
drift, after removing each trajectory's mean offset. RELION is installed with apt if missing.

With ``--independent`` the movies come instead from the tests' independent generator
(tests/engines/motion/independent_movies.py, as bench/motion_accuracy.py: not
``cryolive.simulate``), written as LZW TIFF like EPU's, no gain; ``--cache`` reuses the
frames motion_accuracy.py keeps.

    .venv/bin/python bench/motioncorr.py [--movies 2] [--visit DIR] [--skip-relion] [--rounds 3]
    .venv/bin/python bench/motioncorr.py --independent [--cache /tmp/m4k] [--visit DIR]
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
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

from cryolive.engines.motion import GainTransform
from cryolive.io.gain import read_gain
from cryolive.simulate import MovieConfig, VisitConfig, VisitTruth, simulate_visit

SHAPE = (4096, 4096)
_GENERATOR = Path(__file__).parents[1] / "tests" / "engines" / "motion" / "independent_movies.py"


def _simulate(visit: Path, movies: int) -> VisitTruth:
    if (visit / "truth.json").exists():
        truth = VisitTruth.read(visit / "truth.json")
        if (
            len(truth.grids[0].movies) >= movies
            and tuple(truth.grids[0].movies[0].shape_px[1:]) == SHAPE
        ):
            return truth
    shutil.rmtree(visit, ignore_errors=True)
    print(f"simulating {movies} movies of {SHAPE} x 40 into {visit} …", flush=True)
    movie = MovieConfig(n_frames=40, dose_e_per_a2=40.0)
    config = VisitConfig(
        movies_per_grid=movies, detector="1k", shape_px=SHAPE, seed=7, format="tiff", movie=movie
    )
    return simulate_visit(config, visit)


def _independent(visit: Path, movies: int, cache: Path | None) -> list[np.ndarray]:
    """Movies of the independent generator as ``movie{i}.tiff`` in ``visit``; planted drifts."""
    spec = importlib.util.spec_from_file_location("independent_movies", _GENERATOR)
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = gen
    spec.loader.exec_module(gen)
    visit.mkdir(parents=True, exist_ok=True)
    drifts = []
    for seed in range(movies):
        tiff, drift_path = visit / f"movie{seed}.tiff", visit / f"drift{seed}.npy"
        if not (tiff.exists() and drift_path.exists()):
            name = f"{SHAPE[0]}_40_{seed}.npy"  # bench/motion_accuracy.py's cache names
            if cache is not None and (cache / f"frames_{name}").exists():
                frames, drift = np.load(cache / f"frames_{name}"), np.load(cache / f"drift_{name}")
            else:
                print(f"generating independent movie {seed} …", flush=True)
                movie = gen.independent_movie(seed, shape=SHAPE, n_frames=40, dose_per_px=1.0)
                frames, drift = movie.frames, movie.drift_px
            tifffile.imwrite(tiff, frames, compression="lzw")
            np.save(drift_path, drift)
        drifts.append(np.load(drift_path))
    (visit / "independent.json").write_text(json.dumps({"movies": movies}))
    return drifts


def _gain(visit: Path, truth: VisitTruth) -> np.ndarray:
    grid = truth.grids[0]
    assert grid.gain.path is not None
    return GainTransform(grid.gain.rotate_deg, grid.gain.flip).apply(  # type: ignore[arg-type]
        read_gain(visit / grid.gain.path)
    )


def _child(tool: str, visit: Path, index: int, out: Path) -> None:
    """One movie with one tool, in this (child) process; writes shifts and timings as JSON."""
    gain: np.ndarray | None = None
    if (visit / "independent.json").exists():
        movie = visit / f"movie{index}.tiff"
    else:
        truth = VisitTruth.read(visit / "truth.json")
        movie = visit / truth.grids[0].movies[index].movie
        gain = _gain(visit, truth)
    from cryolive.adapters.relion_motioncorr import run_relion_motioncorr
    from cryolive.engines.motion import correct_motion
    from cryolive.io.movies import read_movie

    start, cpu_start = time.perf_counter(), time.process_time()
    if tool == "cryolive":
        frames = read_movie(movie)
        result = correct_motion(frames, pixel_size_a=1.0, dose_per_frame_e_per_a2=1.0,
                                gain=gain, patches=(5, 5), workers=1)  # fmt: skip
        shifts = result.shifts_px
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        work_cpu = time.process_time() - cpu_start
    else:
        with tempfile.TemporaryDirectory(dir=out.parent) as work:
            relion = run_relion_motioncorr(movie, Path(work), pixel_size_a=1.0,
                                           dose_per_frame_e_per_a2=1.0, gain=gain,
                                           patches=(5, 5), threads=1)  # fmt: skip
        shifts = relion.shifts_px
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_kb = usage.ru_maxrss
        work_cpu = usage.ru_utime + usage.ru_stime  # the RELION process
    seconds = time.perf_counter() - start
    out.write_text(json.dumps({"shifts": shifts.tolist(), "seconds": seconds, "peak_kb": peak_kb,
                               "work_cpu_s": work_cpu}))  # fmt: skip


def _rmse(found: np.ndarray, planted: np.ndarray) -> float:
    diff = found - planted
    diff -= diff.mean(axis=0)
    return float(np.sqrt(np.mean(np.sum(diff**2, axis=1))))


def _run_tool(
    tool: str, visit: Path, planted: list[np.ndarray], movies: int, scratch: Path
) -> dict[str, float]:
    """``movies`` movies, two processes at a time; seconds per movie of wall time."""
    wall = 0.0
    results = []
    for first in range(0, movies, 2):
        batch = list(range(first, min(first + 2, movies)))
        start = time.perf_counter()
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    tool,
                    "--visit",
                    str(visit),
                    "--index",
                    str(i),
                    "--out",
                    str(scratch / f"{tool}-{i}.json"),
                ],
                env={**os.environ, "OMP_NUM_THREADS": "1"},
            )
            for i in batch
        ]
        cpu_s = {}
        for i, proc in zip(batch, procs, strict=True):
            # wait4: CPU time of the child and of what it waited for (RELION's process).
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode != 0:
                raise RuntimeError(f"{tool} child failed with exit code {proc.returncode}")
            cpu_s[i] = usage.ru_utime + usage.ru_stime
        wall += time.perf_counter() - start
        for i in batch:
            data = json.loads((scratch / f"{tool}-{i}.json").read_text())
            rmse = _rmse(np.array(data["shifts"]), planted[i])
            results.append(
                (data["seconds"], data["peak_kb"] / 1e6, rmse, cpu_s[i], data["work_cpu_s"])
            )
    seconds, peak_gb, rmse_px, cpu, work_cpu = np.array(results).T
    return {
        "wall_s_per_movie": wall / movies,
        "process_s_per_movie": float(seconds.mean()),
        "cpu_s_per_movie": float(cpu.mean()),
        "work_cpu_s_per_movie": float(work_cpu.mean()),
        "peak_gb": float(peak_gb.max()),
        "rmse_px": float(np.sqrt(np.mean(rmse_px**2))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movies", type=int, default=2)
    parser.add_argument(
        "--visit", type=Path, default=Path(tempfile.gettempdir()) / "cryolive-bench-motioncorr"
    )
    parser.add_argument("--skip-relion", action="store_true")
    parser.add_argument(
        "--independent", action="store_true", help="movies of the tests' independent generator"
    )
    parser.add_argument("--cache", type=Path, default=None, help="motion_accuracy.py's cache")
    parser.add_argument(
        "--rounds", type=int, default=1, help="rounds, order alternating (ABBA …); medians"
    )
    parser.add_argument("--child", choices=["cryolive", "relion"])
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.visit, args.index, args.out)
        return
    if args.independent:
        planted = _independent(args.visit, args.movies, args.cache)
    else:
        truth = _simulate(args.visit, args.movies)
        planted = [np.stack([m.drift_y_px, m.drift_x_px], axis=1)
                   for m in truth.grids[0].movies[: args.movies]]  # fmt: skip
    tools = ["cryolive"]
    if not args.skip_relion:
        if shutil.which("relion_run_motioncorr") is None:
            print("installing relion (apt-get install -y relion) …", flush=True)
            subprocess.run(["apt-get", "install", "-y", "relion"], check=True)
        tools.append("relion")
    print(f"load before: {os.getloadavg()}", flush=True)
    runs: dict[str, list[dict[str, float]]] = {tool: [] for tool in tools}
    with tempfile.TemporaryDirectory() as scratch:
        for round_ in range(args.rounds):
            for tool in tools if round_ % 2 == 0 else tools[::-1]:
                row = _run_tool(tool, args.visit, planted, args.movies, Path(scratch))
                runs[tool].append(row)
                print(tool, row, f"load: {os.getloadavg()}", flush=True)
    rows = {
        tool: {key: float(np.median([r[key] for r in found])) for key in found[0]}
        | {"peak_gb": max(r["peak_gb"] for r in found)}
        for tool, found in runs.items()
    }
    print(
        "\n| engine | CPU s per movie, work (whole process) | s per movie (2 processes, wall) "
        "| s per movie in its process | peak memory per process (GB) | drift RMSE (px) |"
    )
    print("|---|---|---|---|---|---|")
    for tool, row in rows.items():
        print(f"| {tool} | {row['work_cpu_s_per_movie']:.1f} ({row['cpu_s_per_movie']:.1f}) | "
              f"{row['wall_s_per_movie']:.1f} | "
              f"{row['process_s_per_movie']:.1f} | "
              f"{row['peak_gb']:.2f} | {row['rmse_px']:.3f} |")  # fmt: skip
    if "relion" in rows:

        def ratio(key: str) -> float:  # median over rounds of RELION / cryolive in each round
            pairs = zip(runs["relion"], runs["cryolive"], strict=True)
            return float(np.median([theirs[key] / ours[key] for theirs, ours in pairs]))

        wall, cpu = ratio("wall_s_per_movie"), ratio("cpu_s_per_movie")
        work = ratio("work_cpu_s_per_movie")
        print(
            f"\nthroughput cryolive / RELION: {wall:.1f}x by wall time, {cpu:.1f}x by CPU time "
            f"of the whole processes, {work:.1f}x by CPU time of the work (read + correct; "
            f"RELION: its own process); load after: {os.getloadavg()}"
        )


if __name__ == "__main__":
    main()
