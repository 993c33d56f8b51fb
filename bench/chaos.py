"""Chaos benchmark: a simulated session processed while its facility deployment is broken.

A session of ``--movies`` simulated movies (a small 512² detector, 8 frames) lands all at once
in a watched visit folder and is processed as at a facility: MariaDB and RabbitMQ, one
``cryolive worker`` process per service, the watcher and reconciler in this process. Meanwhile:

- every ``--kill-every`` seconds a worker chosen at random is killed (SIGKILL) and restarted at
  once, as a supervisor would;
- at 20 % of the movies the broker "restarts": every connection to it is cut and new ones are
  refused for ``--broker-down`` seconds;
- at 50 % the database is unreachable the same way for ``--db-down`` seconds;
- ``--bad-fraction`` of the movies are replaced by bad ones from the bad-input corpus
  (``cryolive.simulate.corpus``: its 31 kinds of bad TIFF, MRC and EER file that fail at
  motion correction, in turn).

Other work shares the real servers, so they are never stopped: each outage is made by a small
TCP proxy that this script puts in front of each server (127.0.0.1, a free port) and that every
cryolive process connects through. ``--real-restart`` restarts the real RabbitMQ instead
(``rabbitmqctl stop_app/start_app``; only on a machine nobody else uses).

It prints, per stage, how many good movies have exactly one result, none, or more than one;
how many bad movies have exactly one recorded failure; what is left in the queues or open in
the work ledger; and the time to finish (from landing to the last movie's work closed).

    PYTHONPATH=src .venv/bin/python bench/chaos.py --movies 500 [--compare] [--no-faults]

``--compare`` runs the same session twice, without and then with faults, and prints the ratio
of the times to finish.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import amqp
import numpy as np
import sqlalchemy as sa
from ispyb.sqlalchemy import (
    CTF,
    AutoProcProgram,
    AutoProcProgramMessage,
    MotionCorrection,
    Movie,
    ParticlePicker,
    RelativeIceThickness,
)

from cryolive.config import WatcherSettings
from cryolive.db import make_engine, session_factory, upgrade
from cryolive.db.ledger import open_items
from cryolive.db.models import WorkItem
from cryolive.messaging.recipe import load_recipe
from cryolive.pipeline.runtime import VisitFolder, recipe_path, start_pipeline
from cryolive.simulate import MovieConfig, VisitConfig, corpus, simulate_visit

SRC = Path(__file__).resolve().parents[1] / "src"
RECIPE = "spa-preprocess"
REGISTRY = "cryolive.services:registry"
WORKER = [sys.executable, "-m", "cryolive.cli", "worker", "--registry", REGISTRY]


# -- the outages: a TCP proxy that can cut every connection and refuse new ones ---------------
class OutageProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream``; :meth:`outage` makes the server unreachable
    for a while, as a restart or a network cut does, without touching the server."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._stop = threading.Event()
        self._listener = self._listen(0)
        self.port: int = self._listener.getsockname()[1]
        self._up = threading.Event()
        self._up.set()
        self._thread = threading.Thread(target=self._accept, name="proxy", daemon=True)
        self._thread.start()

    def _listen(self, port: int) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(128)
        listener.settimeout(0.2)
        return listener

    def _accept(self) -> None:
        while not self._stop.is_set():
            if not self._up.wait(0.2):
                continue
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            for s in (client, server):
                s.settimeout(None)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets |= {client, server}
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            self._close(source, target)

    def _close(self, *sockets: socket.socket) -> None:
        for s in sockets:
            with self._lock:
                self._sockets.discard(s)
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def connections(self) -> int:
        with self._lock:
            return len(self._sockets) // 2

    def outage(self, seconds: float) -> None:
        """Cut every connection, refuse new ones for ``seconds``, then accept again."""
        self._up.clear()
        self._listener.close()
        with self._lock:
            live = list(self._sockets)
        self._close(*live)
        self._stop.wait(seconds)
        self._listener = self._listen(self.port)
        self._up.set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()
        with self._lock:
            live = list(self._sockets)
        self._close(*live)


# -- the session -------------------------------------------------------------------------
def corpus_kinds(folder: Path) -> list[int]:
    """Indices of the bad-input corpus' cases that can stand in a session's raw folder: a plain
    file with its EPU metadata, failing at motion correction (the cases that need a raw folder
    of their own, fail at registration, or are not files to copy are left to the corpus test)."""
    eligible = []
    for index in range(len(corpus.KINDS)):
        case = corpus.write_case(index, folder / f"probe{index}")
        xml = case.movie.with_name(case.movie.name.split("_fractions")[0] + ".xml")
        plain = case.movie.is_file() and not case.movie.is_symlink() and xml.is_file()
        if case.stage == "motioncorr" and not case.own_folder and plain:
            eligible.append(index)
    shutil.rmtree(folder)
    return eligible


@dataclass(frozen=True)
class Session:
    """A simulated session staged outside the visit: movies (relative paths) and which are bad."""

    staging: Path
    movies: list[tuple[Path, Path]]  # (movie, metadata)
    bad: dict[Path, str]  # movie -> kind


def stage_session(
    folder: Path, *, movies: int, bad_fraction: float, seed: int, fmt: str | None = None
) -> Session:
    """Simulate ``movies`` movies into ``folder/staging`` and replace ``bad_fraction`` of them
    by cases of the bad-input corpus, every eligible kind in turn."""
    staging = folder / "staging"
    config = VisitConfig(
        detector="1k",
        shape_px=(512, 512),
        movie=MovieConfig.preset("easy", n_frames=8),  # the plumbing under faults, not accuracy
        movies_per_grid=movies,
        format=fmt,  # type: ignore[arg-type]
        seed=seed,
    )
    simulate_visit(config, staging)
    pairs = []
    for movie in sorted(staging.rglob("Data/*_fractions.*")):
        xml = movie.with_name(movie.name.split("_fractions")[0] + ".xml")
        pairs.append((movie.relative_to(staging), xml.relative_to(staging)))
    rng = np.random.default_rng(seed)
    n_bad = round(bad_fraction * len(pairs))
    chosen = sorted(rng.choice(len(pairs), size=n_bad, replace=False)) if n_bad else []
    kinds = corpus_kinds(folder / "corpus-probe")
    bad = {}
    for k, i in enumerate(chosen):  # the chosen movies are replaced by cases of the corpus
        (staging / pairs[i][0]).unlink()
        index = kinds[(k * 7) % len(kinds)]  # a stride, so a few bad movies span TIFF, MRC, EER
        case = corpus.write_case(index, staging / "raw", seed=seed)
        xml = case.movie.with_name(case.movie.name.split("_fractions")[0] + ".xml")
        pairs[i] = (case.movie.relative_to(staging), xml.relative_to(staging))
        bad[pairs[i][0]] = case.kind
    return Session(staging, pairs, bad)


def land(session: Session, visit: Path) -> None:
    """Copy the staged session into the visit, each movie complete before its metadata."""
    for gain in (session.staging / "raw").glob("*gain*"):
        (visit / "raw").mkdir(parents=True, exist_ok=True)
        shutil.copy(gain, visit / "raw")
    for movie, xml in session.movies:
        (visit / movie).parent.mkdir(parents=True, exist_ok=True)
        part = (visit / movie).with_name((visit / movie).name + ".part")
        shutil.copyfile(session.staging / movie, part)  # not a movie name until it is renamed
        os.rename(part, visit / movie)
        shutil.copyfile(session.staging / xml, visit / xml)


# -- faults --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Faults:
    kill_every_s: float | None = 20.0
    broker_down_s: float | None = 10.0
    db_down_s: float | None = 30.0
    broker_at: float = 0.2  # fraction of the movies ended
    db_at: float = 0.5
    real_restart: bool = False

    @classmethod
    def none(cls) -> Faults:
        return cls(kill_every_s=None, broker_down_s=None, db_down_s=None)


def services() -> list[str]:
    """One worker process per service the recipe uses."""
    return sorted({s.service for s in load_recipe(recipe_path(RECIPE)).steps.values()})


class Workers:
    """One ``cryolive worker`` process per service; a killed one is started again."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.starts: Counter[str] = Counter()
        logs.mkdir(parents=True, exist_ok=True)

    def start(self, service: str) -> None:
        self.starts[service] += 1
        log = open(self.logs / f"{service}.{self.starts[service]}.log", "wb")  # noqa: SIM115
        with log:
            self.processes[service] = subprocess.Popen(
                [*WORKER, "--service", service],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill_and_restart(self, service: str) -> None:
        process = self.processes[service]
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        self.start(service)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(30)


def _rabbitmqctl(*args: str) -> str:
    return subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=120, check=True
    ).stdout


def _real_broker_restart(down_s: float) -> None:
    try:
        _rabbitmqctl("stop_app")
        time.sleep(down_s)
    finally:
        _rabbitmqctl("start_app")
        _rabbitmqctl("await_startup")


# -- measuring -----------------------------------------------------------------------------
def results_per_movie(engine: sa.Engine) -> dict[str, dict[str, int]]:
    """Rows per movie path: Movie, MotionCorrection, CTF, ice, picker, and ERROR messages."""
    mc = sa.select(MotionCorrection.motionCorrectionId, Movie.movieFullPath).join(
        Movie, Movie.movieId == MotionCorrection.movieId
    )
    mcs = mc.subquery()
    queries = {
        "Movie": sa.select(Movie.movieFullPath, sa.func.count()).group_by(Movie.movieFullPath),
        "MotionCorrection": sa.select(mcs.c.movieFullPath, sa.func.count()).group_by(
            mcs.c.movieFullPath
        ),
    }
    for name, model, column in (
        ("CTF", CTF, CTF.motionCorrectionId),
        ("ice", RelativeIceThickness, RelativeIceThickness.motionCorrectionId),
        ("picker", ParticlePicker, ParticlePicker.firstMotionCorrectionId),
    ):
        queries[name] = (
            sa.select(mcs.c.movieFullPath, sa.func.count())
            .select_from(model)
            .join(mcs, mcs.c.motionCorrectionId == column)
            .group_by(mcs.c.movieFullPath)
        )
    counts: dict[str, dict[str, int]] = {}
    with engine.connect() as connection:
        for name, query in queries.items():
            counts[name] = {path: int(n) for path, n in connection.execute(query)}
        failures: Counter[str] = Counter()
        for (description,) in connection.execute(
            sa.select(AutoProcProgramMessage.description).where(
                AutoProcProgramMessage.severity == "ERROR"
            )
        ):
            failures[(description or "").split(": ", 1)[0]] += 1
        counts["failures"] = dict(failures)
    return counts


def ended_movies(engine: sa.Engine) -> int:
    """Movies whose motion correction has a result or a recorded failure (progress)."""
    with engine.connect() as connection:
        corrected = connection.scalar(sa.select(sa.func.count()).select_from(MotionCorrection))
        failed = connection.scalar(
            sa.select(sa.func.count())
            .select_from(AutoProcProgramMessage)
            .where(AutoProcProgramMessage.severity == "ERROR")
        )
    return int(corrected or 0) + int(failed or 0)


def queue_depths(prefix: str) -> dict[str, int]:
    """Messages (ready and unacknowledged) in every queue of ``prefix``, dead letters and
    delayed retries included; empty queues left out."""
    listed = _rabbitmqctl("list_queues", "-q", "--no-table-headers", "name", "messages")
    depths = {}
    for line in listed.splitlines():
        name, _, count = line.rpartition("\t")
        if name.startswith(prefix) and count.strip().isdigit() and int(count):
            depths[name.removeprefix(prefix)] = int(count)
    return depths


def delete_queues(url: str, prefix: str) -> None:
    listed = _rabbitmqctl("list_queues", "-q", "--no-table-headers", "name").split()
    parsed = urlsplit(url)
    connection = amqp.Connection(
        f"{parsed.hostname}:{parsed.port or 5672}",
        userid=parsed.username or "guest",
        password=parsed.password or "guest",
    )
    connection.connect()
    try:
        channel = connection.channel()
        for name in listed:
            if name.startswith(prefix):
                channel.queue_delete(name)
    finally:
        connection.close()


@dataclass
class Result:
    movies: int
    good: list[str]
    bad: dict[str, str]  # path -> kind
    counts: dict[str, dict[str, int]]
    open_work: int
    resent: int  # work items the reconciler dispatched again
    runs: dict[str, int]  # processing status word -> runs
    queued: dict[str, int]
    finished: bool
    seconds: float
    kills: int
    outages: list[str] = field(default_factory=list)
    load: str = ""

    def per_stage(self, stage: str) -> tuple[int, int, int]:
        """Good movies with exactly one row of ``stage``, none, and more than one."""
        rows = self.counts[stage]
        values = [rows.get(path, 0) for path in self.good]
        return (
            sum(v == 1 for v in values),
            sum(v == 0 for v in values),
            sum(v > 1 for v in values),
        )

    def bad_failures(self) -> tuple[int, int, int]:
        """Bad movies with exactly one recorded failure, none, and more than one."""
        values = [self.counts["failures"].get(path, 0) for path in self.bad]
        return (
            sum(v == 1 for v in values),
            sum(v == 0 for v in values),
            sum(v > 1 for v in values),
        )

    def unrecorded_kinds(self) -> list[str]:
        """Bad kinds of which some movie has no recorded failure."""
        return sorted({k for p, k in self.bad.items() if not self.counts["failures"].get(p)})

    def good_failed(self) -> list[str]:
        return [p for p in self.good if self.counts["failures"].get(p)]

    def bad_with_results(self) -> list[str]:
        return [p for p in self.bad if self.counts["MotionCorrection"].get(p)]

    def table(self) -> str:
        lines = [
            f"{self.movies} movies: {len(self.good)} good, {len(self.bad)} bad "
            f"({', '.join(f'{k} {n}' for k, n in sorted(Counter(self.bad.values()).items()))})",
            f"faults: {self.kills} workers killed; {'; '.join(self.outages) or 'no outage'}",
            f"{'per good movie':<22}{'exactly 1':>10}{'none':>8}{'>1':>8}",
        ]
        for stage in ("Movie", "MotionCorrection", "CTF", "ice", "picker"):
            one, none, more = self.per_stage(stage)
            lines.append(f"{stage:<22}{one:>10}{none:>8}{more:>8}")
        one, none, more = self.bad_failures()
        lines.append(f"{'failure per bad movie':<22}{one:>10}{none:>8}{more:>8}")
        lines.append(
            f"good movies with a failure: {len(self.good_failed())}; bad movies with a "
            f"result: {len(self.bad_with_results())}; bad kinds not recorded: "
            f"{', '.join(self.unrecorded_kinds()) or 'none'}"
        )
        queued = ", ".join(f"{q} {n}" for q, n in sorted(self.queued.items())) or "nothing"
        runs = ", ".join(f"{n} {s}" for s, n in sorted(self.runs.items()))
        lines.append(
            f"left queued: {queued}; open work items: {self.open_work} "
            f"({self.resent} re-sent by the reconciler); runs: {runs}"
        )
        lines.append(
            f"time to finish: {self.seconds:.0f} s"
            + ("" if self.finished else " (did NOT finish: stopped at the time limit)")
            + (f"; load average at the end: {self.load}" if self.load else "")
        )
        return "\n".join(lines)


def _status_word(status: int | None) -> str:
    return {None: "running", 0: "failed", 1: "success"}.get(status, str(status))


def _free_database(admin: sa.Engine) -> str:
    name = f"cryolive_chaos_{uuid.uuid4().hex[:8]}"
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE `{name}`")
    return name


@contextmanager
def _facility(mariadb: str, rabbitmq: str) -> Iterator[tuple[str, str, str, str]]:
    """A fresh database and queue prefix: (direct database URL, database name, prefix, and the
    admin URL); dropped and deleted afterwards."""
    admin = sa.create_engine(mariadb, pool_pre_ping=True)
    name = _free_database(admin)
    prefix = f"chaos{uuid.uuid4().hex[:6]}."
    try:
        yield f"{mariadb}/{name}", name, prefix, mariadb
    finally:
        try:
            delete_queues(rabbitmq, prefix)
        finally:
            with admin.begin() as connection:
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
            admin.dispose()


def _with_port(url: str, port: int) -> str:
    parsed = urlsplit(url)
    host = f"{parsed.hostname}:{port}"
    if parsed.username:
        credentials = parsed.username + (f":{parsed.password}" if parsed.password else "")
        host = f"{credentials}@{host}"
    return parsed._replace(netloc=host).geturl()


def run_session(
    session: Session,
    folder: Path,
    *,
    faults: Faults,
    mariadb: str = "mysql+pymysql://root@127.0.0.1:3306",
    rabbitmq: str = "amqp://guest:guest@127.0.0.1:5672//",
    timeout_s: float = 3600.0,
    drain_s: float = 60.0,
    reconcile_after_s: float = 600.0,
    seed: int = 0,
    say: Callable[[str], None] = print,
) -> Result:
    """Process ``session`` in a fresh facility deployment under ``faults``; measure the end."""
    visit = folder / f"visit-{uuid.uuid4().hex[:6]}"
    visit.mkdir(parents=True)
    rng = random.Random(seed)
    db_server = urlsplit(mariadb)
    mq_server = urlsplit(rabbitmq)
    db_proxy = OutageProxy((db_server.hostname or "127.0.0.1", db_server.port or 3306))
    mq_proxy = OutageProxy((mq_server.hostname or "127.0.0.1", mq_server.port or 5672))
    with _facility(mariadb, rabbitmq) as (direct_url, name, prefix, _):
        engine = make_engine(direct_url)
        upgrade(engine)
        sessions = session_factory(engine)
        database = f"{_with_port(mariadb, db_proxy.port)}/{name}"
        broker = rabbitmq if faults.real_restart else _with_port(rabbitmq, mq_proxy.port)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
            "CRYOLIVE_DATABASE_URL": database,
            "CRYOLIVE_BROKER_URL": broker,
            "CRYOLIVE_BROKER_PREFIX": prefix,
        }
        workers = Workers(env, folder / "logs" / visit.name)
        for service in services():
            workers.start(service)
        pipeline = start_pipeline(
            database_url=database,
            broker_url=broker,
            visits=[VisitFolder(visit, "bi23047-5", "m02")],
            services=[],
            poll_s=1.0,
            settle_s=1.0,
            # the corpus' truncated movies are whole copies that stay broken: registered (and
            # their failure recorded) 3 s after they stand still, not the live default's 300 s
            watcher=WatcherSettings(incomplete_wait_s=3.0),
            reconcile_after_s=reconcile_after_s,
            prefix=prefix,
            # the four stages measured; 2D classification gathers particles, never classifies
            parameters={"class2d_min_particles": 10**9},
        )
        outages: list[str] = []
        threads: list[threading.Thread] = []
        kills = 0
        total = len(session.movies)

        def outage(what: str, proxy: OutageProxy, seconds: float, real: bool = False) -> None:
            started = time.time()
            say(f"{what} outage for {seconds:.0f} s ({proxy.connections()} connections cut)")
            _real_broker_restart(seconds) if real else proxy.outage(seconds)
            outages.append(f"{what} down {time.time() - started:.0f} s")

        def start_outage(*args: object) -> None:
            thread = threading.Thread(target=outage, args=args, daemon=True)
            thread.start()
            threads.append(thread)

        start = time.time()
        finished = False
        try:
            land(session, visit)
            say(f"{total} movies landed; processing")
            next_kill = start + (faults.kill_every_s or 0)
            broker_pending, db_pending = faults.broker_down_s, faults.db_down_s
            last_report = start
            while time.time() - start < timeout_s:
                now = time.time()
                ended = ended_movies(engine)
                if broker_pending and ended >= faults.broker_at * total:
                    start_outage("broker", mq_proxy, broker_pending, faults.real_restart)
                    broker_pending = None
                if db_pending and ended >= faults.db_at * total:
                    start_outage("database", db_proxy, db_pending)
                    db_pending = None
                if faults.kill_every_s and now >= next_kill:
                    victim = rng.choice(sorted(workers.processes))
                    workers.kill_and_restart(victim)
                    kills += 1
                    next_kill = now + faults.kill_every_s
                with sessions() as db:
                    registered = db.scalar(sa.select(sa.func.count()).select_from(Movie)) or 0
                    open_work = open_items(db)
                faults_done = not (broker_pending or db_pending) and not any(
                    t.is_alive() for t in threads
                )
                if registered >= total and open_work == 0 and faults_done:
                    finished = True
                    break
                if now - last_report >= 30:
                    say(f"{now - start:5.0f} s: {ended}/{total} ended, {open_work} open")
                    last_report = now
                time.sleep(1.0)
            seconds = time.time() - start
            # What a finished session leaves: give late redeliveries a while to drain.
            drain_until = time.time() + drain_s
            queued = queue_depths(prefix)
            while queued and time.time() < drain_until:
                time.sleep(2.0)
                queued = queue_depths(prefix)
            counts = results_per_movie(engine)
            with sessions() as db:
                open_work = open_items(db)
                resent = db.scalar(
                    sa.select(sa.func.count()).select_from(WorkItem).where(WorkItem.attempts > 1)
                )
                runs = Counter(
                    _status_word(s) for s in db.scalars(sa.select(AutoProcProgram.processingStatus))
                )
        finally:
            pipeline.stop()
            workers.stop()
            for thread in threads:
                thread.join(120)
            db_proxy.close()
            mq_proxy.close()
            engine.dispose()
    good = [str(visit / m) for m, _ in session.movies if m not in session.bad]
    return Result(
        movies=total,
        good=good,
        bad={str(visit / m): kind for m, kind in session.bad.items()},
        counts=counts,
        open_work=open_work,
        resent=int(resent or 0),
        runs=dict(runs),
        queued=queued,
        finished=finished,
        seconds=seconds,
        kills=kills,
        outages=outages,
        load=" ".join(f"{x:.2f}" for x in os.getloadavg()),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movies", type=int, default=500)
    parser.add_argument("--bad-fraction", type=float, default=0.05)
    parser.add_argument("--format", default=None, help="tiff (default), mrc or eer")
    parser.add_argument("--kill-every", type=float, default=20.0, help="seconds between kills")
    parser.add_argument("--broker-down", type=float, default=10.0, help="seconds")
    parser.add_argument("--db-down", type=float, default=30.0, help="seconds")
    parser.add_argument("--no-faults", action="store_true", help="no kills, no outages")
    parser.add_argument("--compare", action="store_true", help="without, then with faults")
    parser.add_argument("--real-restart", action="store_true", help="restart the real RabbitMQ")
    parser.add_argument("--reconcile-after", type=float, default=600.0, help="seconds")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per session")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mariadb", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--rabbitmq", default="amqp://guest:guest@127.0.0.1:5672//")
    args = parser.parse_args()
    faults = Faults(
        kill_every_s=args.kill_every or None,
        broker_down_s=args.broker_down or None,
        db_down_s=args.db_down or None,
        real_restart=args.real_restart,
    )
    plans = [("without faults", Faults.none())] if args.no_faults or args.compare else []
    if not args.no_faults:
        plans.append(("with faults", faults))
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="cryolive-chaos-") as tmp:
        folder = Path(tmp)
        # the watcher's and reconciler's complaints during outages go to a file, not the table
        logging.basicConfig(filename=folder / "pipeline.log", level=logging.INFO)
        session = stage_session(
            folder, movies=args.movies, bad_fraction=args.bad_fraction, seed=args.seed,
            fmt=args.format,
        )  # fmt: skip
        results = {}
        for label, plan in plans:
            result = run_session(
                session,
                folder,
                faults=plan,
                mariadb=args.mariadb,
                rabbitmq=args.rabbitmq,
                timeout_s=args.timeout,
                reconcile_after_s=args.reconcile_after,
                seed=args.seed,
            )
            results[label] = result
            print(f"\n== {label} ==\n{result.table()}\n")
        if len(results) == 2:
            ratio = results["with faults"].seconds / results["without faults"].seconds
            print(f"time with faults / without: {ratio:.2f} (goal <= 1.5)")


if __name__ == "__main__":
    main()
