"""Start-up and small jobs: ``cryolive --help``, one ``cryolive ctf`` call on one 4096²
micrograph, one ``cryolive motioncorr`` call on one 1024² x 24 movie against the same call with
``--engine relion`` (RELION 3.1's ``relion_run_motioncorr``), interleaved, each a fresh process.

Wall and CPU seconds (user + system of the process and what it waited for) and peak memory
(maximum resident set) per call, the median of ``--repeats``; the machine's load beside them.
With RELION, ``relion_run_motioncorr``'s own process is measured too (through a shim on PATH
that runs it under /usr/bin/time): the peer of a small ``cryolive motioncorr`` job.
``--before SRC`` runs every cryolive call a second time from another checkout's ``src``
(e.g. main's), interleaved in the same loop: before and after under the same load.

    .venv/bin/python bench/startup.py [--repeats 3] [--work DIR] [--skip-relion] [--before SRC]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import mrcfile
import numpy as np

from cryolive.simulate import MovieConfig, VisitConfig, VisitTruth, simulate_visit

ROOT = Path(__file__).resolve().parents[1]


def _micrograph(path: Path) -> None:
    spec = importlib.util.spec_from_file_location("ctf_truth", ROOT / "tests/engines/ctf_truth.py")
    assert spec is not None and spec.loader is not None
    truth = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(truth)
    image = truth.micrograph(
        np.random.default_rng(1), shape=(4096, 4096), pixel_size_a=1.0,
        defocus_u_a=16000.0, defocus_v_a=15200.0, angle_deg=30.0,
    )  # fmt: skip
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.asarray(image, dtype=np.float32))
        mrc.voxel_size = 1.0


def _movie(visit: Path) -> tuple[Path, Path]:
    if not (visit / "truth.json").exists():
        movie = MovieConfig(n_frames=24, dose_e_per_a2=24.0)
        config = VisitConfig(movies_per_grid=1, detector="1k", shape_px=(1024, 1024), seed=7,
                             format="tiff", movie=movie)  # fmt: skip
        simulate_visit(config, visit)
    grid = VisitTruth.read(visit / "truth.json").grids[0]
    assert grid.gain.path is not None
    return visit / grid.movies[0].movie, visit / grid.gain.path


Figures = tuple[float, float, float]  # wall s, CPU s, peak MB


def _read_time(report: Path) -> Figures:
    wall, user, system, peak_kb = report.read_text().split()[-4:]
    return float(wall), float(user) + float(system), float(peak_kb) / 1024


def _call(args: list[str], work: Path, env: dict[str, str]) -> Figures:
    """Wall s, CPU s and peak MB of one ``cryolive ARGS`` in a fresh interpreter.

    Measured by /usr/bin/time (a small process): a child forked from this one would inherit
    this process's peak resident set as its own."""
    report = work / "time.txt"
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%e %U %S %M", "-o", str(report),
         sys.executable, "-m", "cryolive", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False,
        env={**env, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"cryolive {' '.join(args)} failed: {done.stderr}")
    return _read_time(report)


def _relion_shim(work: Path) -> tuple[Path, Path] | None:
    """A folder holding a ``relion_run_motioncorr`` that runs the real one under
    /usr/bin/time (into the returned report file); None without RELION."""
    real = shutil.which("relion_run_motioncorr")
    if real is None:
        return None
    folder = work / "shim"
    folder.mkdir(exist_ok=True)
    report = work / "relion-time.txt"
    shim = folder / "relion_run_motioncorr"
    shim.write_text(f'#!/bin/sh\nexec /usr/bin/time -f "%e %U %S %M" -o {report} {real} "$@"\n')
    shim.chmod(0o755)
    return folder, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "cl-startup")
    parser.add_argument("--skip-relion", action="store_true")
    parser.add_argument(
        "--before", type=Path, help="another checkout's src: its calls interleaved with these"
    )
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    micrograph = args.work / "micrograph.mrc"
    if not micrograph.exists():
        _micrograph(micrograph)
    movie, gain = _movie(args.work / "visit")
    motion = [
        "motioncorr", str(movie), "--pixel-size", "1", "--dose-per-frame", "1",
        "--gain", str(gain), "--threads", "1",
    ]  # fmt: skip
    calls = {
        "cryolive --help": ["--help"],
        "cryolive ctf (4096², 1 micrograph)": ["ctf", str(micrograph), "--out", "OUT"],
        "cryolive motioncorr (1024² x 24)": [*motion, "--out", "OUT"],
    }
    shim = None if args.skip_relion else _relion_shim(args.work)
    if shim is not None:
        relion = [*motion, "--engine", "relion", "--out", "OUT"]
        calls["cryolive motioncorr --engine relion"] = relion
    trees = {"": str(ROOT / "src")}
    if args.before is not None:
        trees[" (before)"] = str(args.before.resolve())
    peer = "relion_run_motioncorr --use_own alone (its own process)"
    figures: dict[str, list[Figures]] = {}
    print(f"load before: {os.getloadavg()[0]:.1f}", flush=True)
    for repeat in range(args.repeats):
        for i, (name, call) in enumerate(calls.items()):
            for label, src in trees.items():
                env = {**os.environ, "PYTHONPATH": src}
                if shim is not None:
                    env["PATH"] = f"{shim[0]}{os.pathsep}{env.get('PATH', '')}"
                out = str(args.work / f"out-{repeat}-{i}{label.strip(' ()')}")
                call_args = [out if a == "OUT" else a for a in call]
                figures.setdefault(name + label, []).append(_call(call_args, args.work, env))
                if shim is not None and "--engine" in call:
                    figures.setdefault(peer + label, []).append(_read_time(shim[1]))
    print(f"load after: {os.getloadavg()[0]:.1f}\n")
    print("| call | wall s | CPU s | peak MB |")
    print("|---|---|---|---|")
    for name, runs in figures.items():
        wall, cpu, peak = (statistics.median(x) for x in zip(*runs, strict=True))
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {peak:.0f} |")


if __name__ == "__main__":
    main()
