"""Result sets (Movie + MotionCorrection + CTF) written per second, on SQLite and MariaDB.

Compares cryolive's write path (idempotent batch upserts on natural keys, as the writer service
uses it) with the ceiling: a plain SQLAlchemy Core ``executemany`` of the same rows, with
primary keys assigned by the client so no id has to come back. Each is measured in the same
run, on a fresh database per backend.

    .venv/bin/python bench/db_ingest.py [--sets 4000] [--batch 500] [--mariadb URL]
        [--backend mariadb]

``--rate R [R ...]`` (the facility model, docs/deployment.md): instead, the writer service on
MariaDB (a Worker on the embedded broker), sent one result set per message paced at R per
second for ``--seconds``, at each ``--prefetch`` (default 1, one transaction per message as
before, and 50, the messages already waiting in one transaction): sets/s achieved, sets per
COMMIT, latency from publish to done (p50/p95) and the CPU seconds ``mariadbd`` spent per
1,000 sets (``/proc``, when readable).
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial

import sqlalchemy as sa
from ispyb.sqlalchemy import CTF, MotionCorrection, Movie
from sqlalchemy.orm import Session

from cryolive.db import make_engine, upgrade
from cryolive.db.repo import collections, results, visits
from cryolive.messaging import Recipe, Worker
from cryolive.messaging.dispatch import envelope_for
from cryolive.messaging.embedded import EmbeddedTransport
from cryolive.records import CtfRecord, MotionCorrectionRecord, MovieRecord, MovieRef
from cryolive.services._common import sessions_for
from cryolive.services.writer import BATCH, writer_service


@contextmanager
def database(kind: str, server: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/bench.sqlite"
        return
    name = f"cryolive_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE `{name}`")
    try:
        yield f"{server}/{name}"
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE `{name}`")
        admin.dispose()


def records(dc: int, mc_app: int, ctf_app: int, n: int, tag: str) -> dict[str, list[object]]:
    out: dict[str, list[object]] = {"movies": [], "motion_corrections": [], "ctfs": []}
    for i in range(n):
        ref = MovieRef(data_collection_id=dc, movie_full_path=f"/raw/{tag}/FoilHole_{i}.tiff")
        out["movies"].append(MovieRecord(movie=ref, movie_number=i, number_of_frames=40))
        out["motion_corrections"].append(
            MotionCorrectionRecord(
                movie=ref,
                auto_proc_program_id=mc_app,
                image_number=i % 65_000,
                total_motion_a=12.0,
                average_motion_per_frame_a=0.3,
                micrograph_full_path=f"/processed/{tag}/{i}.mrc",
                drift_plot_full_path=f"/processed/{tag}/{i}.json",
            )
        )
        out["ctfs"].append(
            CtfRecord(
                movie=ref,
                motion_correction_program_id=mc_app,
                auto_proc_program_id=ctf_app,
                estimated_defocus_a=15_000.0 + i,
                astigmatism_a=200.0,
                astigmatism_angle_deg=12.0,
                estimated_resolution_a=3.5,
                cc_value=0.2,
                box_size=512,
            )
        )
    return out


def cryolive_path(engine: sa.Engine, sets: dict[str, list[object]], batch: int) -> None:
    n = len(sets["movies"])
    for start in range(0, n, batch):
        with Session(engine) as session, session.begin():
            results.write_result_sets(
                session,
                **{k: v[start : start + batch] for k, v in sets.items()},  # type: ignore[arg-type]
            )


def core_ceiling(engine: sa.Engine, sets: dict[str, list[object]], batch: int) -> None:
    """Plain executemany of the same rows; ids assigned here, nothing returned."""
    with engine.connect() as connection:
        base = {
            t: int(connection.scalar(sa.select(sa.func.coalesce(sa.func.max(c), 0))) or 0)
            for t, c in (("m", Movie.movieId), ("mc", MotionCorrection.motionCorrectionId))
        }
    n = len(sets["movies"])
    for start in range(0, n, batch):
        stop = min(n, start + batch)
        movies, mcs, ctfs = [], [], []
        for i in range(start, stop):
            movie_id, mc_id = base["m"] + i + 1, base["mc"] + i + 1
            movie = sets["movies"][i]
            movies.append(movie.values() | {"movieId": movie_id})  # type: ignore[attr-defined]
            mc = sets["motion_corrections"][i]
            mcs.append(
                mc.values()  # type: ignore[attr-defined]
                | {
                    "motionCorrectionId": mc_id,
                    "movieId": movie_id,
                    "dataCollectionId": movie.movie.data_collection_id,  # type: ignore[attr-defined]
                }
            )
            ctfs.append(sets["ctfs"][i].values() | {"motionCorrectionId": mc_id})  # type: ignore[attr-defined]
        with engine.begin() as connection:
            connection.execute(sa.insert(Movie), movies)
            connection.execute(sa.insert(MotionCorrection), mcs)
            connection.execute(sa.insert(CTF), ctfs)


def timed(run: Callable[[], None], n: int) -> float:
    start = time.perf_counter()
    run()
    return n / (time.perf_counter() - start)


class _Done(logging.Handler):
    """When each message was done: the worker's one log record per message (after the
    commit, for a batch), by work key."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.at: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "outcome", "") == "done":
            self.at[str(record.key)] = time.perf_counter()  # type: ignore[attr-defined]


def paced(url: str, rates: list[float], seconds: float, prefetches: list[int]) -> None:
    """The writer service itself (embedded broker, one result set per message), paced, at
    each prefetch: 1 is one transaction per message, more lets it take what is waiting."""
    sys.path.insert(0, os.path.dirname(__file__))
    from messaging import _proc_cpu  # the same /proc reader as the broker's

    engine = make_engine(url)
    upgrade(engine)
    with Session(engine) as session, session.begin():
        sid = visits.ensure_visit(session, visit="bi1-1")
        _, dc = collections.register_data_collection(
            session, spec=collections.DataCollectionSpec(session_id=sid, image_directory="/raw")
        )
        ids = [
            collections.register_processing_job(
                session, data_collection_id=dc, recipe=r, request_key="b", parameters={}
            )[1]
            for r in ("mc", "ctf")
        ]
    recipe = Recipe.model_validate(
        {
            "name": "writer-only",
            "start": ["writer"],
            "steps": {
                "writer": {
                    "service": "writer",
                    "queue": "writer",
                    "parameters": {"records": "{records}"},
                }
            },
        }
    )
    commits = [0]

    def counted(connection: sa.Connection) -> None:
        commits[0] += 1

    sa.event.listen(sessions_for(url).kw["bind"], "commit", counted)
    done = _Done()
    worker_log = logging.getLogger("cryolive.messaging.worker")
    worker_log.addHandler(done)
    worker_log.setLevel(logging.INFO)
    worker_log.propagate = False
    print(
        f"# load average {os.getloadavg()[0]:.1f}; MariaDB; the writer service, "
        "one result set per message"
    )
    print(
        "| offered sets/s | writer prefetch | achieved sets/s | sets per commit "
        "| p50 latency ms | p95 latency ms | mariadbd CPU s / 1k sets |"
    )
    print("|---|---|---|---|---|---|---|")
    for rate in rates:
        for prefetch in prefetches:
            n = max(1, int(rate * seconds))
            sets = records(dc, *ids, n, f"p{rate}-{prefetch}")
            bodies = []
            for i in range(n):
                chosen = [sets[k][i] for k in ("movies", "motion_corrections", "ctfs")]
                values = {"records": [r.model_dump(mode="json") for r in chosen]}  # type: ignore[attr-defined]
                bodies.append(envelope_for(recipe, "writer", values))
            transport = EmbeddedTransport(f"memory://bench-{uuid.uuid4().hex[:8]}")
            worker = Worker(transport, writer_service(url), prefetch=prefetch)
            worker.start()
            done.at.clear()
            commits[0] = 0
            published: dict[str, float] = {}
            server = _proc_cpu("mariadbd")
            begin = time.perf_counter()
            for i, envelope in enumerate(bodies):
                time.sleep(max(0.0, begin + i / rate - time.perf_counter()))
                published[envelope.key] = time.perf_counter()
                transport.publish("writer", envelope.to_bytes())
            deadline = time.monotonic() + 10 * seconds
            while len(done.at) < n and time.monotonic() < deadline:
                time.sleep(0.01)
            worker.stop()
            after = _proc_cpu("mariadbd")
            elapsed = max(done.at.values()) - begin
            took = sorted(done.at[k] - published[k] for k in done.at)
            cpu = (after - server) / (n / 1000) if server is not None and after is not None else 0.0
            print(
                f"| {rate:g} | {prefetch} | {len(done.at) / elapsed:.1f} "
                f"| {len(done.at) / max(1, commits[0]):.1f} "
                f"| {1000 * took[len(took) // 2]:.1f} | {1000 * took[int(len(took) * 0.95)]:.1f} "
                f"| {cpu:.2f} |",
                flush=True,
            )
    worker_log.removeHandler(done)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best counts")
    parser.add_argument("--mariadb", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument(
        "--backend", choices=("sqlite", "mariadb"), action="append", help="default: both"
    )
    parser.add_argument("--rate", type=float, nargs="+", help="paced sets/s (MariaDB)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of a paced run")
    parser.add_argument(
        "--prefetch",
        type=int,
        nargs="+",
        default=[1, BATCH],
        help="writer prefetches compared in a paced run (1: one transaction per message)",
    )
    args = parser.parse_args()
    if args.rate:
        with database("mariadb", args.mariadb) as url:
            paced(url, args.rate, args.seconds, args.prefetch)
        return
    print(f"{args.sets} result sets (Movie + MotionCorrection + CTF), batches of {args.batch}")
    print(f"{'backend':8} {'write path':44} {'sets/s':>8} {'of ceiling':>10}")
    for kind in args.backend or ("sqlite", "mariadb"):
        with database(kind, args.mariadb) as url:
            engine = make_engine(url)
            upgrade(engine)
            with Session(engine) as session, session.begin():
                sid = visits.ensure_visit(session, visit="bi1-1")
                _, dc = collections.register_data_collection(
                    session,
                    spec=collections.DataCollectionSpec(session_id=sid, image_directory="/raw"),
                )
                ids = [
                    collections.register_processing_job(
                        session, data_collection_id=dc, recipe=r, request_key="b", parameters={}
                    )[1]
                    for r in ("mc", "ctf")
                ]
            n, b = args.sets, args.batch
            k = range(args.repeat)
            rows: list[tuple[str, int, list[Callable[[], None]]]] = [
                (
                    "Core executemany, ids assigned (ceiling)",
                    n,
                    [partial(core_ceiling, engine, records(dc, *ids, n, f"c{i}"), b) for i in k],
                ),
                (
                    f"cryolive upsert, new rows, batch {b}",
                    n,
                    [partial(cryolive_path, engine, records(dc, *ids, n, f"n{i}"), b) for i in k],
                ),
                (
                    f"cryolive upsert, same rows again, batch {b}",
                    n,
                    [partial(cryolive_path, engine, records(dc, *ids, n, f"n{i}"), b) for i in k],
                ),
                (
                    "cryolive upsert, one set per transaction",
                    n // 10,
                    [
                        partial(cryolive_path, engine, records(dc, *ids, n // 10, f"o{i}"), 1)
                        for i in k
                    ],
                ),
            ]
            # As the writer service does at start-up: move long-lived objects (models, metadata,
            # the records waiting here) out of the collector's way, so allocation-driven
            # collections do not walk them again and again.
            gc.collect()
            gc.freeze()
            ceiling = 0.0
            for label, count, runs in rows:
                rate = max(timed(run, count) for run in runs)  # best of --repeat
                ceiling = ceiling or rate
                print(f"{kind:8} {label:44} {rate:8.0f} {rate / ceiling:10.0%}")
            engine.dispose()


if __name__ == "__main__":
    main()
