"""The watcher on a large EPU visit: time per scan, CPU share at the default poll, and how many
polls a movie waits between its completion and its registration.

    .venv/bin/python bench/watcher.py [--movies 5000,20000,50000] [--poll 5] [--profile]
        [--drop-messages]

Each case builds one raw folder as EPU leaves it (no rendering: tiny movie files, a real-shaped
acquisition ``.xml`` and ``.jpg`` beside each, the grid squares' and foil holes' ``.xml`` and
``.jpg``; 40 holes of 4 movies per square), then drives ``Watcher.scan_once`` with a simulated
clock advancing one poll per scan, on SQLite and the embedded broker:

- first scan (every movie seen for the first time, none complete yet: sizes recorded);
- backlog scan (every movie now complete: read, registered, published);
- steady scan (nothing new), the median of five: wall and CPU seconds, and the CPU share of
  one core at the poll interval (CPU per scan / poll);
- the floor: an ``os.scandir`` walk of the same tree (entries listed, nothing read), median
  of five interleaved with the steady scans; "x floor" = steady scan wall / floor wall;
- latency: ten new movies land (movie, then its ``.xml``) between two scans; the number of
  scans until they are registered, and from it the mean wait in seconds (a movie completes
  on average half a poll before the next scan) -- the simulated clock, full scans only;
- new movie -> database: the real loop (``watcher.follow``, as ``cryolive run`` runs it, poll
  5 s) on the same visit; five movies land at random moments, each timed from the moment its
  ``.xml`` is written to the moment its Movie row can be read; once with inotify (a local
  file system), once polling only (as on NFS);
- real loop idle CPU: the loop's CPU share of a core over two quiet polls (``process_time``);
- first rows: seconds from the backlog scan's start to its first commit (batches of 500);
- peak RSS: each size runs in its own process; its VmHWM after the inotify run (the
  building of the visit, the scans, the database and broker in process included; the
  embedded broker, with no consumer, holds every message: ``--drop-messages`` counts them
  instead, as when RabbitMQ runs in its own process).

Goals (issue #16): steady scan under 1 s, under 5 % of a core, registration within 2 polls.
Goals (issue #22): scan <= 3x the floor, idle < 5 % of a core, new movie -> database < 2 s,
rows committed in batches, < 300 MB.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import imagecodecs
import numpy as np
import sqlalchemy as sa
import tifffile
from ispyb.sqlalchemy import Movie

from cryolive.db import make_engine, session_factory, upgrade
from cryolive.messaging import open_transport
from cryolive.messaging.recipe import load_recipe
from cryolive.pipeline.runtime import recipe_path
from cryolive.pipeline.watcher import Watcher, follow

HOLES_PER_SQUARE = 40
MOVIES_PER_HOLE = 4
START = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def _xml(when: datetime, magnification: int = 105_000, frames: int = 40) -> str:
    # imported here: cryolive.simulate costs ~150 MB of imports that the watcher never makes,
    # so the measuring process (--child) gets the texts from its parent instead
    from cryolive.simulate._layout import ImageRecord, epu_image_xml

    return epu_image_xml(
        ImageRecord(
            pixel_size_a=0.83,
            voltage_kv=300.0,
            exposure_time_s=2.0,
            dose_e_per_a2=40.0,
            nominal_defocus_a=15_000.0,
            magnification=magnification,
            n_fractions=frames,
            shape_px=(4092, 5760),
            stage_um=(10.0, 20.0, 80.0),
            acquired_at=when,
            detector="BioQuantum K3",
        )
    )


class VisitBuilder:
    """Writes an EPU raw folder fast: one text per kind of file, written many times."""

    def __init__(self, raw: Path, texts: tuple[str, str]) -> None:
        self.raw = raw
        self.movie_xml, self.survey_xml = texts
        jpeg = (np.random.default_rng(0).normal(128, 20, (64, 64))).clip(0, 255)
        self.jpeg = imagecodecs.jpeg8_encode(jpeg.astype(np.uint8))
        # a whole (tiny) 40-frame TIFF, as the metadata says: the watcher proves a movie is
        # complete from its structure before it registers it (io.completeness)
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, np.zeros((40, 8, 8), np.uint8), photometric="minisblack")
        self.movie = buffer.getvalue()
        self.count = 0

    def add(self, n: int) -> list[Path]:
        """``n`` more acquisitions (continuing the squares and holes); their movie paths."""
        made = []
        for _ in range(n):
            i = self.count
            square = 8_000_001 + 7 * (i // (HOLES_PER_SQUARE * MOVIES_PER_HOLE))
            hole = 9_000_000 + i // MOVIES_PER_HOLE
            shot = i % MOVIES_PER_HOLE
            stamp = (START + timedelta(seconds=6 * i)).strftime("%Y%m%d_%H%M%S")
            folder = self.raw / "Images-Disc1" / f"GridSquare_{square}"
            if not (folder / "Data").is_dir():
                (folder / "FoilHoles").mkdir(parents=True)
                (folder / "Data").mkdir()
                (folder / f"GridSquare_{stamp}.xml").write_text(self.survey_xml)
                (folder / f"GridSquare_{stamp}.jpg").write_bytes(self.jpeg)
            if shot == 0:
                (folder / "FoilHoles" / f"FoilHole_{hole}_{stamp}.xml").write_text(self.survey_xml)
                (folder / "FoilHoles" / f"FoilHole_{hole}_{stamp}.jpg").write_bytes(self.jpeg)
            stem = folder / "Data" / f"FoilHole_{hole}_Data_{9_017_347 + 7 * shot}_1_{stamp}"
            movie = stem.with_name(stem.name + "_fractions.tiff")
            movie.write_bytes(self.movie)
            stem.with_name(stem.name + ".xml").write_text(self.movie_xml)
            stem.with_name(stem.name + ".jpg").write_bytes(self.jpeg)
            made.append(movie)
            self.count += 1
        return made


def scandir_floor(root: Path) -> int:
    """The floor a scan is held against: one ``os.scandir`` walk of the tree, entries counted,
    nothing else (no stat beyond what ``DirEntry.is_dir`` gets from the listing)."""
    count, stack = 0, [str(root)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                count += 1
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
    return count


def _floor(root: Path) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    scandir_floor(root)
    return time.perf_counter() - wall, time.process_time() - cpu


def _timed(watcher: Watcher, now: float) -> tuple[float, float, int]:
    wall, cpu = time.perf_counter(), time.process_time()
    report = watcher.scan_once(now)
    return time.perf_counter() - wall, time.process_time() - cpu, report.registered


class FirstPublish:
    """The broker, and when the first message of a scan went out (its batch was committed)."""

    def __init__(self, inner: object, drop: bool = False) -> None:
        self.inner, self.first, self.drop, self.dropped = inner, 0.0, drop, 0

    def publish(self, *args: object, **kwargs: object) -> None:
        if not self.first:
            self.first = time.perf_counter()
        if self.drop:  # as with RabbitMQ in its own process: the queue is not in this one
            self.dropped += 1
            return
        self.inner.publish(*args, **kwargs)  # type: ignore[attr-defined]


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ``ru_maxrss``, not inherited from
    the parent across fork and exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _live_latency(
    watcher: Watcher, builder: VisitBuilder, sessions: object, poll: float, n: int = 5
) -> tuple[list[float], float]:
    """Seconds from a movie's completion to its row, under the real loop; and the loop's CPU
    share of a core while nothing comes (two polls, full scans and waits included)."""
    stop = threading.Event()
    thread = threading.Thread(
        target=follow,
        args=([watcher],),
        kwargs={"poll_s": poll, "stop": stop, "scan": lambda: watcher.scan_once(time.time())},
        daemon=True,
    )
    thread.start()
    rng = random.Random(n)
    waits = []
    try:
        time.sleep(1.0)
        cpu = time.process_time()
        time.sleep(2 * poll)
        idle = (time.process_time() - cpu) / (2 * poll)
        for _ in range(n):
            time.sleep(rng.uniform(0.0, poll))  # any moment of the poll
            (movie,) = builder.add(1)
            done = time.perf_counter()
            query = sa.select(Movie.movieId).where(Movie.movieFullPath == str(movie))
            while time.perf_counter() - done < 4 * poll:
                with sessions() as session:  # type: ignore[operator]
                    if session.scalar(query) is not None:
                        break
                time.sleep(0.02)
            waits.append(time.perf_counter() - done)
    finally:
        stop.set()
        thread.join(30)
    return waits, idle


def run(
    n: int, poll: float, profile: bool, texts: tuple[str, str], drop: bool = False
) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-watcher-") as tmp:
        visit = Path(tmp) / "bi23047-5"
        builder = VisitBuilder(visit / "raw", texts)
        t0 = time.perf_counter()
        builder.add(n)
        build_s = time.perf_counter() - t0
        engine = make_engine(f"sqlite:///{tmp}/bench.sqlite")
        upgrade(engine)
        sessions = session_factory(engine)
        transport = open_transport(f"memory://bench-{uuid.uuid4().hex[:8]}")
        recipe = load_recipe(recipe_path("spa-preprocess"))
        timed_transport = FirstPublish(transport, drop)
        watcher = Watcher(
            visit_dir=visit,
            visit="bi23047-5",
            sessions=sessions,
            transport=timed_transport,  # type: ignore[arg-type]
            recipe=recipe,
        )
        now = 1_000.0
        first = _timed(watcher, now)
        now += poll
        backlog_start = time.perf_counter()
        backlog = _timed(watcher, now)
        first_rows_s = timed_transport.first - backlog_start
        if backlog[2] != n:
            raise SystemExit(f"backlog scan registered {backlog[2]} of {n} movies")
        steady, floor = [], []
        for _ in range(5):  # interleaved with the floor: the same load for both
            now += poll
            steady.append(_timed(watcher, now))
            floor.append(_floor(visit / "raw"))
        profile_text = ""
        if profile:
            profiler = cProfile.Profile()
            now += poll
            profiler.runcall(watcher.scan_once, now)
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(14)
            profile_text = out.getvalue()
        waits = []
        for _ in range(3):
            builder.add(10)  # complete between two scans
            scans = 0
            while True:
                now += poll
                scans += 1
                if _timed(watcher, now)[2] or scans > 10:
                    break
            waits.append(scans)
        live_events = _live_latency(watcher, builder, sessions, poll)
        watcher.close()
        # the peak of one watcher's life (the polling watcher below holds a second copy)
        peak_rss_mb = _peak_rss_mb()
        polling = Watcher(
            visit_dir=visit,
            visit="bi23047-5",
            sessions=sessions,
            transport=transport,
            recipe=recipe,
            events=False,
        )
        polling.scan_once(time.time())  # loads what is registered
        live_polling = _live_latency(polling, builder, sessions, poll)
        engine.dispose()
        steady_wall = statistics.median(s[0] for s in steady)
        steady_cpu = statistics.median(s[1] for s in steady)
        scans = max(waits)
        return {
            "floor_wall": statistics.median(f[0] for f in floor),
            "floor_cpu": statistics.median(f[1] for f in floor),
            "movies": n,
            "files": sum(1 for _ in (visit / "raw").rglob("*")),
            "build_s": build_s,
            "first": first,
            "backlog": backlog,
            "steady_wall": steady_wall,
            "steady_cpu": steady_cpu,
            "share": steady_cpu / poll,
            "scans": scans,
            "mean_wait_s": (scans - 0.5) * poll + steady_wall,
            "profile": profile_text,
            "first_rows_s": first_rows_s,
            "live_events": live_events,
            "live_polling": live_polling,
            "peak_rss_mb": peak_rss_mb,
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--movies", default="5000,20000,50000")
    parser.add_argument("--poll", type=float, default=5.0, help="cryolive run's default: 5 s")
    parser.add_argument("--profile", action="store_true", help="cProfile of one steady scan")
    parser.add_argument(
        "--drop-messages",
        action="store_true",
        help="count the messages instead of queueing them in the embedded broker (which, with no"
        " consumer, holds every one in this process), as with RabbitMQ in its own process",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)  # the XML texts, as a JSON file
    args = parser.parse_args()
    if args.child:  # one size in this process: its peak RSS is that size's alone
        texts = json.loads(Path(args.child).read_text())
        found = run(int(args.movies), args.poll, args.profile, tuple(texts), args.drop_messages)
        print(json.dumps(found))
        return
    texts_file = Path(tempfile.mkdtemp(prefix="bench-watcher-")) / "texts.json"
    texts_file.write_text(json.dumps([_xml(START), _xml(START, magnification=470, frames=1)]))
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    now = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    load = os.getloadavg()[0]
    print(
        f"# {now}, {platform.node()}, {os.cpu_count()} CPUs, load average {load:.1f}, "
        f"commit {commit}, poll {args.poll:g} s"
        + (", messages dropped (not queued in process)" if args.drop_messages else "")
    )
    print(
        "| movies | files | first scan wall / CPU (s) | backlog scan wall / CPU (s) "
        "| steady scan wall / CPU (s) | scandir floor wall / CPU (s) | x floor "
        "| CPU share at the poll | scans to registration | mean wait (s) | first rows (s) "
        "| new movie -> DB, inotify: median / max (s) | polling only: median / max (s) "
        "| real loop idle CPU, inotify / polling | peak RSS (MB) | build (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    profiles = []
    for n in (int(v) for v in args.movies.split(",")):
        child = [sys.executable, __file__, "--child", str(texts_file)]
        child += ["--movies", str(n), "--poll", str(args.poll)]
        child += ["--drop-messages"] if args.drop_messages else []
        out = subprocess.run(
            child + (["--profile"] if args.profile else []),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        first, backlog = r["first"], r["backlog"]
        (events, idle_events), (polled, idle_polled) = r["live_events"], r["live_polling"]
        print(
            f"| {n:,} | {r['files']:,} | {first[0]:.2f} / {first[1]:.2f} "
            f"| {backlog[0]:.1f} / {backlog[1]:.1f} "
            f"| {r['steady_wall']:.2f} / {r['steady_cpu']:.2f} "
            f"| {r['floor_wall']:.2f} / {r['floor_cpu']:.2f} "
            f"| {r['steady_wall'] / r['floor_wall']:.2f} "  # type: ignore[operator]
            f"| {100 * r['share']:.1f} % "  # type: ignore[operator]
            f"| {r['scans']} | {r['mean_wait_s']:.1f} | {r['first_rows_s']:.2f} "
            f"| {statistics.median(events):.2f} / {max(events):.2f} "
            f"| {statistics.median(polled):.2f} / {max(polled):.2f} "
            f"| {100 * idle_events:.1f} % / {100 * idle_polled:.1f} % "
            f"| {r['peak_rss_mb']:.0f} | {r['build_s']:.0f} |",
            flush=True,
        )
        if r["profile"]:
            profiles.append(f"## steady scan of {n:,} movies\n{r['profile']}")
    for text in profiles:
        print(text)


if __name__ == "__main__":
    main()
