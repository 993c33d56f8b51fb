"""The live pipeline as a facility runs it: MariaDB, RabbitMQ, each service its own process.

And what must not break it: a worker killed in the middle of a movie, RabbitMQ restarted
during the run, MariaDB stopped for 30 s, the whole system restarted half-way. Every movie must
still end with exactly one result per stage.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import amqp
import pytest
import sqlalchemy as sa
from ispyb.sqlalchemy import MotionCorrection

from cryolive.check import check_visit
from cryolive.db import make_engine, upgrade
from cryolive.messaging.recipe import load_recipe
from cryolive.pipeline.runtime import Pipeline, VisitFolder, recipe_path, start_pipeline


def services() -> list[str]:
    """One worker process per service the recipe uses."""
    recipe = load_recipe(recipe_path("spa-preprocess"))
    return sorted({step.service for step in recipe.steps.values()})


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Facility:
    database_url: str
    broker_url: str
    prefix: str
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CRYOLIVE_DATABASE_URL": self.database_url,
            "CRYOLIVE_BROKER_URL": self.broker_url,
            "CRYOLIVE_BROKER_PREFIX": self.prefix,
        }

    def start_worker(self, service: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cryolive.cli",
                "worker",
                "--service",
                service,
                "--registry",
                "cryolive.services:registry",
            ],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.workers[service] = process
        return process

    def start_workers(self) -> None:
        for service in services():
            self.start_worker(service)

    def stop_workers(self) -> None:
        for process in self.workers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.workers.values():
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        self.workers.clear()

    def corrected(self) -> int:
        """Motion corrections recorded so far (a fresh connection: it survives outages)."""
        engine = make_engine(self.database_url)
        try:
            with engine.connect() as connection:
                count = connection.scalar(sa.select(sa.func.count()).select_from(MotionCorrection))
                return int(count or 0)
        finally:
            engine.dispose()

    def watch(self, visit: Path) -> Pipeline:
        """The watcher and reconciler (no services: they run in the worker processes)."""
        return start_pipeline(
            database_url=self.database_url,
            broker_url=self.broker_url,
            visits=[VisitFolder(visit, "bi23047-5", "m02")],
            services=[],
            poll_s=0.5,
            settle_s=1.0,
            reconcile_after_s=60.0,
            prefix=self.prefix,
        )


@pytest.fixture
def facility(mariadb_server_url: str, rabbitmq_url: str) -> Iterator[Facility]:
    name = f"cryolive_pipeline_{uuid.uuid4().hex[:8]}"
    server = sa.create_engine(mariadb_server_url, pool_pre_ping=True)
    with server.begin() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE `{name}`")
    url = f"{mariadb_server_url}/{name}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    facility = Facility(url, rabbitmq_url, f"t{uuid.uuid4().hex[:8]}.")
    try:
        yield facility
    finally:
        facility.stop_workers()
        _delete_queues(rabbitmq_url, facility.prefix)
        _ensure_mariadb()
        with server.begin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        server.dispose()


def _delete_queues(url: str, prefix: str) -> None:
    """Delete every queue the test's prefix named (work, dead-letter and delay queues)."""
    listed = subprocess.run(
        ["rabbitmqctl", "list_queues", "-q", "--no-table-headers", "name"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout.split()
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


def _ensure_mariadb() -> None:
    if not _port_open(3306):
        subprocess.run(
            [
                "start-stop-daemon",
                "--start",
                "--oknodo",
                "--background",
                "--exec",
                "/usr/sbin/mariadbd",
            ],
            check=False,
        )
        _wait(lambda: _port_open(3306), 60, "MariaDB to start")


def _check(facility: Facility, visit: Path, done: Callable[..., None], movies: int) -> None:
    engine = make_engine(facility.database_url)
    from cryolive.db import session_factory

    sessions = session_factory(engine)
    done(sessions, movies=movies, timeout_s=400)
    with sessions() as session:
        report = check_visit(session, visit_dir=visit)
    engine.dispose()
    assert report.movies == movies
    assert not report.duplicates, report.duplicates
    assert not report.missing, report.missing
    assert not report.unexpected_failures, report.unexpected_failures
    assert len(report.defocus_error_a) == movies


def test_facility_deployment_processes_two_grids_once(
    facility: Facility,
    two_grid_visit: Path,
    visit_copy: Callable[[Path], Path],
    done: Callable[..., None],
) -> None:
    visit = visit_copy(two_grid_visit)
    facility.start_workers()
    pipeline = facility.watch(visit)
    try:
        _check(facility, visit, done, 6)
    finally:
        pipeline.stop()


def test_a_worker_killed_mid_movie_loses_and_duplicates_nothing(
    facility: Facility,
    two_grid_visit: Path,
    visit_copy: Callable[[Path], Path],
    done: Callable[..., None],
) -> None:
    visit = visit_copy(two_grid_visit)
    facility.start_workers()
    pipeline = facility.watch(visit)
    try:
        motion_dir = visit / "processed"
        _wait(lambda: motion_dir.exists(), 120, "motion correction to start")
        facility.workers["motioncorr"].send_signal(signal.SIGKILL)  # in the middle of a movie
        facility.workers["motioncorr"].wait(30)
        time.sleep(2)
        facility.start_worker("motioncorr")
        _check(facility, visit, done, 6)
    finally:
        pipeline.stop()


def test_rabbitmq_restart_and_a_database_outage_lose_nothing(
    facility: Facility,
    two_grid_visit: Path,
    visit_copy: Callable[[Path], Path],
    done: Callable[..., None],
) -> None:
    visit = visit_copy(two_grid_visit)
    facility.start_workers()
    pipeline = facility.watch(visit)
    try:
        _wait(lambda: facility.corrected() >= 1, 180, "the first result")
        try:
            subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=60)
            time.sleep(3)
        finally:
            subprocess.run(
                ["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=60
            )
            subprocess.run(["rabbitmqctl", "await_startup"], capture_output=True, timeout=60)
        try:
            subprocess.run(
                ["mysqladmin", "-uroot", "-h127.0.0.1", "shutdown"],
                check=True,
                capture_output=True,
                timeout=60,
            )
            _wait(lambda: not _port_open(3306), 30, "MariaDB to stop")
            time.sleep(30)
        finally:
            _ensure_mariadb()
        _check(facility, visit, done, 6)
    finally:
        pipeline.stop()


def test_restarting_the_whole_system_half_way_loses_and_duplicates_nothing(
    facility: Facility,
    two_grid_visit: Path,
    visit_copy: Callable[[Path], Path],
    done: Callable[..., None],
) -> None:
    visit = visit_copy(two_grid_visit)
    facility.start_workers()
    pipeline = facility.watch(visit)
    _wait(lambda: facility.corrected() >= 2, 180, "a third of the movies")
    for process in facility.workers.values():
        process.send_signal(signal.SIGKILL)  # a power cut, not a clean stop
    for process in facility.workers.values():
        process.wait(30)
    pipeline.stop()
    facility.workers.clear()
    facility.start_workers()
    pipeline = facility.watch(visit)
    try:
        _check(facility, visit, done, 6)
    finally:
        pipeline.stop()
