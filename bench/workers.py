"""Workers per stage scale with processes: CTF on RabbitMQ with 1, then 2 worker processes.

N micrographs (a weak-phase object through a known CTF, ``tests/engines/ctf_truth.py``) are
written once; for each process count P the bench starts P ``cryolive worker --service ctf``
processes (own queue prefix, no database: heartbeats and stopped-run checks off), waits until
all P consume, publishes the N CTF messages of the spa-preprocess recipe and times until the
N results are on the writer's queue. The workers' CPU (user + system, ``os.wait4``, their
start-up included) is read when they end. Process counts alternate ``--rounds`` times (the
machine is shared); the median rate of each is kept and the ratio given.

    .venv/bin/python bench/workers.py [--micrographs 16] [--size 4096] [--processes 1 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import ModuleType

import mrcfile
import numpy as np

from cryolive.messaging import open_transport
from cryolive.messaging.dispatch import envelope_for, send_to_step
from cryolive.messaging.recipe import load_recipe, recipe_path
from cryolive.params import RunParameters


def _truth() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "tests" / "engines" / "ctf_truth.py"
    spec = importlib.util.spec_from_file_location("ctf_truth", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def micrographs(folder: Path, n: int, size: int) -> list[Path]:
    truth, rng = _truth(), np.random.default_rng(22)
    paths = []
    for i in range(n):
        u = rng.uniform(8000, 30000)
        image = truth.micrograph(
            rng, shape=(size, size), pixel_size_a=1.0, defocus_u_a=u, defocus_v_a=u - 300.0,
            angle_deg=rng.uniform(0, 180), contrast=0.1, dose_e_per_px=40.0,
        )  # fmt: skip
        path = folder / f"mic_{i:03d}.mrc"
        with mrcfile.new(path) as mrc:
            mrc.set_data(image.astype(np.float32))
            mrc.voxel_size = 1.0
        paths.append(path)
    return paths


def run(paths: list[Path], project: Path, processes: int, broker: str) -> tuple[float, float]:
    """Movies per hour through ``processes`` CTF workers, and their CPU seconds per movie."""
    prefix = f"bench-workers-{uuid.uuid4().hex[:6]}."
    transport = open_transport(broker, prefix=prefix)
    recipe = load_recipe(recipe_path("spa-preprocess"))
    for queue in ("pick", "writer"):  # declared here (a publish, purged), so deleted at the end
        transport.publish(queue, b"")
        transport.purge(queue)
    env = {
        **os.environ,
        "CRYOLIVE_BROKER_URL": broker,
        "CRYOLIVE_BROKER_PREFIX": prefix,
        "CRYOLIVE_DATABASE_URL": f"sqlite:///{project}/unused.sqlite",
    }
    command = [sys.executable, "-m", "cryolive.cli", "worker", "--service", "ctf",
               "--registry", "cryolive.services:registry", "--no-heartbeats",
               "--no-drop-stopped"]  # fmt: skip
    workers = [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(processes)
    ]
    deadline = time.monotonic() + 120
    while transport.stats("ctf").consumers < processes:
        if time.monotonic() > deadline:
            raise SystemExit("the workers did not start consuming in 120 s")
        time.sleep(0.1)
    ctf = RunParameters().ctf.model_dump(mode="json")
    start = time.perf_counter()
    for i, path in enumerate(paths):
        values = {
            "movie_path": str(path), "data_collection_id": 1, "program_id": 1,
            "project_dir": str(project), "movie_stem": f"Movies/mic_{i:03d}",
            "micrograph_path": str(path), "micrograph_pixel_size_a": 1.0,
            "acquisition": {"voltage_kv": 300.0}, "ctf": ctf,
        }  # fmt: skip
        envelope = envelope_for(recipe, "ctf", values)
        send_to_step(transport, recipe.steps["ctf"], envelope.to_bytes())
    while transport.depth("writer") < len(paths):
        if time.perf_counter() - start > 1800:
            raise SystemExit("the results did not arrive in 30 min")
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    cpu = 0.0
    for worker in workers:
        worker.terminate()
        usage = os.wait4(worker.pid, 0)[2]
        cpu += usage.ru_utime + usage.ru_stime
    transport.delete_declared()
    transport.close()
    return 3600 * len(paths) / elapsed, cpu / len(paths)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--micrographs", type=int, default=16)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672//")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        folder = Path(tmp)
        paths = micrographs(folder, args.micrographs, args.size)
        rates: dict[int, list[float]] = {p: [] for p in args.processes}
        cpus: dict[int, list[float]] = {p: [] for p in args.processes}
        loads = []
        for _ in range(args.rounds):
            for p in args.processes:  # alternate: each count sees the same machine load
                loads.append(os.getloadavg()[0])
                rate, cpu = run(paths, folder / f"project-{p}", p, args.amqp)
                rates[p].append(rate)
                cpus[p].append(cpu)
    base = statistics.median(rates[args.processes[0]])
    print(
        f"# CTF on {args.micrographs} micrographs {args.size}², RabbitMQ, {os.cpu_count()} CPUs, "
        f"load average {min(loads):.1f}-{max(loads):.1f}, median of {args.rounds}"
    )
    print("| worker processes | movies/h | CPU s / movie | ratio to the first |")
    print("|---|---|---|---|")
    for p in args.processes:
        r = statistics.median(rates[p])
        print(
            f"| {p} | {r:.0f} ({min(rates[p]):.0f}-{max(rates[p]):.0f}) "
            f"| {statistics.median(cpus[p]):.2f} | {r / base:.2f} |"
        )


if __name__ == "__main__":
    main()
