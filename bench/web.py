"""Web server time on a data collection of 50,000 movies, and requests per second under load.

Fills a fresh database (SQLite and MariaDB, or ``--backends``) with one data collection
of ``--movies`` movies, each with motion correction, CTF and ice (``write_result_sets`` in
batches), then measures:

1. server time per request (in process, through the ASGI stack, no network): the data
   collection page, its summary API, its per-movie series API (all movies), one movie;
2. requests per second of ``cryolive web`` (a separate process on 127.0.0.1) under
   ``--clients`` concurrent clients, each sending requests in a loop for ``--seconds``.

    .venv/bin/python bench/web.py [--movies 50000] [--clients 50] [--seconds 10 (0: none)]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from cryolive.config import Settings, WebSettings
from cryolive.db import make_engine, upgrade
from cryolive.db.repo import collections, results, visits
from cryolive.records import (
    CtfRecord,
    IceThicknessRecord,
    MotionCorrectionRecord,
    MovieRecord,
    MovieRef,
)
from cryolive.web import create_app

START = dt.datetime(2026, 11, 20, 9, 0)

SECRET = secrets.token_urlsafe(48)  # this run's session secret (a strong one is required)


@contextmanager
def database(kind: str, server: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'bench.sqlite'}"
        return
    name = f"cryolive_webbench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE `{name}`")
    try:
        yield f"{server}/{name}"
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE `{name}`")
        admin.dispose()


def fill(url: str, movies: int, batch: int) -> int:
    """One visit (member ``bench``) with one collection of ``movies``; returns its id."""
    engine = make_engine(url)
    upgrade(engine)
    with Session(engine) as session, session.begin():
        sid = visits.ensure_visit(session, visit="bi90000-1", microscope="m02", start=START)
        person = visits.ensure_person(session, login="bench")
        visits.set_password(session, person_id=person, password="bench-password")
        visits.add_member(session, session_id=sid, person_id=person, role="Team Member")
        spec = collections.DataCollectionSpec(
            session_id=sid, image_directory="/data/bi90000-1/raw/", pixel_size_a=0.83
        )
        dc = collections.register_data_collection(session, spec=spec)[1]
        mc, ctf, ice = (
            collections.register_processing_job(
                session, data_collection_id=dc, recipe=r, request_key="auto", parameters={}
            )[1]
            for r in ("motioncorr", "ctf", "ice")
        )
    for start in range(0, movies, batch):
        refs = [
            MovieRef(data_collection_id=dc, movie_full_path=f"/data/raw/FoilHole_{i}.tiff")
            for i in range(start, min(movies, start + batch))
        ]
        with Session(engine) as session, session.begin():
            results.write_result_sets(
                session,
                movies=[
                    MovieRecord(movie=r, movie_number=i, created=START + dt.timedelta(seconds=i))
                    for i, r in enumerate(refs, start)
                ],
                motion_corrections=[
                    MotionCorrectionRecord(
                        movie=r,
                        auto_proc_program_id=mc,
                        total_motion_a=10 + i % 7,
                        micrograph_snapshot_full_path=f"/processed/{i}.png",
                        drift_plot_full_path=f"/processed/{i}.json",
                    )
                    for i, r in enumerate(refs, start)
                ],
                ctfs=[
                    CtfRecord(
                        movie=r,
                        motion_correction_program_id=mc,
                        auto_proc_program_id=ctf,
                        estimated_defocus_a=15_000.0 + i % 1000,
                        estimated_resolution_a=3 + (i % 50) / 10,
                    )
                    for i, r in enumerate(refs, start)
                ],
                ice=[
                    IceThicknessRecord(
                        movie=r,
                        motion_correction_program_id=mc,
                        auto_proc_program_id=ice,
                        minimum=0.1,
                        q1=0.3,
                        median=0.5,
                        q3=0.7,
                        maximum=0.9,
                    )
                    for r in refs
                ],
            )
    engine.dispose()
    return dc


def log_in(client: TestClient | httpx.Client) -> None:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    form = {"login": "bench", "password": "bench-password", "csrf_token": token.group(1)}
    assert client.post("/login", data=form).status_code == 303


def middle_movie(url: str, dc: int) -> int:
    engine = make_engine(url, writer=False)
    with engine.connect() as connection:
        ids = connection.execute(
            sa.text("SELECT movieId FROM Movie WHERE dataCollectionId = :dc ORDER BY movieId"),
            {"dc": dc},
        ).scalars()
        found = list(ids)
    engine.dispose()
    return int(found[len(found) // 2])


def server_times(settings: Settings, dc: int, repeat: int) -> dict[str, tuple[float, float]]:
    """Milliseconds per request, in process: (the first request, the median of the rest)."""
    dc_movie = middle_movie(settings.database, dc)
    paths = {
        "collection page (HTML)": f"/collections/{dc}",
        "collection API (summary)": f"/api/collections/{dc}",
        "series API (all movies)": f"/api/collections/{dc}/series",
        "series API (2,000 points)": f"/api/collections/{dc}/series?points=2000",
        "series API (zoom, 1,000)": f"/api/collections/{dc}/series?from={dc_movie}"
        f"&to={dc_movie + 999}",
        "movie API (one movie)": f"/api/movies/{dc_movie}",
    }
    out = {}
    with TestClient(create_app(settings), follow_redirects=False) as client:
        log_in(client)
        for label, path in paths.items():
            start = time.perf_counter()
            client.get(path)  # the first request (cold: no series cached yet)
            first = (time.perf_counter() - start) * 1000
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200, (path, response.status_code)
            out[label] = (first, statistics.median(times))
    return out


async def _load(base: str, cookies: httpx.Cookies, path: str, clients: int, seconds: float) -> int:
    done = 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(
        base_url=base, cookies=cookies, limits=limits, timeout=60
    ) as client:

        async def one() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                response = await client.get(path)
                assert response.status_code == 200, (response.status_code, response.text[:300])
                done += 1

        await asyncio.gather(*(one() for _ in range(clients)))
    return done


def throughput(settings: Settings, dc: int, clients: int, seconds: float) -> dict[str, float]:
    dc_movie = middle_movie(settings.database, dc)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {
        "CRYOLIVE_DATABASE_URL": settings.database,
        "CRYOLIVE_PROCESSING_ROOT": str(settings.processing_root),
        "CRYOLIVE_WEB__SECRET": SECRET,
    }
    cli = Path(sys.executable).parent / "cryolive"
    server = subprocess.Popen(
        [str(cli), "web", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(base + "/login", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        with httpx.Client(base_url=base) as client:
            log_in(client)
            cookies = client.cookies
        out = {}
        for label, path in (
            ("collection API (summary)", f"/api/collections/{dc}"),
            ("movie API (one movie)", f"/api/movies/{dc_movie}"),
            ("visits API", "/api/visits"),
        ):
            n = asyncio.run(_load(base, cookies, path, clients, seconds))
            out[label] = n / seconds
        return out
    finally:
        server.terminate()
        server.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movies", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--mariadb", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--backends", default="sqlite,mariadb", help="comma-separated")
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()[0]:.2f} (1-min average), {os.cpu_count()} cores")
    for kind in args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmp, database(kind, args.mariadb, Path(tmp)) as url:
            start = time.perf_counter()
            dc = fill(url, args.movies, args.batch)
            print(f"\n{kind}: {args.movies} movies written in {time.perf_counter() - start:.0f} s")
            settings = Settings(
                database_url=url,
                processing_root=Path(tmp),
                data_root=Path(tmp),
                web=WebSettings(secret=SECRET),  # type: ignore[arg-type]
            )
            for label, (first, ms) in server_times(settings, dc, args.repeat).items():
                print(f"  {label:28} {first:8.1f} ms first, {ms:8.1f} ms (median of {args.repeat})")
            if args.seconds <= 0:
                continue
            rates = throughput(settings, dc, args.clients, args.seconds)
            for label, rate in rates.items():
                print(f"  {label:28} {rate:8.0f} req/s ({args.clients} clients, {args.seconds} s)")
    print(f"\nload after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
