"""Sustained movies per hour and latency from landing to CTF in the database.

Movies are simulated first into a staging folder (not timed), then land in the watched visit
folder by rename (atomic: a landed movie is complete), all at once (throughput: the pipeline
works through a backlog) or at a chosen rate (latency). The time a movie's CTF row appears is
read by polling the database every 0.2 s.

    .venv/bin/python bench/pipeline.py --detector 1k --movies 12 [--rate 600] [--facility]

``--facility`` runs each service as its own ``cryolive worker`` process on MariaDB and
RabbitMQ (as at a facility); the default is the embedded deployment (SQLite, in-process broker).

After the run a second table gives each stage's own cost per movie: messages handled, handler
wall seconds and CPU seconds. Embedded: the CPU of the handler's thread from the workers'
metrics (``cryolive_handler_cpu_seconds_total``; FFT worker threads an engine starts are in
"process", not in a stage); facility: each worker process's whole CPU (``os.wait4``). The
stage's own throughput is ``3600 / wall s per movie`` at concurrency 1; "cores bound" is
``3600 x cores / process CPU per movie``, what the cores allow were every stage overlapped.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from ispyb.sqlalchemy import CTF, MotionCorrection, Movie

from cryolive.db import make_engine, upgrade
from cryolive.messaging.recipe import load_recipe
from cryolive.pipeline.runtime import VisitFolder, recipe_path, start_pipeline
from cryolive.simulate import MovieConfig, VisitConfig, simulate_visit


def services() -> list[str]:
    """One worker process per service the recipe uses."""
    recipe = load_recipe(recipe_path("spa-preprocess"))
    return sorted({step.service for step in recipe.steps.values()})


def stage(
    detector: str, movies: int, frames: int, folder: Path, fmt: str | None
) -> list[tuple[Path, Path]]:
    """Simulate the movies; return (movie, metadata) pairs relative to the staging visit."""
    staging = folder / "staging"
    config = VisitConfig(
        detector=detector,
        movie=MovieConfig.preset("easy", n_frames=frames),
        movies_per_grid=movies,
        format=fmt,
    )
    simulate_visit(config, staging)
    pairs = []
    for movie in sorted(staging.rglob("Data/*")):
        # K3 ``_fractions.tiff``; Falcon ``_Fractions.mrc`` (or ``.tiff``) and ``_EER.eer``
        stem = re.split(r"_(?:fractions|Fractions|EER)\.", movie.name)
        if len(stem) == 2:
            xml = movie.with_name(stem[0] + ".xml")
            pairs.append((movie.relative_to(staging), xml.relative_to(staging)))
    if not pairs:
        raise SystemExit(f"no movies found under {staging}")
    return pairs


def land(
    staging: Path,
    visit: Path,
    pairs: list[tuple[Path, Path]],
    rate: float | None,
    landed: dict[str, float],
) -> None:
    for i, (movie, xml) in enumerate(pairs):
        if rate:
            time.sleep(max(0.0, landed.get("_start", time.time()) + i * 3600 / rate - time.time()))
        (visit / movie).parent.mkdir(parents=True, exist_ok=True)
        os.rename(staging / movie, visit / movie)
        os.rename(staging / xml, visit / xml)
        landed[str(visit / movie)] = time.time()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", default="1k")
    parser.add_argument("--movies", type=int, default=12)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--format", default=None, help="tiff, mrc or eer (default: detector's)")
    parser.add_argument("--rate", type=float, default=None, help="movies per hour landing")
    parser.add_argument("--facility", action="store_true")
    parser.add_argument("--mariadb", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--rabbitmq", default="amqp://guest:guest@127.0.0.1:5672//")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pairs = stage(args.detector, args.movies, args.frames, folder, args.format)
        visit = folder / "visit"
        (visit / "raw").mkdir(parents=True)
        for gain in (folder / "staging" / "raw").glob("*gain*"):
            shutil.copy(gain, visit / "raw")
        workers: list[subprocess.Popen[bytes]] = []
        prefix = f"bench{uuid.uuid4().hex[:6]}."
        name = f"cryolive_bench_{uuid.uuid4().hex[:8]}"
        if args.facility:
            admin = sa.create_engine(args.mariadb)
            with admin.begin() as connection:
                connection.exec_driver_sql(f"CREATE DATABASE `{name}`")
            database, broker = f"{args.mariadb}/{name}", args.rabbitmq
            engine = make_engine(database)
            upgrade(engine)
            env = {
                **os.environ,
                "CRYOLIVE_DATABASE_URL": database,
                "CRYOLIVE_BROKER_URL": broker,
                "CRYOLIVE_BROKER_PREFIX": prefix,
            }
            workers = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "cryolive.cli",
                        "worker",
                        "--service",
                        s,
                        "--registry",
                        "cryolive.services:registry",
                    ],
                    env=env,
                )
                for s in services()
            ]
        else:
            database, broker = f"sqlite:///{folder / 'bench.sqlite'}", "memory://bench"
            engine = make_engine(database)
        pipeline = start_pipeline(
            database_url=database,
            broker_url=broker,
            visits=[VisitFolder(visit, "bi23047-5")],
            poll_s=0.5,
            settle_s=1.0,
            services=[] if args.facility else None,
            prefix=prefix if args.facility else "",
        )
        landed: dict[str, float] = {"_start": time.time()}
        feeder = threading.Thread(
            target=land, args=(folder / "staging", visit, pairs, args.rate, landed)
        )
        start = time.time()
        cpu_start = resource.getrusage(resource.RUSAGE_SELF)
        feeder.start()
        seen: dict[str, float] = {}
        try:
            while len(seen) < len(pairs) and time.time() - start < 3600:
                with engine.connect() as connection:
                    rows = connection.execute(
                        sa.select(Movie.movieFullPath)
                        .join(MotionCorrection, MotionCorrection.movieId == Movie.movieId)
                        .join(CTF, CTF.motionCorrectionId == MotionCorrection.motionCorrectionId)
                    )
                    now = time.time()
                    for (path,) in rows:
                        seen.setdefault(path, now)
                time.sleep(0.2)
        finally:
            feeder.join()
            cpu_end = resource.getrusage(resource.RUSAGE_SELF)
            stages = [
                (
                    w.service.name,
                    *(
                        w.metrics_registry.get_sample_value(metric, {"service": w.service.name})
                        or 0.0
                        for metric in (
                            "cryolive_handler_seconds_count",
                            "cryolive_handler_seconds_sum",
                            "cryolive_handler_cpu_seconds_total",
                        )
                    ),
                )
                for w in pipeline.workers
            ]
            pipeline.stop()
            for s, worker in zip(services(), workers, strict=False):
                worker.terminate()
                usage = os.wait4(worker.pid, 0)[2]
                stages.append((s, float("nan"), float("nan"), usage.ru_utime + usage.ru_stime))
            with engine.connect() as connection:
                rows = {
                    t: connection.execute(
                        sa.select(sa.func.count()).select_from(sa.table(t))
                    ).scalar_one()
                    for t in sa.inspect(engine).get_table_names()
                }
            engine.dispose()
            if args.facility:
                with admin.begin() as connection:
                    connection.exec_driver_sql(f"DROP DATABASE `{name}`")
        latencies = np.array([seen[p] - landed[p] for p in seen])
        span = max(seen.values()) - min(landed[p] for p in seen)
        mode = (
            "facility (MariaDB + RabbitMQ, a process per service)"
            if args.facility
            else ("embedded (SQLite, in-process broker)")
        )
        print(
            f"{mode}: {len(seen)} {args.detector} movies x {args.frames} frames, landing "
            f"{'all at once' if not args.rate else f'at {args.rate:.0f}/h'}"
        )
        print(f"{'movies/hour':>12} {'p50 latency s':>14} {'p95 latency s':>14}")
        print(
            f"{3600 * len(seen) / span:12.0f} {np.percentile(latencies, 50):14.1f} "
            f"{np.percentile(latencies, 95):14.1f}"
        )
        n = len(seen)
        process = (cpu_end.ru_utime + cpu_end.ru_stime) - (cpu_start.ru_utime + cpu_start.ru_stime)
        if args.facility:
            process += sum(cpu for *_, cpu in stages)
        print(
            f"{'stage':>12} {'messages':>9} {'wall s/movie':>13} {'CPU s/movie':>12} "
            f"{'own movies/h':>13}"
        )
        for name, count, wall, cpu in sorted(stages, key=lambda r: -r[3]):
            own = 3600 * n / wall if wall == wall and wall > 0 else float("nan")
            print(f"{name:>12} {count:9.0f} {wall / n:13.2f} {cpu / n:12.2f} {own:13.0f}")
        cores = os.cpu_count() or 1
        print(
            f"{'process':>12} {'':>9} {'':>13} {process / n:12.2f} "
            f"{'cores bound ' + format(3600 * cores * n / process, '.0f'):>13}"
        )
        print(f"load average {os.getloadavg()[0]:.1f}, {cores} cores")
        # the facility model's database side: rows a movie leaves behind (whole run, all tables)
        print("rows per movie: " + ", ".join(f"{t} {c / n:.2f}" for t, c in rows.items() if c))
        print(f"rows per movie, all tables: {sum(rows.values()) / n:.1f}")


if __name__ == "__main__":
    main()
