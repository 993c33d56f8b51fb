"""A cold whole series of 50,000 movies: the writer's summary against the ISPyB join.

Fills a fresh database per backend with ``bench/web.py``'s collection (``--movies``, motion
correction, CTF and ice), then reads the whole series in process, alternating the summary
(``series.series``) and the join of ISPyB's tables (``summary=False``, the code before the
summary) ``--repeat`` times each, JSON encoding included (as the API sends it). The series has
no cache at this level, so every read is cold; the database's buffer pool is warm from the fill.

    .venv/bin/python bench/series_summary.py [--movies 50000] [--repeat 3] [--backends …]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy.orm import Session
from web import database, fill  # bench/web.py, beside this script

from cryolive.db import make_engine
from cryolive.db.repo import series


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(url: str, dc: int, repeat: int) -> dict[bool, list[tuple[float, float]]]:
    """(wall ms, this process's CPU ms) per read, by summary (True) or join (False)."""
    engine = make_engine(url)
    out: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    with Session(engine) as session:
        series.series(session, data_collection_id=dc)  # connect; imports
        for _ in range(repeat):
            for summary in (True, False):
                start, cpu = time.perf_counter(), _cpu_s()
                columns = series.series(session, data_collection_id=dc, summary=summary)
                json.dumps(columns, separators=(",", ":"), default=float)
                wall = (time.perf_counter() - start) * 1000
                out[summary].append((wall, (_cpu_s() - cpu) * 1000))
    engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movies", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mariadb", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--backends", default="sqlite,mariadb", help="comma-separated")
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()[0]:.2f} (1-min average), {os.cpu_count()} cores")
    print("backend  read                    wall ms (median)  client CPU ms (median)")
    for kind in args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmp, database(kind, args.mariadb, Path(tmp)) as url:
            dc = fill(url, args.movies, 2_000)
            found = measure(url, dc, args.repeat)
            for summary, label in ((False, "ISPyB join (before)"), (True, "summary (after)")):
                wall = statistics.median(w for w, _ in found[summary])
                cpu = statistics.median(c for _, c in found[summary])
                print(f"{kind:8} {label:22} {wall:16.1f}  {cpu:22.1f}")
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
