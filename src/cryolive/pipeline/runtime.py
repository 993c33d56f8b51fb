"""Everything in one process: the services' workers, the watchers, the reconciler.

``cryolive run`` and ``cryolive demo`` use this; at a facility the same services run as
separate ``cryolive worker`` processes on many machines and this process keeps only the
watchers and the reconciler (``--services none``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from cryolive.alerts import Evaluator
from cryolive.config import AlertsSettings, CurationThresholds, JobsSettings, WatcherSettings
from cryolive.db import make_engine, session_factory, upgrade
from cryolive.db.ledger import SqlWorkLedger
from cryolive.db.repo.workers import record_beat
from cryolive.messaging.connect import open_transport
from cryolive.messaging.recipe import Recipe, load_recipe, recipe_path, validate_recipe
from cryolive.messaging.reconcile import Reconciler
from cryolive.messaging.transport import Transport
from cryolive.messaging.worker import Beat, Worker
from cryolive.params import build_parameters
from cryolive.pipeline.grid_scan import GridScanner
from cryolive.pipeline.pause import release_resumed
from cryolive.pipeline.requests import start_requested
from cryolive.pipeline.runs import StoppedRuns
from cryolive.pipeline.watcher import Watcher, follow
from cryolive.services import pipeline_registry
from cryolive.services.writer import BATCH as WRITER_BATCH

log = logging.getLogger(__name__)


def heartbeats(sessions: sessionmaker[Session]) -> Callable[[Beat], None]:
    """A worker's ``heartbeat``: each beat recorded in the database (one small write per
    worker every 30 s), for the staff area's worker health."""

    def record(beat: Beat) -> None:
        with sessions() as session, session.begin():
            record_beat(
                session,
                service=beat.service,
                queues=beat.queues,
                consumers=beat.consumers,
                host=beat.host,
                pid=beat.pid,
                started_at=beat.started_at,
                at=beat.at,
                handled=beat.handled,
            )

    return record


@dataclass(frozen=True)
class VisitFolder:
    path: Path
    visit: str
    microscope: str = ""


@dataclass
class Pipeline:
    """The running parts; :meth:`stop` ends them in order."""

    transport: Transport
    sessions: sessionmaker[Session]
    recipe: Recipe
    workers: list[Worker]
    watchers: list[Watcher]
    reconciler: Reconciler
    alerts: Evaluator | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def scan(self) -> None:
        """One poll: new movies of every visit, then reprocessing requests."""
        for watcher in self.watchers:
            watcher.scan_once(time.time())
        start_requested(self.sessions, self.transport, recipe=self.recipe)
        release_resumed(self.sessions, self.transport)

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(30)
        for worker in self.workers:
            worker.stop()
        for watcher in self.watchers:
            watcher.close()
        self.transport.close()


def start_pipeline(
    *,
    database_url: str,
    broker_url: str,
    visits: Sequence[VisitFolder],
    recipe: str = "spa-preprocess",
    services: Sequence[str] | None = None,
    concurrency: int = 1,
    poll_s: float = 5.0,
    settle_s: float = 10.0,
    watcher: WatcherSettings | None = None,
    reconcile_after_s: float = 600.0,
    prefix: str = "",
    parameters: dict[str, object] | None = None,
    dead_letter_journal: Path | None = None,
    atlas_roots: tuple[Path, ...] = (),
    alerts: AlertsSettings | None = None,
    public_url: str = "",
    beamlines: Sequence[str] = (),
    curation: CurationThresholds | None = None,
    jobs: JobsSettings | None = None,
) -> Pipeline:
    """Build the database if needed and start workers, watchers and the reconciler.

    ``parameters``: processing parameters for every run the watchers open (run parameters,
    :mod:`cryolive.params`: over the defaults, the recipe's and what the metadata says), e.g.
    ``{"class2d_min_particles": 300}``; an unknown name or a value that does not fit raises
    :class:`BadInputError` here.

    ``services``: the services to run here (default: all the recipe uses; none at a facility
    whose workers run elsewhere).

    ``curation``: the facility's default curation thresholds (the 2D batches leave out the
    movies they reject; a collection's own thresholds come from the database).

    ``dead_letter_journal``: a folder where the embedded broker also keeps its dead letters,
    so ``cryolive dlq`` and the staff area of another process can list them.

    ``alerts``: the facility's alert rules, checked every ``alerts.interval_s`` (none: no
    alerts) on the visits of the microscopes ``beamlines`` (default: ISPyB's EM names);
    ``public_url`` is where their links point.
    """
    loaded = load_recipe(recipe_path(recipe))
    # a typo or a contradiction (say, a smallest diameter over the largest) stops the start,
    # not every run the watchers open later
    build_parameters(recipe=loaded.parameters, request=parameters)
    engine = make_engine(database_url)
    upgrade(engine)
    sessions = session_factory(engine)
    registry = pipeline_registry(database_url, curation, jobs)
    validate_recipe(loaded, registry)
    journal = {"journal": dead_letter_journal} if broker_url.startswith("memory://") else {}
    transport = open_transport(broker_url, prefix=prefix, **journal)
    wanted = sorted({s.service for s in loaded.steps.values()}) if services is None else services
    workers = []
    stopped = StoppedRuns(sessions)  # the writer still closes the work of late results
    for name in wanted:
        queues = sorted({s.queue for s in loaded.steps.values() if s.service == name})
        worker = Worker(
            transport,
            registry[name],
            queues=queues,
            concurrency=concurrency,
            # a service with a batch handler (the writer) takes what is waiting, one commit
            prefetch=WRITER_BATCH if registry[name].batch_handler is not None else 1,
            cancelled=None if name == "writer" else stopped,
            heartbeat=heartbeats(sessions),
        )
        worker.start()
        workers.append(worker)
    watchers = [
        Watcher(
            visit_dir=v.path,
            visit=v.visit,
            sessions=sessions,
            transport=transport,
            recipe=loaded,
            settle_s=settle_s,
            metadata_wait_s=(watcher or WatcherSettings()).metadata_wait_s,
            incomplete_wait_s=(watcher or WatcherSettings()).incomplete_wait_s,
            microscope=v.microscope,
            defaults=parameters,
            grid=GridScanner(sessions, v.path, atlas_roots=atlas_roots),
        )
        for v in visits
    ]
    reconciler = Reconciler(SqlWorkLedger(sessions), transport, timeout_s=reconcile_after_s)
    pipeline = Pipeline(transport, sessions, loaded, workers, watchers, reconciler)
    if alerts is not None:
        pipeline.alerts = Evaluator(
            sessions,
            alerts,
            public_url=public_url,
            consumers=_consumers(transport),
            beamlines=beamlines,
        )

    def watch() -> None:
        # a full scan every poll_s; between polls only the movies that are due (new or
        # changed a second ago, or named by inotify on a local file system)
        follow(watchers, poll_s=poll_s, stop=pipeline.stop_event, scan=pipeline.scan)

    def reconcile() -> None:
        while not pipeline.stop_event.wait(min(60.0, reconcile_after_s / 2)):
            try:
                reconciler.run_once()
            except Exception:
                log.exception("reconciler pass failed")

    def evaluate() -> None:
        assert alerts is not None and pipeline.alerts is not None
        while not pipeline.stop_event.wait(alerts.interval_s):
            try:
                pipeline.alerts.run_once()
            except Exception:
                log.exception("alert pass failed")

    for target in (watch, reconcile, evaluate) if alerts is not None else (watch, reconcile):
        thread = threading.Thread(target=target, name=target.__name__, daemon=True)
        thread.start()
        pipeline.threads.append(thread)
    return pipeline


def _consumers(transport: Transport) -> Callable[[str], int | None]:
    def consumers(queue: str) -> int | None:
        try:
            return transport.stats(queue).consumers
        except Exception:  # the broker is unreachable: no verdict this time
            log.warning("cannot read the consumers of %s", queue, exc_info=True)
            return None

    return consumers
